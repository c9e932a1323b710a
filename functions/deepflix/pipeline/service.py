"""The pipeline service: applies transitions through the ports and performs their commands."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Callable
from datetime import UTC, datetime

from deepflix.pipeline.errors import Conflict, NotFound
from deepflix.pipeline.events import (
    CancelExecution,
    CancelRequested,
    CheckDeadline,
    Claimed,
    Command,
    DeadlinePassed,
    Dispatch,
    Event,
    JobStarted,
    RetryRequested,
    RunStage,
)
from deepflix.pipeline.models import STAGES, Movie, MovieCreate, Stage, StageState, StageStatus
from deepflix.pipeline.policy import PipelineConfig
from deepflix.pipeline.ports import (
    EventBus,
    IdempotencyConflict,
    JobRunner,
    MovieStore,
    Page,
    QueueCounts,
    TaskQueue,
)
from deepflix.pipeline.position import QueuePosition, estimate_eta
from deepflix.pipeline.transitions import Decision, apply

Clock = Callable[[], datetime]


def utcnow() -> datetime:
    return datetime.now(UTC)


def stage_topic(stage: Stage) -> str:
    return f"{stage.value}.requested"


def fingerprint(request: MovieCreate) -> str:
    return hashlib.sha256(request.model_dump_json().encode()).hexdigest()


class Pipeline:
    def __init__(
        self,
        *,
        store: MovieStore,
        tasks: TaskQueue,
        events: EventBus,
        jobs: JobRunner,
        config: PipelineConfig,
        clock: Clock = utcnow,
    ) -> None:
        self.store = store
        self.tasks = tasks
        self.events = events
        self.jobs = jobs
        self.config = config
        self.clock = clock

    # -- client operations ---------------------------------------------------------------

    def create(self, request: MovieCreate, *, owner: str, idempotency_key: str | None) -> Movie:
        now = self.clock()
        stages = {s: StageState() for s in STAGES}
        stages[Stage.story] = StageState(status=StageStatus.waiting, ready_at=now)
        movie = Movie(
            id=uuid.uuid4().hex,
            owner=owner,
            request=request,
            created_at=now,
            updated_at=now,
            stages=stages,
        )
        try:
            saved = self.store.create(
                movie, idempotency_key=idempotency_key, fingerprint=fingerprint(request)
            )
        except IdempotencyConflict as e:
            raise Conflict(
                "this Idempotency-Key was used with a different request body",
                details={"movie_id": e.movie_id},
            ) from e
        if saved.id == movie.id:
            self._admit(movie)
        return saved

    def get(self, movie_id: str) -> Movie:
        movie = self.store.get(movie_id)
        if movie is None:
            raise NotFound(f"no movie with id {movie_id!r}")
        return movie

    def find(self, movie_id: str) -> Movie | None:
        return self.store.get(movie_id)

    def list_movies(self, *, owner: str | None, limit: int, cursor: str | None) -> Page:
        return self.store.list(owner=owner, limit=limit, cursor=cursor)

    def counts(self) -> dict[Stage, QueueCounts]:
        return self.store.counts()

    def mean_durations(self) -> dict[Stage, float]:
        return self.store.mean_durations()

    def admission_paused(self) -> bool:
        return self.store.admission_paused()

    def cancel(self, movie_id: str) -> Movie:
        return self._client_event(movie_id, CancelRequested(self.clock()))

    def retry(self, movie_id: str) -> Movie:
        return self._client_event(movie_id, RetryRequested(self.clock()))

    def position(self, movie: Movie) -> QueuePosition | None:
        stage = movie.waiting_stage
        if stage is None:
            return None
        ahead, total, running = self.store.position(movie, stage)
        eta = estimate_eta(
            stage,
            ahead=ahead,
            running=running,
            config=self.config,
            observed=self.store.mean_durations(),
        )
        return QueuePosition(stage, ahead, total, running, eta)

    def pause_admission(self) -> None:
        self.store.set_admission_paused(True)

    def resume_admission(self) -> None:
        self.store.set_admission_paused(False)
        self.dispatch(Stage.story)

    # -- internal operations (tasks, events, jobs) ---------------------------------------

    def dispatch(self, stage: Stage) -> int:
        """Fill the stage's free slots from its queue; returns how many were started."""
        if stage is Stage.story and self.store.admission_paused():
            return 0  # paused admission: new movies wait; movies already admitted go on
        now = self.clock()
        claimed = self.store.claim(
            stage,
            self.config[stage].concurrency,
            now,
            lambda m: apply(m, Claimed(stage, now), self.config),
        )
        for t in claimed:
            self._perform(t.commands)
        return len(claimed)

    def start_job(self, movie_id: str, stage: Stage, attempt: int) -> None:
        """Hand a stage attempt to the job runner and record the execution it started."""
        execution = self.jobs.run(
            stage=stage, movie_id=movie_id, attempt=attempt, timeout_s=self.config[stage].timeout_s
        )
        self.report(movie_id, JobStarted(stage, attempt, execution, self.clock()))

    def report(self, movie_id: str, event: Event) -> Decision | None:
        """Apply an event from stage work; stale or repeated reports change nothing."""
        t = self.store.mutate(movie_id, lambda m: apply(m, event, self.config))
        if t is not None:
            self._perform(t.commands)
        return t

    def check_deadline(self, movie_id: str, stage: Stage, attempt: int) -> None:
        self.report(movie_id, DeadlinePassed(stage, attempt, self.clock()))

    def sweep(self) -> None:
        """Safety net for lost kicks and lost deadline tasks: dispatch all, time out overdue."""
        for movie in self.store.overdue(self.clock()):
            stage = movie.running_stage
            if stage is not None:
                self.check_deadline(movie.id, stage, movie.stages[stage].attempts)
        for stage in STAGES:
            self.dispatch(stage)

    def _admit(self, movie: Movie) -> None:
        """Have a new movie's story stage dispatched. Through the task queue, so the API
        returns at once; the name makes a repeated enqueue harmless."""
        self.tasks.enqueue("dispatch", {"stage": Stage.story.value}, name=f"admit-{movie.id}")

    def _client_event(self, movie_id: str, event: Event) -> Movie:
        t = self.store.mutate(movie_id, lambda m: apply(m, event, self.config))
        if t is None:
            raise NotFound(f"no movie with id {movie_id!r}")
        if not t.applied:
            raise Conflict(t.reason, details={"status": t.movie.status.value})
        self._perform(t.commands)
        return t.movie

    def _perform(self, commands: tuple[Command, ...]) -> None:
        for c in commands:
            if isinstance(c, RunStage):
                self.events.publish(
                    stage_topic(c.stage),
                    {"movie_id": c.movie_id, "stage": c.stage.value, "attempt": c.attempt},
                    {"movie_id": c.movie_id, "stage": c.stage.value, "attempt": str(c.attempt)},
                )
            elif isinstance(c, CheckDeadline):
                self.tasks.enqueue(
                    "deadline",
                    {"movie_id": c.movie_id, "stage": c.stage.value, "attempt": c.attempt},
                    name=f"deadline-{c.movie_id}-{c.stage.value}-{c.attempt}",
                    at=c.at,
                )
            elif isinstance(c, Dispatch):
                if c.at is None:
                    self.dispatch(c.stage)
                else:
                    stamp = int(c.at.timestamp() * 1000)
                    self.tasks.enqueue(
                        "dispatch",
                        {"stage": c.stage.value},
                        name=f"dispatch-{c.stage.value}-{stamp}",
                        at=c.at,
                    )
            elif isinstance(c, CancelExecution):
                self.jobs.cancel(c.execution)
