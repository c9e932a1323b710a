"""Movie request, movie document and per-stage state: the domain's data."""

from __future__ import annotations

import base64
import functools
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Literal, NamedTuple
from urllib.parse import urlsplit

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    StringConstraints,
    field_validator,
    model_serializer,
)

from deepflix.pipeline.errors import BadRequest


class Priority(StrEnum):
    low = "low"
    normal = "normal"
    high = "high"

    @property
    def rank(self) -> int:
        """Dispatch rank: lower goes first."""
        return _PRIORITY_RANK[self]


_PRIORITY_RANK = {Priority.high: 0, Priority.normal: 1, Priority.low: 2}


class Stage(StrEnum):
    story = "story"
    images = "images"
    video = "video"

    @property
    def next(self) -> Stage | None:
        i = STAGES.index(self)
        return STAGES[i + 1] if i + 1 < len(STAGES) else None


STAGES: tuple[Stage, ...] = (Stage.story, Stage.images, Stage.video)


class MovieStatus(StrEnum):
    queued = "queued"  # waiting for its first stage
    story = "story"
    images = "images"
    video = "video"
    succeeded = "succeeded"
    failed = "failed"
    cancelled = "cancelled"

    @property
    def terminal(self) -> bool:
        return self in TERMINAL


TERMINAL = frozenset({MovieStatus.succeeded, MovieStatus.failed, MovieStatus.cancelled})


class StageStatus(StrEnum):
    pending = "pending"  # not reached yet
    waiting = "waiting"  # in the stage's queue, maybe backing off until ready_at
    running = "running"
    succeeded = "succeeded"
    failed = "failed"
    cancelled = "cancelled"


_WAITING, _RUNNING = StageStatus.waiting, StageStatus.running

Style = Literal["cinematic", "noir", "anime", "watercolor", "documentary", "retro"]
Prompt = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=2000)]
Title = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=120)]
WebhookUrl = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=2000)]


class MovieCreate(BaseModel):
    """What a client may ask for; unknown fields are refused."""

    model_config = ConfigDict(extra="forbid", strict=True)

    prompt: Prompt
    title: Title | None = None
    style: Style = "cinematic"
    scene_count: int = Field(default=6, ge=1, le=24)
    priority: Priority = Priority.normal
    seed: int | None = Field(default=None, ge=0, le=2**31 - 1)
    # Where the movie's final status is POSTed (pipeline/webhooks.py).
    webhook: WebhookUrl | None = None

    @field_validator("webhook")
    @classmethod
    def _http_url(cls, v: str | None) -> str | None:
        if v is not None:
            parts = urlsplit(v)
            if parts.scheme not in ("http", "https") or not parts.hostname:
                raise ValueError("webhook must be an http or https URL with a host")
        return v

    @field_validator("priority", mode="before")
    @classmethod
    def _priority_from_text(cls, v: object) -> object:
        # Strict mode would refuse the plain string a JSON client sends.
        return Priority(v) if isinstance(v, str) and v in Priority.__members__ else v


class StageError(BaseModel):
    code: str
    message: str
    retryable: bool
    attempt: int
    at: datetime


class ModelUsage(BaseModel):
    """What one model was asked for in a stage, summed over its calls (the cost's inputs)."""

    model_config = ConfigDict(frozen=True)

    model: str
    calls: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    images: int = 0
    video_seconds: float = 0.0

    def __add__(self, other: ModelUsage) -> ModelUsage:
        return ModelUsage(
            model=self.model,
            calls=self.calls + other.calls,
            input_tokens=self.input_tokens + other.input_tokens,
            output_tokens=self.output_tokens + other.output_tokens,
            images=self.images + other.images,
            video_seconds=self.video_seconds + other.video_seconds,
        )


