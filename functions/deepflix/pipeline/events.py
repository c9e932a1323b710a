"""Events that happen to a movie and the commands a decision asks its caller to perform."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from deepflix.pipeline.models import ModelUsage, Stage

# -- events: facts that happened to one movie ------------------------------------------------


@dataclass(frozen=True)
class Claimed:
    """A dispatcher gave the movie a slot in its waiting stage."""

    stage: Stage
    at: datetime


@dataclass(frozen=True)
class JobStarting:
    """A delivery of the stage request is about to start the attempt's job: it claims the
    start, so that a second delivery starts none (one execution per attempt). `execution`
    is the name the job will have, where the job runner names it itself. `settles`: the
    request said it and the attempt's deadline check went out, and were left in the outbox
    for this claim to take out (pipeline/outbox.py, receipts)."""

    stage: Stage
    attempt: int
    at: datetime
    execution: str | None = None
    settles: bool = False


@dataclass(frozen=True)
class JobStartFailed:
    """The job start claimed at `since` did not start a job: the claim is given back."""

    stage: Stage
    attempt: int
    since: datetime
    at: datetime


@dataclass(frozen=True)
class JobStarted:
    stage: Stage
    attempt: int
    execution: str
    at: datetime


@dataclass(frozen=True)
class Progressed:
    stage: Stage
    attempt: int
    progress: int
    at: datetime


@dataclass(frozen=True)
class StageSucceeded:
    stage: Stage
    attempt: int
    artifacts: tuple[tuple[str, str], ...]
    at: datetime
    generator: str | None = None  # what made the artifacts


@dataclass(frozen=True)
class StageFailed:
    stage: Stage
    attempt: int
    code: str
    message: str
    retryable: bool
    at: datetime
    # The attempt failed because the store or the bus was unavailable, not for its work: it
    # is retried without being charged to the movie (up to the policy's max_outage_retries).
    outage: bool = False
    # The wait the failing service asked for (RetryInfo, Retry-After): the retry waits as long.
    retry_after_s: float | None = None


@dataclass(frozen=True)
class StageNoted:
    """Stage work recorded something before it ends: notes to resume from after a restart
    (merged into the stage's), hosted model usage (added), the generator's name."""

    stage: Stage
    attempt: int
    at: datetime
    notes: tuple[tuple[str, str], ...] = ()
    usage: tuple[ModelUsage, ...] = ()
    generator: str | None = None


@dataclass(frozen=True)
class DeadlinePassed:
    stage: Stage
    attempt: int
    at: datetime


@dataclass(frozen=True)
class CancelRequested:
    at: datetime


@dataclass(frozen=True)
class RetryRequested:
    at: datetime


Event = (
    Claimed
    | JobStarting
    | JobStartFailed
    | JobStarted
    | Progressed
    | StageNoted
    | StageSucceeded
    | StageFailed
    | DeadlinePassed
    | CancelRequested
    | RetryRequested
)


# -- commands: what the caller must do once the new state is saved --------------------------


@dataclass(frozen=True)
class RunStage:
    movie_id: str
    stage: Stage
    attempt: int


@dataclass(frozen=True)
class CheckDeadline:
    movie_id: str
    stage: Stage
    attempt: int
    at: datetime


@dataclass(frozen=True)
class Dispatch:
    """Offer free slots of a stage to its queue, now or at a later time."""

    stage: Stage
    at: datetime | None = None


@dataclass(frozen=True)
class CancelExecution:
    execution: str


@dataclass(frozen=True)
class Admit:
    """Have a new movie's story stage dispatched by a task named after the movie."""

    movie_id: str


@dataclass(frozen=True)
class DeliverWebhook:
    """POST the movie's final status to its webhook: attempt `attempt`, at `at`."""

    movie_id: str
    attempt: int
    at: datetime


Command = RunStage | CheckDeadline | Dispatch | CancelExecution | Admit | DeliverWebhook
