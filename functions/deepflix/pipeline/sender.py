"""Sending what waits in movies' outboxes: each message once its change is saved, again later
if its transport was down (pipeline/outbox.py)."""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Callable
from datetime import UTC, datetime

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
from deepflix.pipeline.models import Movie, Stage
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
    transport failed lately so an outage costs one try, not one per message."""

    def __init__(
        self,
        *,
        store: MovieStore,
        tasks: TaskQueue,
        events: EventBus,
        jobs: JobRunner,
        clock: Callable[[], datetime],
    ) -> None:
        self.store = store
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

    def send(self, movie: Movie, down: set[str] | None = None) -> None:
        """Send what waits in the movie's outbox, then take it out. A transport that fails
        (or failed lately in this process, or earlier in this pass: `down`) keeps its
        messages waiting there."""
        if not movie.outbox:
            return
        down = self.health.resting() if down is None else down
        done = []
        for entry in movie.outbox:
            if not outbox.stale(movie, entry):
                command = outbox.command(movie.id, entry)
                way = outbox.transport(command)
                if way in down or not self._send_traced(movie, command):
                    down.add(way)
                    continue
                if entry.kind == "webhook":
                    # Kept until its attempt is recorded (pipeline/webhooks.py): a hand-off
                    # that a crash loses is sent again by the sweep, under the same name.
                    continue
            done.append(entry)
        if done:
            try:
                self.store.sent(movie.id, done)
            except Unavailable as e:  # sent again later, which every receiver takes well
                log.warning("could not mark messages sent: %s", e.message)
        if len(done) == len(movie.outbox) and self.health.drain_due():
            self.drain()  # this one went out: so may what an outage left in others

    def drain(self) -> None:
        """Send what waits in every outbox (the sweep; the first write after an outage)."""
        self.health.draining()
        down: set[str] = set()
        movies = self.store.unsent(outbox.DRAIN_BATCH)
        for movie in movies:
            if movie.outbox:
                self.send(movie, down)
            else:  # sent, but the store's index did not know it yet
                self.store.mutate(movie.id, lambda m: Decision(m))
        self.health.backlog = bool(down) or len(movies) == outbox.DRAIN_BATCH

    def _send_traced(self, movie: Movie, command: Command) -> bool:
        # Sent in the movie's trace, whatever work (a sweep, another movie's dispatch) sends it.
        with tracing.use(movie.trace):
            return self.try_send(movie.id, command)

    def try_send(self, movie_id: str, command: Command) -> bool:
        """Perform one message; False if its transport is unavailable."""
        try:
            self._perform(command)
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

    def _perform(self, c: Command) -> None:
        """Send one message (a Dispatch for now is no message: Pipeline runs it)."""
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
