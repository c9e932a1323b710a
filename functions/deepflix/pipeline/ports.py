"""Ports: what the pipeline needs from storage, queues, jobs and artifacts (typing.Protocol)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol, TypeVar

from deepflix import tracing
from deepflix.pipeline.eta import WindowedRuns
from deepflix.pipeline.models import Movie, Outgoing, Stage
from deepflix.pipeline.operator import DeadLetter, MovieFilter
from deepflix.pipeline.transitions import Decision

Mutation = Callable[[Movie], Decision]
T = TypeVar("T")


@dataclass(frozen=True)
class Page:
    movies: list[Movie]
    next_cursor: str | None


@dataclass(frozen=True)
class QueueCounts:
    waiting: int
    running: int


class IdempotencyConflict(Exception):
    """The key was used before with a different request body."""

    def __init__(self, movie_id: str) -> None:
        super().__init__(movie_id)
        self.movie_id = movie_id


class MovieStore(Protocol):
    def create(self, movie: Movie, *, idempotency_key: str | None, fingerprint: str) -> Movie:
        """Insert; a key seen before returns its movie (IdempotencyConflict if bodies differ)."""

    def get(self, movie_id: str) -> Movie | None: ...

    def mutate(self, movie_id: str, fn: Mutation) -> Decision | None:
        """Load, apply fn, save if applied — all in one transaction. None if absent."""

    def claim(self, stage: Stage, limit: int, now: datetime, fn: Mutation) -> list[Decision]:
        """Atomically apply fn to the first ready movies waiting in `stage`, by (priority,
        arrival), while fewer than `limit` run there. Never over-admits under concurrency."""

    def position(self, movie: Movie, stage: Stage) -> tuple[int, int, int]:
        """(movies ahead of this one, total waiting, running) for the queue of `stage`."""

    def ahead(self, movie: Movie, stage: Stage) -> int:
        """The first figure of position() alone, where a store reads it for less."""

    def counts(self) -> dict[Stage, QueueCounts]: ...

    def running_counts(self) -> dict[Stage, int]:
        """The running of counts() alone (the ETA's), where a store reads it for less."""

    def running(self, stage: Stage) -> list[Movie]: ...

    def waiting_heads(self, stage: Stage) -> list[Movie]:
        """The first waiting movie of each priority's queue in `stage` (by arrival)."""

    def overdue(self, now: datetime) -> list[Movie]:
        """Movies with a running stage whose deadline has passed."""

    def sent(self, movie_id: str, messages: Sequence[Outgoing]) -> None:
        """Take these messages out of the movie's outbox: they have been sent."""

    def unsent(self, limit: int, before: datetime | None = None) -> list[Movie]:
        """Movies whose outbox may hold messages, longest waiting first; with `before`,
        only those whose oldest message was saved before it. A store may return a movie
        whose outbox has emptied since: saving it unchanged corrects its index."""

    def mean_durations(self) -> dict[Stage, float]:
        """Recent mean seconds per successful stage run (absent when nothing observed)."""

    def duration_history(self) -> WindowedRuns:
        """Successful stage runs per (stage, scene count, window of their end) and duration
        bin (pipeline/eta.py); may be a few seconds old, and may hold windows older than
        the estimate reads (pipeline/eta.recent leaves them out)."""

    def admission_paused(self) -> bool: ...

    def set_admission_paused(self, paused: bool) -> None: ...

    def journal(self, movie_id: str) -> list[dict[str, object]]:
        """Every stage status change of the movie, oldest first (the audit trail)."""

    def list(
        self,
        *,
        owner: str | None,
        limit: int,
        cursor: str | None,
        where: MovieFilter | None = None,
    ) -> Page:
        """Newest first; with `where`, only the movies operator.matches() picks. A page
        may hold fewer than `limit` with a `next_cursor` where the store looks at a bounded
        number of movies per page (Firestore): the cursor goes on after the last looked at."""

    def delete(self, movie_id: str) -> bool:
        """Remove a finished movie and what the store keeps of it (its journal); False if
        absent. Refuses (Conflict) a movie that waits or runs: it is counted in the queues."""

    def paused_stages(self) -> frozenset[Stage]:
        """The stages whose queues admit nothing new (an operator paused them)."""

    def set_stage_paused(self, stage: Stage, paused: bool) -> None: ...


class UnitOfWork(Protocol):
    """Runs each state-changing operation of the pipeline. Where the store and the queues
    share one database, as one transaction: the saves an operation makes and the messages
    they lead to commit together, or none of them if it raises (a transactional outbox)."""

    def __call__(self, operation: Callable[[], T], /) -> T: ...


def each_step_alone(operation: Callable[[], T]) -> T:
    """The unit of work of adapters that commit each save on its own and send its messages
    after it (Firestore, Cloud Tasks, Pub/Sub): the messages wait in the movie's outbox,
    saved with it, until they have been sent (pipeline/outbox.py)."""
    return operation()


class TaskQueue(Protocol):
    def enqueue(
        self,
        kind: str,
        payload: Mapping[str, Any],
        *,
        name: str | None = None,
        at: datetime | None = None,
    ) -> bool:
        """Schedule a task; a repeated name is accepted once (returns False for the repeat)."""


class EventBus(Protocol):
    def publish(
        self, topic: str, data: Mapping[str, Any], attributes: Mapping[str, str]
    ) -> None: ...


# The job's exit code when it could not record its outcome because the store or the bus was
# unavailable (EX_TEMPFAIL): the attempt failed for an outage, and costs the movie nothing.
JOB_EXIT_UNAVAILABLE = 75


class JobRunner(Protocol):
    def run(self, *, stage: Stage, movie_id: str, attempt: int, timeout_s: float) -> str:
        """Start one execution of the stage's job; returns its execution id."""

    def cancel(self, execution: str) -> None: ...

    def execution_name(self, *, stage: Stage, movie_id: str, attempt: int) -> str | None:
        """The name `run` will give this attempt's execution, where the runner names it (one
        name per attempt); None where the platform names it as it starts (Cloud Run)."""


def job_env(*, stage: Stage, movie_id: str, attempt: int, execution: str) -> dict[str, str]:
    """What a job execution is told, as env overrides: the job reads nothing else.

    Every JobRunner passes these (a Cloud Run execution gets CLOUD_RUN_EXECUTION from Cloud
    Run itself); the job entry point reads them back with job_from_env().
    """
    env = {
        "DEEPFLIX_JOB_STAGE": stage.value,
        "DEEPFLIX_JOB_MOVIE_ID": movie_id,
        "DEEPFLIX_JOB_ATTEMPT": str(attempt),
        "CLOUD_RUN_EXECUTION": execution,
    }
    parent = tracing.traceparent()  # the job's spans and log lines join the movie's trace
    if parent is not None:
        env[tracing.ENV] = parent
    return env


def job_from_env(env: Mapping[str, str]) -> tuple[Stage, str, int]:
    """(stage, movie id, attempt) from a job's environment; KeyError or ValueError if absent
    or malformed."""
    return (
        Stage(env["DEEPFLIX_JOB_STAGE"]),
        env["DEEPFLIX_JOB_MOVIE_ID"],
        int(env["DEEPFLIX_JOB_ATTEMPT"]),
    )


class ArtifactStore(Protocol):
    def put(self, movie_id: str, name: str, source: Path, *, attempt: int | None = None) -> str:
        """Store a file under the movie's prefix; returns its storage path.

        The store takes the file: a local store moves it into place. A store that a stale
        execution could still write to after its attempt was given up (Cloud Storage) keeps
        each `attempt`'s files apart, so the attempt recorded in the movie keeps its own.
        """

    def fetch(self, path: str, dest: Path) -> None: ...

    def url(self, path: str) -> str:
        """Where a client can download it (signed URL, or the API's download route)."""

    def delete(self, movie_id: str) -> int:
        """Remove every file under the movie's prefix; returns how many were removed."""


class DeadLetters(Protocol):
    """The messages the queue gave up delivering (embedded mode's queue keeps them)."""

    def dead_letters(self, limit: int) -> list[DeadLetter]:
        """Oldest first."""

    def replay(self, dead_letter_id: str) -> bool:
        """Send the message again, as new, and forget the dead letter; False if absent."""


class JobLogs(Protocol):
    """What the stage jobs of a movie wrote (embedded mode's job log files)."""

    def tail(self, movie_id: str, lines: int) -> str | None:
        """The last `lines` lines of the movie's job logs, its attempts in order; None when
        it has none."""

    def remove(self, movie_id: str) -> None: ...
