"""The pipeline service: applies transitions through the ports and performs their commands."""

from __future__ import annotations

import hashlib
import logging
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Literal

from deepflix import tracing
from deepflix.pipeline import outbox
from deepflix.pipeline.errors import Conflict, NotFound, Unavailable
from deepflix.pipeline.eta import Eta
from deepflix.pipeline.eta_reads import EtaReads
from deepflix.pipeline.events import (
    Admit,
    CancelRequested,
    Claimed,
    DeadlinePassed,
    Dispatch,
    Event,
    JobStarted,
    JobStartFailed,
    JobStarting,
    RetryRequested,
)
from deepflix.pipeline.models import (
    STAGES,
    Movie,
    MovieCreate,
    Stage,
    StageState,
    StageStatus,
    WebhookState,
)
from deepflix.pipeline.operations import Operator, OperatorPorts
from deepflix.pipeline.operator import MovieFilter
from deepflix.pipeline.outlook import CreatedReads, Outlook, created_estimate
from deepflix.pipeline.policy import PipelineConfig
from deepflix.pipeline.ports import (
    EventBus,
    IdempotencyConflict,
    JobRunner,
    MovieStore,
    Page,
    QueueCounts,
    TaskQueue,
    UnitOfWork,
    each_step_alone,
)
from deepflix.pipeline.position import QueuePosition
from deepflix.pipeline.sender import Sender
from deepflix.pipeline.transitions import Decision, apply
from deepflix.pipeline.webhooks import Webhooks, WebhookSetup, announce

log = logging.getLogger("deepflix.pipeline")
Clock = Callable[[], datetime]
# How a new movie reaches its story stage: "task" through a named dispatch task, so a create
# returns at once whatever the queue holds; "inline" by a claim inside the create's own unit
# of work, where that costs a statement or two (the embedded database).
Admission = Literal["inline", "task"]


def utcnow() -> datetime:
    return datetime.now(UTC)


def fingerprint(request: MovieCreate) -> str:
    return hashlib.sha256(request.model_dump_json().encode()).hexdigest()


