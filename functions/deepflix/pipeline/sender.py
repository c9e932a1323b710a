"""Sending what waits in movies' outboxes: each message once its change is saved, again later
if its transport was down (pipeline/outbox.py)."""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from deepflix import tracing
from deepflix.pipeline import outbox
from deepflix.pipeline.errors import Unavailable
from deepflix.pipeline.events import (
    Admit,
    CancelExecution,
    CheckDeadline,
    Command,
    DeliverWebhook,
    Dispatch,
    RunStage,
)
from deepflix.pipeline.models import Movie, Outgoing, Stage
from deepflix.pipeline.ports import EventBus, JobRunner, MovieStore, TaskQueue
from deepflix.pipeline.transitions import Decision

log = logging.getLogger("deepflix.pipeline")

# Admission kicks are coalesced: the creates of one window of this many seconds share one
# dispatch task, named after the window and run at its end (after every create in it).
ADMIT_WINDOW_S = 1.0


def admit_task(now: datetime) -> tuple[str, datetime]:
    """The name and time of the admission task that covers a create sent at `now`."""
    end = (int(now.timestamp() // ADMIT_WINDOW_S) + 1) * ADMIT_WINDOW_S
    return f"admit-story-{int(end * 1000)}", datetime.fromtimestamp(end, UTC)


def stage_topic(stage: Stage) -> str:
    return f"{stage.value}.requested"


class Sender:
    """Sends the messages of saved changes through the transports, and keeps track of which
    transport failed lately so an outage costs one try, not one per message.

    With `receipts` (a store where marking messages sent is a write of its own), entries
    whose receiver writes the movie anyway are left in the outbox for it to take out
    (outbox.received): the admission task (the movie's claim) and, for the stages in
    `receipts`, a request and its deadline check (the job start's claim, told by the
    request that the check went out). A drain sends such an entry again only once it is
    older than outbox.GRACE_S, and then marks it sent.
    """

    def __init__(
        self,
        *,
        store: MovieStore,
        tasks: TaskQueue,
        events: EventBus,
        jobs: JobRunner,
        clock: Callable[[], datetime],
        receipts: frozenset[Stage] | None = None,
    ) -> None:
        self.store = store
        self.receipts = receipts
        self.tasks = tasks
        self.events = events
        self.jobs = jobs
        self.clock = clock
        self.health = outbox.Health()
        # In the names of webhook tasks: a sweep of this process sends a kept one again
        # under its taken name (nothing), a restarted process under a new one.
        self.boot = uuid.uuid4().hex[:8]
        # Admission tasks this process enqueued (or found taken), by name: when each runs.
        self._admitted: dict[str, datetime] = {}
        self._admitting = threading.Lock()
        self._draining = threading.Lock()

    def send(self, movie: Movie, down: set[str] | None = None, *, drain: bool = False) -> None:
        """Send what waits in the movie's outbox, then take it out. A transport that fails
        (or failed lately in this process, or earlier in this pass: `down`) keeps its
        messages waiting there. `drain`: a pass over waiting outboxes, which leaves alone
        what a receiver is to take out until its grace is over."""
        if not movie.outbox:
            return
        down = self.health.resting() if down is None else down
        done: list[Outgoing] = []
        went: list[Outgoing] = []
        # Requests last: one tells its receiver whether its deadline check went out.
        for entry in sorted(movie.outbox, key=lambda e: e.kind == "run_stage"):
            if drain and self._on_its_way(entry):
                continue
            if not outbox.stale(movie, entry):
                command = outbox.command(movie.id, entry)
                way = outbox.transport(command)
                settle = not drain and self._settles(movie, entry, went)
                if way in down or not self._send_traced(movie, command, settle):
                    down.add(way)
                    continue
                went.append(entry)
                if entry.kind == "webhook":
                    # Kept until its attempt is recorded (pipeline/webhooks.py): a hand-off
                    # that a crash loses is sent again by the sweep, under the same name.
                    continue
            done.append(entry)
        marked = done if drain else [e for e in done if not self._received(movie, e, went)]
        if marked:
            try:
                self.store.sent(movie.id, marked)
            except Unavailable as e:  # sent again later, which every receiver takes well
                log.warning("could not mark messages sent: %s", e.message)
        # This one went out: so may what an outage left in others. Not from a drain's own
        # sends: a drain inside the drain read the movies the outer one had still to send,
        # and sent and marked them once more each (7.9 marks a movie in a deep queue).
        if not drain and len(done) == len(movie.outbox) and self.health.drain_due():
            self.drain()

    def _receipted(self, entry: Outgoing) -> bool:
        """Whether the entry's receiver takes it out of the outbox (see the class)."""
        if self.receipts is None:
            return False
        if entry.kind == "admit":
            return True
        return entry.kind in ("run_stage", "check_deadline") and entry.stage in self.receipts

    def _on_its_way(self, entry: Outgoing) -> bool:
        age = (self.clock() - entry.since).total_seconds()
        return self._receipted(entry) and age < outbox.GRACE_S

    def _settles(self, movie: Movie, entry: Outgoing, went: list[Outgoing]) -> bool:
        """Whether a request can tell its receiver to take it and its deadline checks out:
        every check of its attempt in this outbox went out (they are sent first)."""
        if entry.kind != "run_stage" or not self._receipted(entry):
            return False
        checks = [e for e in movie.outbox if _same_attempt(e, entry, "check_deadline")]
        return all(c in went for c in checks)

    def _received(self, movie: Movie, entry: Outgoing, went: list[Outgoing]) -> bool:
        """Whether a sent entry is left for its receiver to take out, unmarked."""
        if entry not in went or not self._receipted(entry):
            return False
        if entry.kind == "admit":
            return True
        request = [e for e in went if _same_attempt(e, entry, "run_stage")]
        return any(self._settles(movie, r, went) for r in request)

    def drain(self) -> None:
        """Send what waits in every outbox (the sweep; the first write after an outage).

        One drain at a time in this process: two would read the same movies (the longest
        waiting) and send and mark each one twice; the one running covers what the other
        would have read."""
        if not self._draining.acquire(blocking=False):
            return
        try:
            self.health.draining()
            down: set[str] = set()
            # With receipts, a movie whose messages are all younger than their grace has
            # nothing a drain would send (the receipts' are on their way; one that failed
            # asked for a sweep after RETRY_S, no sooner): not read at all, where each was a
            # billed read a sweep on Firestore, every waiting movie's admission in a deep
            # queue.
            before = None
            if self.receipts is not None:
                before = self.clock() - timedelta(seconds=outbox.GRACE_S)
            movies = self.store.unsent(outbox.DRAIN_BATCH, before)
            for movie in movies:
                if movie.outbox:
                    self.send(movie, down, drain=True)
                else:  # sent, but the store's index did not know it yet
                    self.store.mutate(movie.id, lambda m: Decision(m))
            self.health.backlog = bool(down) or len(movies) == outbox.DRAIN_BATCH
        finally:
            self._draining.release()

    def _send_traced(self, movie: Movie, command: Command, settle: bool = False) -> bool:
        # Sent in the movie's trace, whatever work (a sweep, another movie's dispatch) sends it.
        with tracing.use(movie.trace):
            return self.try_send(movie.id, command, settle)

    def try_send(self, movie_id: str, command: Command, settle: bool = False) -> bool:
        """Perform one message; False if its transport is unavailable. `settle`: a stage
        request tells its receiver to take it and its deadline check out of the outbox."""
        try:
            self._perform(command, settle)
        except Unavailable as e:
            log.warning("could not send %s: %s", command, e.message, extra={"movie_id": movie_id})
            self.health.failed(outbox.transport(command))
            self.ask_for_sweep()
            return False
        self.health.worked(outbox.transport(command))
        return True

    def ask_for_sweep(self) -> None:
        """Have a sweep run soon (a named task), to send what an outage held back; if the
        task queue is down too, the scheduled sweep does it."""
        self.health.backlog = True
        ask = self.health.retry_sweep(self.clock())
        if ask is None:
            return
        name, at = ask
        try:
            self.tasks.enqueue("sweep", {}, name=name, at=at)
        except Unavailable as e:
            log.warning("could not schedule a sweep: %s", e.message)

    def _perform(self, c: Command, settle: bool = False) -> None:
        """Send one message (a Dispatch for now is no message: Pipeline runs it)."""
        if isinstance(c, RunStage):
            data: dict[str, object] = {
                "movie_id": c.movie_id,
                "stage": c.stage.value,
                "attempt": c.attempt,
            }
            self.events.publish(
                stage_topic(c.stage),
                data | ({"settle": True} if settle else {}),
                {"movie_id": c.movie_id, "stage": c.stage.value, "attempt": str(c.attempt)},
            )
        elif isinstance(c, CheckDeadline):
            self.tasks.enqueue(
                "deadline",
                {"movie_id": c.movie_id, "stage": c.stage.value, "attempt": c.attempt},
                name=f"deadline-{c.movie_id}-{c.stage.value}-{c.attempt}",
                at=c.at,
            )
        elif isinstance(c, Dispatch) and c.at is not None:
            stamp = int(c.at.timestamp() * 1000)
            self.tasks.enqueue(
                "dispatch",
                {"stage": c.stage.value},
                name=f"dispatch-{c.stage.value}-{stamp}",
                at=c.at,
            )
        elif isinstance(c, CancelExecution):
            self.jobs.cancel(c.execution)
        elif isinstance(c, DeliverWebhook):
            self.tasks.enqueue(
                "webhook",
                {"movie_id": c.movie_id, "attempt": c.attempt},
                name=f"webhook-{c.movie_id}-{c.attempt}-{self.boot}",
                at=c.at,
            )
        elif isinstance(c, Admit):
            self._admit()

    def _admit(self) -> None:
        """Enqueue the admission task of this window, unless this process did already.

        One task per window, not per movie: a burst of creates costs a task a second. The
        creates after the first of a window in this process make no call at all (the queue
        would refuse the name as a repeat); a refusal counts as enqueued too, since the
        task exists. A failed call is not remembered: the next create tries again."""
        name, at = admit_task(self.clock())
        with self._admitting:
            if name in self._admitted:
                return
            self.tasks.enqueue("dispatch", {"stage": Stage.story.value}, name=name, at=at)
            # Windows only move on: those ended before this one are never asked again.
            self._admitted = {n: t for n, t in self._admitted.items() if t >= at} | {name: at}


def _same_attempt(e: Outgoing, of: Outgoing, kind: str) -> bool:
    return e.kind == kind and (e.stage, e.attempt) == (of.stage, of.attempt)