class StageState(BaseModel):
    status: StageStatus = StageStatus.pending
    # The number of the stage's latest attempt. It counts on across a client's retries, so a
    # late report of an abandoned attempt never matches a new one (nor its task names).
    attempts: int = 0
    # The number of the first attempt of this run (a client's retry starts a new run), and
    # how many of the run's attempts failed for an outage: neither earlier runs nor outages
    # count against the retry policy (`charged`).
    first_attempt: int = 1
    uncharged: int = 0
    progress: int = Field(default=0, ge=0, le=100)
    ready_at: datetime | None = None  # while waiting: not dispatched before this
    started_at: datetime | None = None
    finished_at: datetime | None = None
    deadline: datetime | None = None
    execution: str | None = None  # job execution running this attempt, if any
    # When a job start for this attempt was claimed (and its execution not yet recorded): a
    # second delivery of the stage request then starts nothing.
    starting_at: datetime | None = None
    last_error: StageError | None = None
    # Which generator made the stage's artifacts ("cpu", or the hosted models' names).
    generator: str | None = None
    # What the work recorded to resume after a restart (a hosted video model's operation
    # names by scene), kept across the attempts of a run.
    notes: dict[str, str] = Field(default_factory=dict)
    # Hosted model usage by model name, summed over every attempt: each was paid for.
    usage: dict[str, ModelUsage] = Field(default_factory=dict)

    @property
    def run_attempts(self) -> int:
        """Attempts started in this run."""
        return max(0, self.attempts - self.first_attempt + 1)

    @property
    def charged(self) -> int:
        """Attempts of this run that count against the stage's retry policy."""
        return self.run_attempts - self.uncharged

    @property
    def duration_s(self) -> float | None:
        if self.started_at is None or self.finished_at is None:
            return None
        return (self.finished_at - self.started_at).total_seconds()


# Artifact names: what each stage stores under the movie, and what clients are shown.
STORY = "story.json"
VIDEO, POSTER, CAPTIONS = "movie.mp4", "poster", "captions.vtt"


def scene_image(index: int) -> str:
    """The still of scene `index` (0-based), numbered from 1 for people."""
    return f"scene-{index + 1:02d}.png"


OutgoingKind = Literal[
    "run_stage", "check_deadline", "dispatch", "cancel_execution", "admit", "webhook"
]


class Outgoing(BaseModel):
    """A message a saved change of the movie must send, kept in the movie's outbox until it
    has been sent (pipeline/outbox.py): the command, and when the change was saved."""

    model_config = ConfigDict(frozen=True)

    kind: OutgoingKind
    stage: Stage | None = None
    attempt: int | None = None
    at: datetime | None = None  # when a scheduled task falls due
    execution: str | None = None
    since: datetime
    # A request of a stage that runs in the function (the story): its attempt's outcome takes
    # it out of the outbox, and no drain sends it (it may be running): one whose send failed
    # is held, i.e. saved again without this flag, and a drain resends it (Sender, ADR 0028).
    by_outcome: bool = False

    @model_serializer(mode="wrap")
    def _dump(self, handler: SerializerFunctionWrapHandler) -> dict[str, object]:
        # Left out when false: entries saved before the flag compare equal to their dumps
        # (a Firestore mark removes array elements equal to them).
        data: dict[str, object] = handler(self)
        if not self.by_outcome:
            data.pop("by_outcome", None)
        return data


def outbox_since(outbox: tuple[Outgoing, ...]) -> datetime | None:
    """When the oldest message a drain may send was saved (the index drains read by): an
    entry its outcome takes out, not held, is none of a drain's."""
    return min((o.since for o in outbox if not o.by_outcome), default=None)


class WebhookAttempt(BaseModel):
    """One POST of the movie's final status: the receiver's status code, or why none came."""

    at: datetime
    status_code: int | None = None
    error: str | None = None


class WebhookState(BaseModel):
    """The movie's webhook: where, every attempt so far, and whether one was taken (2xx).
    `message_id` names the notice of the final status being sent (its `webhook-id`), whose
    first attempt was number `first_attempt` (a retried movie sends a notice again)."""

    url: str
    attempts: tuple[WebhookAttempt, ...] = ()
    delivered: bool = False
    message_id: str | None = None
    first_attempt: int = 1


