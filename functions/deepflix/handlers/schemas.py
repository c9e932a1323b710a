"""The shapes of the API's JSON answers, for its OpenAPI document (views.py builds them)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, JsonValue

from deepflix.handlers import examples
from deepflix.pipeline.models import (
    MovieCreate,
    MovieStatus,
    Priority,
    Stage,
    StageError,
    StageStatus,
)


def examples_of(documents: list[dict[str, JsonValue]]) -> ConfigDict:
    """An answer's settings, with its examples for the document (a test validates them)."""
    return ConfigDict(extra="forbid", json_schema_extra={"examples": list(documents)})


class Answer(BaseModel):
    """An answer documents every field it has: a view growing one must say so here."""

    model_config = ConfigDict(extra="forbid")


class Links(Answer):
    self: str
    status: str
    position: str
    cancel: str
    retry: str


class Position(Answer):
    """Where a waiting movie is: its queue, its place (1 is next) and when it should be done."""

    queue: Stage
    position: int
    ahead: int
    total_waiting: int
    running: int
    eta_seconds: float


class EtaView(Answer):
    """The estimate from the whole path ahead (the movies ahead in each stage still to run,
    each stage's concurrency, durations learned per scene count), with its band: every
    duration at its 10th and 90th percentile. `unknown` says why there is none:
    `admission_paused`, or `no_history:<stage>` for a stage no run has finished in yet."""

    start_seconds: float | None = Field(
        description="Until the movie's next stage starts; null if unknown or none is left."
    )
    start_low_seconds: float | None
    start_high_seconds: float | None
    finish_seconds: float | None = Field(description="Until the film is ready; null if unknown.")
    finish_low_seconds: float | None
    finish_high_seconds: float | None
    unknown: str | None


def described(text: str) -> Any:
    """A required field's description, for the document."""
    return Field(description=text)


ETA_START = "Seconds until the movie's next stage starts (see `eta`)."
ETA_FINISH = "Seconds until the film is ready (see `eta`)."
ETA_QUEUE = (
    "The older estimate: the rounds of the queue the movie waits in, then each remaining "
    "stage's mean run, not counting the queues of later stages."
)


class StageView(Answer):
    status: StageStatus
    # This run's attempts that count against the retry policy; the latest attempt's number,
    # which counts on across a client's retries.
    attempts: int
    attempt: int
    progress: int
    started_at: datetime | None
    finished_at: datetime | None
    duration_seconds: float | None
    ready_at: datetime | None
    last_error: StageError | None


class Artifacts(Answer):
    """URLs of the movie's files, as they are made."""

    story: str | None
    images: list[str]
    video: str | None
    poster: str | None
    captions: str | None


class WebhookAttemptView(Answer):
    at: datetime
    status_code: int | None = Field(description="The receiver's HTTP status.")
    error: str | None = Field(description="Why no status came (refused, timed out).")


class WebhookView(Answer):
    """Where the final status is POSTed, each attempt, and whether one got a 2xx."""

    url: str
    attempts: list[WebhookAttemptView]
    delivered: bool


class MovieView(Answer):
    """A movie's status: each stage's progress, attempts and errors, its files, its place."""

    model_config = examples_of(examples.MOVIE_VIEW)

    movie_id: str
    job_id: str
    status: MovieStatus
    current_stage: Stage | None
    priority: Priority
    request: MovieCreate
    created_at: datetime
    updated_at: datetime
    finished_at: datetime | None
    stages: dict[Stage, StageView]
    artifacts: Artifacts
    position: Position | None
    eta_seconds: float | None = described(ETA_QUEUE)
    eta_start_seconds: float | None = described(ETA_START)
    eta_finish_seconds: float | None = described(ETA_FINISH)
    eta: EtaView | None
    error: StageError | None
    webhook: WebhookView | None = None
    links: Links
    # Where the movie's logs are read: the logs route (embedded), or Cloud Logging.
    logs_url: str | None = None


class Created(Answer):
    """A movie accepted: where it waits; `Location` is its status."""

    model_config = examples_of(examples.CREATED)

    movie_id: str
    job_id: str
    status: MovieStatus
    position: int | None
    ahead: int | None
    eta_seconds: float | None = described(ETA_QUEUE)
    eta_start_seconds: float | None = described(ETA_START)
    eta_finish_seconds: float | None = described(ETA_FINISH)
    eta: EtaView | None
    links: Links


class JobPosition(Answer):
    """A job's place in the queue it waits in; the queue fields are absent when it does not wait."""

    model_config = examples_of(examples.JOB_POSITIONS)

    job_id: str
    status: MovieStatus
    current_stage: Stage | None
    waiting: bool
    position: int | None
    ahead: int | None
    eta_seconds: float | None = described(ETA_QUEUE)
    eta_start_seconds: float | None = described(ETA_START)
    eta_finish_seconds: float | None = described(ETA_FINISH)
    eta: EtaView | None
    queue: Stage | None = None
    total_waiting: int | None = None
    running: int | None = None


class MovieSummary(Answer):
    movie_id: str
    status: MovieStatus
    current_stage: Stage | None
    priority: Priority
    prompt: str
    title: str | None
    created_at: datetime
    links: Links


class MovieList(Answer):
    """A page of movies, newest first; `next_cursor` asks for the next page."""

    model_config = examples_of(examples.MOVIE_LIST)

    movies: list[MovieSummary]
    next_cursor: str | None


class QueueView(Answer):
    waiting: int
    running: int
    concurrency: int
    mean_duration_seconds: float | None
    paused: bool = False  # an operator paused this queue: it starts nothing new


class Queues(Answer):
    """Each stage queue's depth, running work and limit; whether admission is paused."""

    model_config = examples_of(examples.QUEUES)

    admission_paused: bool
    queues: dict[Stage, QueueView]
    dead_letters: int | None = None  # embedded mode: messages given up on
    # Embedded mode: the database's state, and the delivery threads and stored messages.
    store: dict[str, Any] | None = None
    delivery: dict[str, Any] | None = None


class Health(Answer):
    model_config = examples_of(examples.HEALTH)

    status: Literal["ok", "degraded"]
    queues: dict[Stage, int]
    # Where the runtime runs beside the API (deepflix serve): what stops work from moving,
    # and the state of its database and delivery threads.
    problems: list[str] = []
    store: dict[str, Any] | None = None
    delivery: dict[str, Any] | None = None


class ErrorBody(Answer):
    code: str
    message: str
    details: Any


class ErrorAnswer(Answer):
    """Every error: a stable `code`, a message for people, and details where they help."""

    model_config = examples_of(examples.ERROR)

    error: ErrorBody
