"""Movie request, movie document and per-stage state: the domain's data."""

from __future__ import annotations

import functools
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator


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


class MovieCreate(BaseModel):
    """What a client may ask for; unknown fields are refused."""

    model_config = ConfigDict(extra="forbid", strict=True)

    prompt: Prompt
    title: Title | None = None
    style: Style = "cinematic"
    scene_count: int = Field(default=6, ge=1, le=24)
    priority: Priority = Priority.normal
    seed: int | None = Field(default=None, ge=0, le=2**31 - 1)

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


class StageState(BaseModel):
    status: StageStatus = StageStatus.pending
    attempts: int = 0
    progress: int = Field(default=0, ge=0, le=100)
    ready_at: datetime | None = None  # while waiting: not dispatched before this
    started_at: datetime | None = None
    finished_at: datetime | None = None
    deadline: datetime | None = None
    execution: str | None = None  # job execution running this attempt, if any
    last_error: StageError | None = None

    @property
    def duration_s(self) -> float | None:
        if self.started_at is None or self.finished_at is None:
            return None
        return (self.finished_at - self.started_at).total_seconds()


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
        # A plain loop with the status passed in: a state change asks these dozens of times,
        # and a generator over `StageStatus.x` (an enum class lookup each turn) was ~3x slower.
        stages = self.stages
        for s in STAGES:
            if stages[s].status is status:
                return s
        return None

    @property
    def current_stage(self) -> Stage | None:
        return self.running_stage or self.waiting_stage

    @property
    def sort_key(self) -> tuple[int, str, str]:
        """Dispatch order in every stage queue: priority, then arrival."""
        return (self.request.priority.rank, arrival_key(self.created_at), self.id)


@functools.lru_cache(maxsize=4096)
def arrival_key(at: datetime) -> str:
    """Fixed-width UTC text that sorts like the instant (isoformat drops zero microseconds).

    Cached: every save of a movie keys its queue columns by it (profiled: strftime was a
    few percent of a state change).
    """
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