class CreatedEta(BaseModel):
    """The finish estimate a movie was given at its creation, kept to measure it against
    its `finished_at` (seconds from `created_at`)."""

    finish_s: float | None
    low_s: float | None
    high_s: float | None
    unknown: str | None = None


class QueueFields(NamedTuple):
    """What a store indexes beside a movie's document: where it stands in the queues, and
    since when messages wait in its outbox."""

    owner: str
    arrival: str  # arrival_key(created_at): dispatch order within a priority
    prio: int  # the priority's rank: lower goes first
    waiting_stage: str | None
    ready_at: datetime | None  # while waiting: not dispatched before this
    running_stage: str | None
    deadline: datetime | None  # while running
    outbox_since: datetime | None  # while messages wait to be sent


class Movie(BaseModel):
    """The movie document: the single source of truth for one request."""

    id: str
    owner: str
    request: MovieCreate
    status: MovieStatus = MovieStatus.queued
    created_at: datetime
    updated_at: datetime
    finished_at: datetime | None = None
    stages: dict[Stage, StageState] = Field(
        default_factory=lambda: {s: StageState() for s in STAGES}
    )
    artifacts: dict[str, str] = Field(default_factory=dict)  # name -> storage path
    error: StageError | None = None
    outbox: tuple[Outgoing, ...] = ()  # saved with the change that sends them, until sent
    eta_at_create: CreatedEta | None = None
    webhook: WebhookState | None = None
    # The W3C traceparent of the request that created it: every message sent for the movie
    # carries its trace, so Cloud Logging and Cloud Trace group the movie's work.
    trace: str | None = None

    @property
    def seed(self) -> int:
        if self.request.seed is not None:
            return self.request.seed
        return int(self.id.replace("-", "")[:8], 16) & 0x7FFFFFFF

    @property
    def waiting_stage(self) -> Stage | None:
        return self._stage_in(_WAITING)

    @property
    def running_stage(self) -> Stage | None:
        return self._stage_in(_RUNNING)

    def _stage_in(self, status: StageStatus) -> Stage | None:
        # A state change asks these dozens of times: a plain loop with the status passed in,
        # not a generator that looks `StageStatus.x` up on the enum class at every turn.
        stages = self.stages
        for s in STAGES:
            if stages[s].status is status:
                return s
        return None

    @property
    def current_stage(self) -> Stage | None:
        return self.running_stage or self.waiting_stage

    def queue_fields(self) -> QueueFields:
        """The fields both stores index, so the queues read in (priority, arrival) order."""
        waiting, running = self.waiting_stage, self.running_stage
        stages = self.stages
        return QueueFields(
            self.owner,
            arrival_key(self.created_at),
            self.request.priority.rank,
            waiting.value if waiting else None,
            stages[waiting].ready_at if waiting else None,
            running.value if running else None,
            stages[running].deadline if running else None,
            outbox_since(self.outbox),
        )

    @property
    def sort_key(self) -> tuple[int, str, str]:
        """Dispatch order in every stage queue: priority, then arrival."""
        return (self.request.priority.rank, arrival_key(self.created_at), self.id)


@functools.lru_cache(maxsize=4096)
def arrival_key(at: datetime) -> str:
    """Fixed-width UTC text that sorts like the instant (isoformat drops zero microseconds).

    Cached: every save of a movie keys its queue fields by it, and strftime is not cheap.
    """
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def encode_cursor(last: Movie) -> str:
    """Where a newest-first list of movies goes on: after `last`, in (arrival, id) order."""
    return base64.urlsafe_b64encode(f"{arrival_key(last.created_at)}|{last.id}".encode()).decode()


def decode_cursor(cursor: str) -> tuple[str, str]:
    """(arrival key, movie id) of an encode_cursor(); BadRequest for anything else."""
    try:
        arrival, sep, movie_id = base64.urlsafe_b64decode(cursor.encode()).decode().partition("|")
    except (ValueError, UnicodeError):
        sep = ""
    if not sep or not movie_id:
        raise BadRequest("invalid cursor", details={"cursor": cursor})
    return arrival, movie_id