class Pipeline:
    """The movie service: owns every movie's way from request to a final status.

    It applies events to movies through the transition table (apply), saves the outcome
    through the store and performs the commands that follow: stage requests, deadline
    checks, dispatches into free slots, cancelled executions. The messages among them (not
    deadline checks: ADR 0030) are saved in the movie's outbox with the change, then sent;
    what could not be sent stays there, and the sweep (and the next write after an outage)
    sends it (pipeline/outbox.py).
    Every state-changing operation runs in `unit_of_work`, so with adapters that share one
    database a save and what it sends commit together. `admission` says how a new movie is
    dispatched (see Admission). Reads (find, list_movies, counts, ...) go straight to the
    store. `operator` (pipeline/operations.py) has the operator's operations, each made of
    these units of work, with the ports only they need (`OperatorPorts`).
    """

    def __init__(
        self,
        *,
        store: MovieStore,
        tasks: TaskQueue,
        events: EventBus,
        jobs: JobRunner,
        config: PipelineConfig,
        clock: Clock = utcnow,
        unit_of_work: UnitOfWork = each_step_alone,
        admission: Admission = "task",
        operator: OperatorPorts | None = None,
        webhooks: WebhookSetup | None = None,
        receipts: bool = False,
    ) -> None:
        self.store = store
        self.jobs = jobs
        self.config = config
        self.clock = clock
        self.unit_of_work = unit_of_work
        self.admission = admission
        # Receipts: the job stages' claims take their requests out of the outbox (Sender).
        taken = frozenset(s for s in STAGES if config[s].runs_as_job) if receipts else None
        self.sender = Sender(
            store=store, tasks=tasks, events=events, jobs=jobs, clock=clock, receipts=taken
        )
        self.health = self.sender.health
        self.operator = Operator(self, operator or OperatorPorts())
        self.default_webhook = webhooks.default_url if webhooks else None
        self.webhooks = (
            Webhooks(
                store=store,
                unit_of_work=unit_of_work,
                send=self.sender.send,
                clock=clock,
                post=webhooks.post,
                render=webhooks.render,
                config=webhooks.config,
            )
            if webhooks is not None
            else None
        )
        self.etas = EtaReads(store=store, config=config, clock=clock)
        self._created_reads = CreatedReads()

    # -- client operations ---------------------------------------------------------------

    def create(self, request: MovieCreate, *, owner: str, idempotency_key: str | None) -> Movie:
        # The movie and its estimate are made before the write: the estimate only reads,
        # and with the embedded store a write runs on the one writer thread that every
        # state change waits for (its reads were most of a create's time there).
        now = self.clock()
        stages = {s: StageState() for s in STAGES}
        stages[Stage.story] = StageState(status=StageStatus.waiting, ready_at=now)
        url = request.webhook or self.default_webhook
        movie = Movie(
            id=uuid.uuid4().hex,
            owner=owner,
            request=request,
            created_at=now,
            updated_at=now,
            stages=stages,
            webhook=WebhookState(url=url) if url else None,
            trace=tracing.traceparent(),
        )
        eta, reads = created_estimate(self.store, self.etas, movie)
        movie = movie.model_copy(update={"eta_at_create": eta})
        saved, claimed = self.unit_of_work(lambda: self._create(movie, idempotency_key))
        if reads is not None and saved.id == movie.id and not claimed:
            # Its queue changed since by its own arrival only (a claim would have moved it).
            self._created_reads.keep(saved.id, reads)
        return saved

    def get(self, movie_id: str) -> Movie:
        movie = self.store.get(movie_id)
        if movie is None:
            raise NotFound(f"no movie with id {movie_id!r}")
        return movie

    def find(self, movie_id: str) -> Movie | None:
        return self.store.get(movie_id)

    def list_movies(
        self, *, owner: str | None, limit: int, cursor: str | None, where: MovieFilter | None = None
    ) -> Page:
        return self.store.list(owner=owner, limit=limit, cursor=cursor, where=where)

    def counts(self) -> dict[Stage, QueueCounts]:
        return self.store.counts()

    def mean_durations(self) -> dict[Stage, float]:
        return self.store.mean_durations()

    def oldest_waiting_s(self) -> dict[Stage, float]:
        """Per stage, how long the head of its queues has waited since it was ready (0 when
        none waits, or its backoff is not over): the gauge the waiting-time alert reads."""
        now = self.clock()
        ages: dict[Stage, float] = {}
        for stage in STAGES:
            ready = [m.stages[stage].ready_at or now for m in self.store.waiting_heads(stage)]
            ages[stage] = max([(now - r).total_seconds() for r in ready] + [0.0])
        return ages

    def admission_paused(self) -> bool:
        return self.store.admission_paused()

    def cancel(self, movie_id: str) -> Movie:
        return self.unit_of_work(
            lambda: self._client_event(movie_id, CancelRequested(self.clock()))
        )

    def retry(self, movie_id: str) -> Movie:
        return self.unit_of_work(lambda: self._client_event(movie_id, RetryRequested(self.clock())))

    def eta(self, movie: Movie, position: QueuePosition | None = None) -> Eta | None:
        """Until the movie's next stage starts and until it finishes, from the whole path
        ahead (pipeline/eta.py); None for a movie that is done. `position` saves the read
        where the caller has it."""
        stage = movie.current_stage
        if stage is None:
            return None
        running = movie.running_stage is not None
        ahead = 0
        if not running:
            position = position or self.position(movie)
            ahead = position.ahead if position is not None else 0
        return self.etas.estimate(movie, stage, running=running, ahead=ahead)

    def position(self, movie: Movie) -> QueuePosition | None:
        return self.outlook(movie).position

    def outlook(self, movie: Movie, *, created: bool = False) -> Outlook:
        """The movie's place, ETA and paused admission for one answer, each read once;
        `created` for the answer to the create that made it: what that create read in this
        process is not read again."""
        reads = self._created_reads.take(movie.id) if created else None
        return Outlook(movie, store=self.store, etas=self.etas, config=self.config, created=reads)

    def pause_admission(self) -> None:
        self.unit_of_work(lambda: self.store.set_admission_paused(True))

    def resume_admission(self) -> None:
        self.unit_of_work(self._resume_admission)

    # -- internal operations (tasks, events, jobs) ---------------------------------------

    def dispatch(self, stage: Stage) -> int:
        """Fill the stage's free slots from its queue; returns how many were started."""
        return self.unit_of_work(lambda: self._dispatch(stage))

    def start_job(
        self, movie_id: str, stage: Stage, attempt: int, *, settles: bool = False
    ) -> None:
        """Hand a stage attempt to the job runner and record the execution it started.

        The start is claimed in the movie first (compare and set), so of two deliveries of
        one stage request only one starts a job; the other, or a stale one, does nothing.
        """
        claimed_at = self.clock()
        # A name known before the start is recorded with the claim: one write, not two.
        name = self.jobs.execution_name(stage=stage, movie_id=movie_id, attempt=attempt)
        claim = self.report(movie_id, JobStarting(stage, attempt, claimed_at, name, settles))
        if claim is None or not claim.applied:
            return
        try:
            execution = self.jobs.run(
                stage=stage,
                movie_id=movie_id,
                attempt=attempt,
                timeout_s=self.config[stage].timeout_s,
            )
        except BaseException:
            # Give the claim back, so the redelivery this failure leads to can start the job.
            self.report(movie_id, JobStartFailed(stage, attempt, claimed_at, self.clock()))
            raise
        if execution != name:
            self.report(movie_id, JobStarted(stage, attempt, execution, self.clock()))

    def report(self, movie_id: str, event: Event) -> Decision | None:
        """Apply an event from stage work; stale or repeated reports change nothing."""
        return self.unit_of_work(lambda: self._report(movie_id, event))

    def check_deadline(self, movie_id: str, stage: Stage, attempt: int) -> None:
        """A `deadline` task of one attempt: enqueued only before ADR 0030, still answered."""
        self.report(movie_id, DeadlinePassed(stage, attempt, self.clock()))

    def time_out_overdue(self) -> None:
        """Time out every attempt past its deadline (a `deadlines` task, ADR 0030): the
        sweep's overdue part alone. A repeat finds nothing: a timed-out attempt has none."""
        self.unit_of_work(self._time_out_overdue)

    def deliver_webhook(self, movie_id: str, attempt: int) -> None:
        """Make a webhook attempt (a `webhook` task), unless it was made already."""
        if self.webhooks is None:
            log.warning("no webhook delivery here; dropping", extra={"movie_id": movie_id})
            return
        self.webhooks.deliver(movie_id, attempt)

    def sweep(self) -> None:
        """Safety net for lost kicks and lost deadline tasks: send what waits in outboxes,
        time out overdue attempts, dispatch every stage."""
        self.unit_of_work(self._sweep)

    # -- the operations' bodies, run inside their unit of work ---------------------------

    def _create(self, movie: Movie, idempotency_key: str | None) -> tuple[Movie, int]:
        """The saved movie (or the one an Idempotency-Key named before), and how many movies
        an inline admission claimed."""
        now = movie.created_at
        if self.admission == "task":
            # The name makes a repeated enqueue harmless.
            movie = movie.model_copy(update={"outbox": outbox.outgoing([Admit(movie.id)], now)})
        try:
            saved = self.store.create(
                movie, idempotency_key=idempotency_key, fingerprint=fingerprint(movie.request)
            )
        except IdempotencyConflict as e:
            raise Conflict(
                "this Idempotency-Key was used with a different request body",
                details={"movie_id": e.movie_id},
            ) from e
        claimed = 0
        if saved.id == movie.id:
            if self.admission == "inline":
                claimed = self._dispatch(Stage.story)
            else:
                self.sender.send(saved)
        return saved, claimed

    def _resume_admission(self) -> None:
        self.store.set_admission_paused(False)
        self._dispatch(Stage.story)

    def _dispatch(self, stage: Stage) -> int:
        now, paused = self.clock(), list[bool]()

        def claim(m: Movie) -> Decision:
            # Whether the stage is paused is asked once the claim has a movie and a slot
            # for it (each a read on Firestore, and most dispatches find neither). Paused
            # admission: new movies wait; a paused queue: its movies wait; running go on.
            if not paused:
                held = stage is Stage.story and self.store.admission_paused()
                paused.append(held or stage in self.store.paused_stages())
            if paused[0]:
                return Decision(m, applied=False)
            return apply(m, Claimed(stage, now), self.config)

        claimed = self.store.claim(stage, self.config[stage].concurrency, now, claim)
        for decision in claimed:
            self._follow(decision)
        return len(claimed)

    def _apply(self, movie: Movie, event: Event) -> Decision:
        """apply(), with the webhook's first attempt queued when the movie is done."""
        d = apply(movie, event, self.config)
        if not d.applied:
            return d
        return Decision(announce(movie, d.movie, event.at), d.commands, d.applied, d.reason)

    def _report(self, movie_id: str, event: Event) -> Decision | None:
        decision = self.store.mutate(movie_id, lambda m: self._apply(m, event))
        if decision is not None:
            self._follow(decision)
        return decision

    def _sweep(self) -> None:
        self.sender.drain()
        self._time_out_overdue()
        for stage in STAGES:
            self._dispatch(stage)

    def _time_out_overdue(self) -> None:
        for movie in self.store.overdue(self.clock()):
            stage = movie.running_stage
            if stage is not None:
                attempt = movie.stages[stage].attempts
                self._report(movie.id, DeadlinePassed(stage, attempt, self.clock()))

    def _client_event(self, movie_id: str, event: Event) -> Movie:
        decision = self.store.mutate(movie_id, lambda m: apply(m, event, self.config))
        if decision is None:
            raise NotFound(f"no movie with id {movie_id!r}")
        if not decision.applied:
            raise Conflict(decision.reason, details={"status": decision.movie.status.value})
        self._follow(decision)
        return decision.movie

    # -- after a save: its outbox sent, the slots it freed refilled ------------------------

    def _follow(self, decision: Decision) -> None:
        if decision.applied:
            self.sender.send(decision.movie)
            self.sender.watch(decision.commands)  # a claim's deadline check
        else:  # a stray execution to stop: nothing was saved, so this is the only try
            for c in decision.commands:
                if not isinstance(c, Dispatch):
                    self.sender.try_send(decision.movie.id, c)
        for c in decision.commands:
            if isinstance(c, Dispatch) and c.at is None:
                self._refill(c.stage)

    def _refill(self, stage: Stage) -> None:
        try:
            self._dispatch(stage)
        except Unavailable as e:  # the change is saved; the sweep dispatches every stage
            log.warning("dispatching %s after a change failed: %s", stage.value, e.message)
            self.sender.ask_for_sweep()
