"""The outbox: what a change must send is saved with its movie, then sent until it has been."""

from __future__ import annotations

import math
import time
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Literal

from deepflix.pipeline.events import (
    Admit,
    CancelExecution,
    CheckDeadline,
    Command,
    DeliverWebhook,
    Dispatch,
    JobStarting,
    RunStage,
)
from deepflix.pipeline.models import Movie, MovieStatus, Outgoing, Stage, StageStatus

# Where an entry goes: Pub/Sub (stage requests), Cloud Tasks (delayed dispatches, admissions,
# webhooks) or the job runner (cancelled executions). One failing leaves the others alone.
Transport = Literal["events", "tasks", "jobs"]
# After a transport failed, this process leaves it alone this long: every change meanwhile
# keeps its messages in its outbox instead of waiting out the same timeout again.
REST_S = 5.0
# A send that failed has the outboxes drained by a `sweep` task this much later, so the
# messages go out soon after the outage rather than at the next scheduled sweep.
RETRY_S = 10.0
# Movies whose outboxes one sweep drains; the next sweep goes on with the rest.
DRAIN_BATCH = 200
# Receipts (Sender): an entry whose receiver takes it out of the outbox, in the write it
# makes anyway, is not marked sent by the sender; until its receiver has had this long, a
# drain leaves it alone (it is on its way), and after that sends it again and marks it.
GRACE_S = RETRY_S


def outgoing(
    commands: Iterable[Command], since: datetime, inline: frozenset[Stage] = frozenset()
) -> tuple[Outgoing, ...]:
    """The messages among a saved change's commands, as outbox entries. A dispatch due now
    is no message: it changes other movies, in the same operation. Nor is a deadline check:
    its window's `deadlines` task is asked for best effort, and the minute sweep times out
    what a lost one would have (Sender.watch, ADR 0030). A request of an `inline` stage
    (run in the function, no job start) is for its attempt's outcome to take out."""
    out: list[Outgoing] = []
    new = Outgoing
    for c in commands:
        if isinstance(c, RunStage):
            mine = c.stage in inline
            run = new(
                kind="run_stage", stage=c.stage, attempt=c.attempt, since=since, by_outcome=mine
            )
            out.append(run)
        elif isinstance(c, Dispatch) and c.at is not None:
            out.append(new(kind="dispatch", stage=c.stage, at=c.at, since=since))
        elif isinstance(c, CancelExecution):
            out.append(new(kind="cancel_execution", execution=c.execution, since=since))
        elif isinstance(c, Admit):
            out.append(new(kind="admit", since=since))
        elif isinstance(c, DeliverWebhook):
            out.append(new(kind="webhook", attempt=c.attempt, at=c.at, since=since))
    return tuple(out)


def received(movie: Movie, event: object) -> tuple[Outgoing, ...]:
    """The movie's outbox after a change (`event`, applied) less what the change receives:
    the admission task once the movie is no longer queued (claimed, cancelled: moot, sent or
    not), the request of the attempt whose job start is claimed by a request that says so
    (JobStarting.settles), with the attempt's deadline check in an outbox saved before
    those were entries no more (ADR 0030; the sender that sent it left it there), and any
    request of an attempt the change ended (its outcome, a timeout, a cancel: moot, sent or
    not; the story stage's is taken out so, ADR 0028)."""

    def taken(o: Outgoing) -> bool:
        if o.kind == "admit":
            return movie.status is not MovieStatus.queued
        if stale(movie, o):
            return True
        if isinstance(event, JobStarting) and event.settles:
            attempt = (event.stage, event.attempt)
            return o.kind in ("run_stage", "check_deadline") and (o.stage, o.attempt) == attempt
        return False

    return tuple(o for o in movie.outbox if not taken(o))


def command(movie_id: str, entry: Outgoing) -> Command:
    """The command an outbox entry of the movie `movie_id` stands for (a `check_deadline`
    only in an outbox saved before ADR 0030: sent as its window's `deadlines` task)."""
    if entry.kind == "cancel_execution":
        assert entry.execution is not None  # nosec B101 # an invariant, not a check of input
        return CancelExecution(entry.execution)
    if entry.kind == "admit":
        return Admit(movie_id)
    if entry.kind == "webhook":
        assert entry.attempt is not None and entry.at is not None  # nosec B101 # an invariant
        return DeliverWebhook(movie_id, entry.attempt, entry.at)
    assert entry.stage is not None  # nosec B101 # an invariant, not a check of input
    if entry.kind == "dispatch":
        return Dispatch(entry.stage, at=entry.at)
    assert entry.attempt is not None  # nosec B101 # an invariant, not a check of input
    if entry.kind == "run_stage":
        return RunStage(movie_id, entry.stage, entry.attempt)
    assert entry.at is not None  # nosec B101 # an invariant, not a check of input
    return CheckDeadline(movie_id, entry.stage, entry.attempt, entry.at)


def transport(c: Command) -> Transport:
    if isinstance(c, RunStage):
        return "events"
    return "jobs" if isinstance(c, CancelExecution) else "tasks"


def stale(movie: Movie, entry: Outgoing) -> bool:
    """A stage request or deadline check for an attempt that no longer runs: moot, so it is
    dropped unsent (its receiver would ignore it anyway)."""
    if entry.kind not in ("run_stage", "check_deadline"):
        return False
    assert entry.stage is not None  # nosec B101 # an invariant, not a check of input
    st = movie.stages[entry.stage]
    return st.status is not StageStatus.running or st.attempts != entry.attempt


class Health:
    """What this process has seen of the transports: which failed lately (left alone for
    REST_S), whether messages wait unsent, and the retry sweeps it has asked for."""

    def __init__(self) -> None:
        self._resting: dict[str, float] = {}
        self.backlog = False
        self._drained = -math.inf
        self._asked: str | None = None

    def resting(self) -> set[str]:
        now = time.monotonic()
        return {t for t, until in self._resting.items() if until > now}

    def failed(self, transport: str) -> None:
        self._resting[transport] = time.monotonic() + REST_S
        self.backlog = True

    def worked(self, transport: str) -> None:
        self._resting.pop(transport, None)

    def drain_due(self) -> bool:
        """True at most once per REST_S while messages are known to wait unsent."""
        return self.backlog and time.monotonic() - self._drained >= REST_S

    def draining(self) -> None:
        self._drained = time.monotonic()

    def retry_sweep(self, now: datetime) -> tuple[str, datetime] | None:
        """The name and time of a sweep task that drains the outboxes soon, unless this
        process asked for that one already. Named by its RETRY_S window, so the processes
        that meet one outage ask for one sweep per window between them."""
        name = f"sweep-outbox-{int(now.timestamp() // RETRY_S)}"
        if name == self._asked:
            return None
        self._asked = name
        return name, now + timedelta(seconds=RETRY_S)
