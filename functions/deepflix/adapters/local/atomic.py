"""The pipeline with each operation in one embedded transaction: a change and its messages."""

from __future__ import annotations

from typing import Any

from deepflix.adapters.local.db import Database
from deepflix.pipeline.events import Event
from deepflix.pipeline.models import Movie, MovieCreate, Stage
from deepflix.pipeline.service import Pipeline
from deepflix.pipeline.transitions import Decision


class AtomicPipeline(Pipeline):
    """Runs every state-changing operation as one write of the embedded database.

    The store and the queue share that database, so the movie's save, the claims it leads
    to and the messages they send commit together (a transactional outbox): a crash can no
    longer fall between a save and its commands. It is also what made the embedded pipeline
    fast (bench/RESULTS.md §1): one hand-off to the writer thread per operation instead of
    one per save, claim and message.
    """

    def __init__(self, *, db: Database, **ports: Any) -> None:
        super().__init__(**ports)
        self.db = db

    def _admit(self, movie: Movie) -> None:
        # In the create's own transaction: a claim here costs a statement or two, where the
        # admission task cost a name, a hand-off and a write of its own (bench/RESULTS.md §1).
        Pipeline.dispatch(self, Stage.story)

    def create(self, request: MovieCreate, *, owner: str, idempotency_key: str | None) -> Movie:
        return self.db.write(
            lambda _: Pipeline.create(self, request, owner=owner, idempotency_key=idempotency_key)
        )

    def cancel(self, movie_id: str) -> Movie:
        return self.db.write(lambda _: Pipeline.cancel(self, movie_id))

    def retry(self, movie_id: str) -> Movie:
        return self.db.write(lambda _: Pipeline.retry(self, movie_id))

    def pause_admission(self) -> None:
        self.db.write(lambda _: Pipeline.pause_admission(self))

    def resume_admission(self) -> None:
        self.db.write(lambda _: Pipeline.resume_admission(self))

    def dispatch(self, stage: Stage) -> int:
        return self.db.write(lambda _: Pipeline.dispatch(self, stage))

    def report(self, movie_id: str, event: Event) -> Decision | None:
        return self.db.write(lambda _: Pipeline.report(self, movie_id, event))

    def sweep(self) -> None:
        self.db.write(lambda _: Pipeline.sweep(self))
