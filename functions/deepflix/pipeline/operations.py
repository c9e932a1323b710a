"""The operator's operations on the pipeline: delete, bulk retry and clean, priority, pauses."""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from deepflix.pipeline.errors import Conflict, NotFound
from deepflix.pipeline.models import Movie, MovieStatus, Priority, Stage
from deepflix.pipeline.operator import (
    DeadLetter,
    MovieFilter,
    cleanable,
    reprioritize,
)
from deepflix.pipeline.ports import ArtifactStore, DeadLetters, JobLogs, MovieStore, UnitOfWork

# Movies a bulk action reads per page of the store's list.
BULK_PAGE = 100


@dataclass(frozen=True)
class OperatorPorts:
    """What the operator's operations need beside the store; None where a mode has none
    (the cloud keeps no dead letters of its own, nor job log files)."""

    artifacts: ArtifactStore | None = None
    dead_letters: DeadLetters | None = None
    job_logs: JobLogs | None = None
    # Where a person reads a movie's logs, where it is not the API's logs route (the cloud's
    # Cloud Logging).
    logs_link: Callable[[str], str] | None = None


class Pipeline(Protocol):
    """What the operator's operations use of the pipeline (pipeline/service.py)."""

    @property
    def store(self) -> MovieStore: ...

    @property
    def unit_of_work(self) -> UnitOfWork: ...

    def clock(self) -> datetime: ...

    def get(self, movie_id: str) -> Movie: ...

    def cancel(self, movie_id: str) -> Movie: ...

    def retry(self, movie_id: str) -> Movie: ...

    def dispatch(self, stage: Stage) -> int: ...


class Operator:
    """The operator's side of the pipeline: owns no state; each operation is one or more of
    the pipeline's units of work, so it commits (and sends) as any other change does."""

    def __init__(self, pipeline: Pipeline, ports: OperatorPorts) -> None:
        self.pipeline = pipeline
        self.ports = ports

    @property
    def store(self) -> MovieStore:
        return self.pipeline.store

    # -- one movie -------------------------------------------------------------------------

    def delete(self, movie_id: str) -> None:
        """Cancel the movie if it is still going (its job is stopped as for any cancel),
        remove its files, then the movie itself. A delete that fails half way leaves a
        movie whose files are gone: the next delete finishes it."""
        movie = self.pipeline.get(movie_id)
        if not movie.status.terminal:
            try:
                movie = self.pipeline.cancel(movie_id)
            except Conflict:  # it finished meanwhile
                movie = self.pipeline.get(movie_id)
        if self.ports.artifacts is not None:
            self.ports.artifacts.delete(movie_id)
        if self.ports.job_logs is not None:
            self.ports.job_logs.remove(movie_id)
        if not self.pipeline.unit_of_work(lambda: self.store.delete(movie_id)):
            raise NotFound(f"no movie with id {movie_id!r}")

    def set_priority(self, movie_id: str, priority: Priority) -> Movie:
        """A waiting movie's new priority (Conflict for any other)."""
        at = self.pipeline.clock()
        decision = self.pipeline.unit_of_work(
            lambda: self.store.mutate(movie_id, lambda m: reprioritize(m, priority, at))
        )
        if decision is None:
            raise NotFound(f"no movie with id {movie_id!r}")
        if not decision.applied:
            raise Conflict(decision.reason, details={"status": decision.movie.status.value})
        return decision.movie

    # -- many movies -----------------------------------------------------------------------

    def retry_failed(self) -> list[str]:
        """Retry every failed movie; the ids of those retried (one that changed meanwhile
        is left alone)."""
        retried = []
        for movie in list(self._all(MovieFilter(status=MovieStatus.failed))):
            try:
                self.pipeline.retry(movie.id)
            except (Conflict, NotFound):
                continue
            retried.append(movie.id)
        return retried

    def clean(self, *, older_than_s: float, statuses: Collection[MovieStatus]) -> list[str]:
        """Delete the finished movies in `statuses` that finished `older_than_s` ago or
        more, with their files; the ids deleted."""
        now = self.pipeline.clock()
        doomed = [
            m.id
            for status in statuses
            for m in self._all(MovieFilter(status=status))
            if cleanable(m, now=now, older_than_s=older_than_s, statuses=statuses)
        ]
        deleted = []
        for movie_id in doomed:
            try:
                self.delete(movie_id)
            except (Conflict, NotFound):
                continue
            deleted.append(movie_id)
        return deleted

    def _all(self, where: MovieFilter) -> Iterator[Movie]:
        cursor: str | None = None
        while True:
            page = self.store.list(owner=None, limit=BULK_PAGE, cursor=cursor, where=where)
            yield from page.movies
            if page.next_cursor is None:
                return
            cursor = page.next_cursor

    # -- queues ----------------------------------------------------------------------------

    def paused_stages(self) -> frozenset[Stage]:
        return self.store.paused_stages()

    def pause_stage(self, stage: Stage) -> None:
        """The stage's queue admits nothing new; what runs there goes on."""
        self.pipeline.unit_of_work(lambda: self.store.set_stage_paused(stage, True))

    def resume_stage(self, stage: Stage) -> None:
        self.pipeline.unit_of_work(lambda: self.store.set_stage_paused(stage, False))
        self.pipeline.dispatch(stage)

    # -- dead letters and logs -------------------------------------------------------------

    def dead_letters(self, limit: int) -> list[DeadLetter]:
        letters = self.ports.dead_letters
        return [] if letters is None else letters.dead_letters(limit)

    def replay(self, dead_letter_id: str) -> None:
        replayed = self.ports.dead_letters is not None and self.pipeline.unit_of_work(
            lambda: self._replay(dead_letter_id)
        )
        if not replayed:
            raise NotFound(f"no dead letter with id {dead_letter_id!r}")

    def _replay(self, dead_letter_id: str) -> bool:
        assert self.ports.dead_letters is not None
        return self.ports.dead_letters.replay(dead_letter_id)

    def logs_url(self, movie_id: str) -> str | None:
        """Where the movie's logs are read: the logs route, or the platform's own view."""
        if self.ports.logs_link is not None:
            return self.ports.logs_link(movie_id)
        return f"/api/movies/{movie_id}/logs" if self.ports.job_logs is not None else None

    def job_log_tail(self, movie_id: str, lines: int) -> str:
        """The movie's job log tail; NotFound for a movie with none here."""
        self.pipeline.get(movie_id)
        text = None if self.ports.job_logs is None else self.ports.job_logs.tail(movie_id, lines)
        if text is None:
            raise NotFound(f"movie {movie_id} has no job logs here")
        return text
