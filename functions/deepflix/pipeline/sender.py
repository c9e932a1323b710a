"""Sending what waits in movies' outboxes: each message once its change is saved, again later
if its transport was down (pipeline/outbox.py)."""

from __future__ import annotations

import contextlib
import logging
import threading
import uuid
from collections.abc import Callable, Iterable, Iterator
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
# Deadline checks are coalesced too (ADR 0030): the deadlines that fall in one window of this
# many seconds share one `deadlines` task, named after the window's end and run then, which
# times out every attempt overdue by that time. An attempt overruns by at most this long.
DEADLINE_WINDOW_S = 10.0


def window_end(at: datetime, seconds: float) -> datetime:
    """The end of the window of `seconds` that `at` falls in: always later than `at`."""
    return datetime.fromtimestamp((int(at.timestamp() // seconds) + 1) * seconds, UTC)


def admit_task(now: datetime) -> tuple[str, datetime]:
    """The name and time of the admission task that covers a create sent at `now`."""
    end = window_end(now, ADMIT_WINDOW_S)
    return f"admit-story-{int(end.timestamp() * 1000)}", end


def deadlines_task(deadline: datetime) -> tuple[str, datetime]:
    """The name and time of the `deadlines` task that times out an attempt whose deadline
    is `deadline`: the end of the deadline's window, strictly after it (the store's
    overdue() and the transition want the time past the deadline)."""
    end = window_end(deadline, DEADLINE_WINDOW_S)
    return f"deadlines-{int(end.timestamp() * 1000)}", end


def stage_topic(stage: Stage) -> str:
    return f"{stage.value}.requested"


class Sender:
    """Sends the messages of saved changes through the transports, and keeps track of which
    transport failed lately so an outage costs one try, not one per message.

    With `receipts` (a store where marking messages sent is a write of its own), entries
    whose receiver writes the movie anyway are left in the outbox for it to take out
    (outbox.received): the admission task (the movie's claim) and, for the stages in
    `receipts`, a request (the job start's claim, told so by the request's `settle`). A
    drain sends such an entry again only once it is older than outbox.GRACE_S, and then
    marks it sent. A request of a stage that runs in the function (`by_outcome`: the
    story) is taken out by its attempt's outcome, which may be minutes away, so no drain
    sends it; one whose send failed is held (saved without the flag, in every mode) and a
    drain sends that one after its grace. One lost in a crash before its send is timed out
    by its attempt's deadline, and retried.

    Deadline checks are no outbox entries (ADR 0030): after a claim is saved, `watch` asks
    for the `deadlines` task of its deadline's window, best effort; the minute sweep times
    out what a lost one would have.
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
        self._admitted = Windows()  # admission tasks
        self._watched = Windows()  # deadlines tasks
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
        held: list[Outgoing] = []
        for entry in movie.outbox:
            if drain and self._on_its_way(entry):
                continue
            if not outbox.stale(movie, entry):
                if drain and entry.by_outcome:  # sent, or lost in a crash: not known failed
                    continue
                command = outbox.command(movie.id, entry)
                way = outbox.transport(command)
                settle = not drain and self._settles(entry)
                if way in down or not self._send_traced(movie, command, settle):
                    down.add(way)
                    if entry.by_outcome:
                        held.append(entry)
                    continue
                went.append(entry)
                if entry.kind == "webhook":
                    # Kept until its attempt is recorded (pipeline/webhooks.py): a hand-off
                    # that a crash loses is sent again by the sweep, under the same name.
                    continue
            done.append(entry)
        # What went out and a receiver takes out (the admission, a request that settles).
        marked = done if drain else [e for e in done if not (e in went and self._receipted(e))]
        if marked:
            try:
                self.store.sent(movie.id, marked)
            except Unavailable as e:  # sent again later, which every receiver takes well
                log.warning("could not mark messages sent: %s", e.message)
        if held:
            self._hold(movie.id, held)
        # This one went out: so may what an outage left in others. Not from a drain's own
        # sends: a drain inside the drain read the movies the outer one had still to send,
        # and sent and marked them once more each (7.9 marks a movie in a deep queue).
        if not drain and len(done) == len(movie.outbox) and self.health.drain_due():
            self.drain()

    def _receipted(self, entry: Outgoing) -> bool:
        """Whether the entry's receiver takes it out of the outbox (see the class)."""
        if self.receipts is None:
            return False
        return entry.kind == "admit" or entry.by_outcome or self._settles(entry)

    def _settles(self, entry: Outgoing) -> bool:
        """Whether the entry is a request its job start's claim takes out (see the class)."""
        if self.receipts is None or entry.kind != "run_stage":
            return False
        return entry.stage in self.receipts

    def _hold(self, movie_id: str, entries: list[Outgoing]) -> None:
        """Save requests whose send failed as held (without `by_outcome`): a drain sends a
        held one after its grace, where it leaves alone one that may be running. A write on
        the failure path only; one that fails too leaves the attempt to its deadline."""

        def hold(m: Movie) -> Decision:
            if not any(o in entries for o in m.outbox):  # its outcome took it out meanwhile
                return Decision(m, applied=False)
            kept = tuple(
                o.model_copy(update={"by_outcome": False}) if o in entries else o for o in m.outbox
            )
            return Decision(m.model_copy(update={"outbox": kept}))

        try:
            self.store.mutate(movie_id, hold)
        except Unavailable as e:
            log.warning("could not hold a request whose send failed: %s", e.message)

    def _on_its_way(self, entry: Outgoing) -> bool:
        age = (self.clock() - entry.since).total_seconds()
        return self._receipted(entry) and age < outbox.GRACE_S

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
        request tells its receiver to take it out of the outbox."""
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
            self._ask_deadlines(c.at)
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
        """Enqueue the admission task of this window, unless this process did already: a
        burst of creates costs a task a second (Windows)."""
        now = self.clock()
        name, at = admit_task(now)
        with self._admitted.unasked(name, at, now) as unasked:
            if unasked:
                self.tasks.enqueue("dispatch", {"stage": Stage.story.value}, name=name, at=at)

    def _ask_deadlines(self, deadline: datetime) -> None:
        """Enqueue the `deadlines` task of the deadline's window, unless this process did
        already: the claims of a window cost one task between them (Windows)."""
        now = self.clock()
        name, at = deadlines_task(deadline)
        with self._watched.unasked(name, at, now) as unasked:
            if unasked:
                self.tasks.enqueue("deadlines", {}, name=name, at=at)

    def watch(self, commands: Iterable[Command]) -> None:
        """Ask for the `deadlines` task of each deadline check among a saved change's
        commands (a claim's), best effort: no outbox entry, no mark (ADR 0030). One that
        fails, or is not tried while the task queue rests, is caught by the minute sweep,
        which times out every overdue attempt; nothing is kept to send again."""
        for c in commands:
            if not isinstance(c, CheckDeadline) or "tasks" in self.health.resting():
                continue
            try:
                self._ask_deadlines(c.at)
            except Unavailable as e:
                log.warning("could not enqueue a deadline check: %s", e.message)
                self.health.failed("tasks")
            else:
                self.health.worked("tasks")


class Windows:
    """Tasks of one kind coalesced by window (admissions, deadlines), that this process
    enqueued or found taken, by name: when each runs.

    One task per window, not per movie. After the first call of a window, this process
    makes no call for it at all (the queue would refuse the name as a repeat); a refusal
    counts as enqueued too, since the task exists. A failed call is not remembered: the
    next one tries again."""

    def __init__(self) -> None:
        self._due: dict[str, datetime] = {}
        self._lock = threading.Lock()

    @contextlib.contextmanager
    def unasked(self, name: str, at: datetime, now: datetime) -> Iterator[bool]:
        """Whether the task `name`, due `at`, is still to be asked for; the caller asks for
        it inside the block, which counts it asked unless the call raised. One caller at a
        time, so a window's task is asked for once."""
        with self._lock:
            if name in self._due:
                yield False
                return
            yield True
            # A window that has run is never asked for again: forgotten.
            self._due = {n: t for n, t in self._due.items() if t >= now} | {name: at}
