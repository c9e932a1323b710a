"""The outbox: a decision's messages are saved in its movie, each maps back to its command."""

from __future__ import annotations

from datetime import timedelta

import pytest

from deepflix.pipeline import outbox
from deepflix.pipeline.events import (
    Admit,
    CancelExecution,
    CancelRequested,
    CheckDeadline,
    Claimed,
    Command,
    Dispatch,
    JobStarted,
    JobStarting,
    RunStage,
    StageFailed,
    StageSucceeded,
)
from deepflix.pipeline.models import Outgoing, Stage
from deepflix.pipeline.transitions import apply
from tests.factories import CONFIG, T0, movie

pytestmark = pytest.mark.unit
AT = T0 + timedelta(seconds=1)


def test_a_claim_saves_its_stage_request_in_the_outbox_and_not_its_deadline_check() -> None:
    t = apply(movie(), Claimed(Stage.story, AT), CONFIG)
    request, check = t.commands
    assert isinstance(check, CheckDeadline)  # performed after the save, best effort
    assert [outbox.command(t.movie.id, o) for o in t.movie.outbox] == [request]
    assert all(o.since == AT for o in t.movie.outbox)
    # The story runs in the function: its outcome takes the request out, no drain sends it,
    # so it is not in the index drains read (ADR 0028) until held.
    (entry,) = t.movie.outbox
    assert entry.by_outcome and t.movie.queue_fields().outbox_since is None
    held = t.movie.model_copy(update={"outbox": (entry.model_copy(update={"by_outcome": False}),)})
    assert held.queue_fields().outbox_since == AT
    (images,) = outbox.outgoing([RunStage("m", Stage.images, 1)], AT, frozenset({Stage.story}))
    assert not images.by_outcome  # a job stage's: its job start's claim takes it out


def test_the_outcome_of_an_attempt_takes_its_request_out_of_the_outbox() -> None:
    claimed = apply(movie(), Claimed(Stage.story, AT), CONFIG).movie
    assert [o.kind for o in claimed.outbox] == ["run_stage"]  # sent, never marked
    done = apply(claimed, StageSucceeded(Stage.story, 1, (), AT), CONFIG).movie
    assert [o.kind for o in done.outbox] == []  # the images request, if any, is new
    failed = apply(claimed, StageFailed(Stage.story, 1, "boom", "x", True, AT), CONFIG).movie
    assert [o.kind for o in failed.outbox] == ["dispatch"]  # the retry's, not the request
    cancelled = apply(claimed, CancelRequested(AT), CONFIG).movie
    assert all(o.kind != "run_stage" for o in cancelled.outbox)
    dumped = claimed.outbox[0].model_dump(mode="json")
    assert dumped["by_outcome"] is True
    assert "by_outcome" not in failed.outbox[0].model_dump(mode="json")  # shape kept


def test_a_dispatch_due_now_is_no_message_and_a_later_one_is() -> None:
    m = apply(movie(), Claimed(Stage.story, AT), CONFIG).movie
    m = m.model_copy(update={"outbox": ()})  # as once sent
    t = apply(m, StageSucceeded(Stage.story, 1, (), AT), CONFIG)
    assert t.commands and t.movie.outbox == ()  # dispatches now: done in the same operation
    failed = apply(m, StageFailed(Stage.story, 1, "boom", "x", True, AT), CONFIG)
    (later,) = failed.movie.outbox
    assert later.kind == "dispatch" and later.at is not None and later.at > AT


def test_what_a_skipped_event_asks_is_not_saved() -> None:
    m = apply(movie(), Claimed(Stage.story, AT), CONFIG).movie
    late = apply(m, JobStarted(Stage.story, 9, "stray", AT), CONFIG)
    assert not late.applied and late.commands == (CancelExecution("stray"),)
    assert late.movie.outbox == m.outbox


def test_every_message_maps_back_to_its_command_and_its_transport() -> None:
    commands: list[Command] = [
        RunStage("m", Stage.images, 2),
        Dispatch(Stage.video, at=AT),
        CancelExecution("exec-1"),
        Admit("m"),
    ]
    entries = outbox.outgoing(commands, T0)
    assert [outbox.command("m", e) for e in entries] == commands
    assert [outbox.transport(c) for c in commands] == ["events", "tasks", "jobs", "tasks"]
    assert outbox.outgoing([CheckDeadline("m", Stage.images, 2, AT)], T0) == ()
    # One saved before deadline checks left the outbox is still sent, on the task queue.
    check = legacy_check(Stage.images, 2)
    assert outbox.command("m", check) == CheckDeadline("m", Stage.images, 2, AT)
    assert outbox.transport(outbox.command("m", check)) == "tasks"


def legacy_check(stage: Stage, attempt: int) -> Outgoing:
    """A deadline check's entry, as outboxes saved before ADR 0030 may hold one."""
    return Outgoing(kind="check_deadline", stage=stage, attempt=attempt, at=AT, since=T0)


def test_a_request_or_deadline_check_for_a_finished_attempt_is_stale() -> None:
    m = apply(movie(), Claimed(Stage.story, AT), CONFIG).movie
    (request,) = m.outbox
    check = legacy_check(Stage.story, 1)
    assert not outbox.stale(m, request) and not outbox.stale(m, check)
    done = apply(m, StageSucceeded(Stage.story, 1, (), AT), CONFIG).movie
    assert outbox.stale(done, request) and outbox.stale(done, check)


def test_health_rests_a_failed_transport_and_asks_once_per_window_for_a_sweep() -> None:
    health = outbox.Health()
    assert health.resting() == set() and not health.drain_due()
    health.failed("events")
    assert health.resting() == {"events"} and health.backlog and health.drain_due()
    health.draining()
    assert not health.drain_due()
    health.worked("events")
    assert health.resting() == set()
    asked = health.retry_sweep(AT)
    assert asked is not None and asked[1] == AT + timedelta(seconds=outbox.RETRY_S)
    assert health.retry_sweep(AT) is None  # asked already in this window
    later = health.retry_sweep(AT + timedelta(seconds=outbox.RETRY_S))
    assert later is not None and later[0] != asked[0]


def test_a_claim_takes_the_admission_out_of_the_outbox_sent_or_not() -> None:
    queued = movie().model_copy(update={"outbox": outbox.outgoing([Admit("m")], T0)})
    t = apply(queued, Claimed(Stage.story, AT), CONFIG)
    assert [o.kind for o in t.movie.outbox] == ["run_stage"]


def test_a_job_start_told_so_takes_its_attempts_request_and_deadline_check_out() -> None:
    m = apply(movie(), Claimed(Stage.story, AT), CONFIG).movie
    # The check as an outbox saved before ADR 0030 holds it, its request's sender's to take.
    other = (legacy_check(Stage.story, 1), *outbox.outgoing([CancelExecution("exec-0")], AT))
    m = m.model_copy(update={"outbox": (*m.outbox, *other)})
    kept = apply(m, JobStarting(Stage.story, 1, AT), CONFIG).movie
    assert [o.kind for o in kept.outbox] == ["run_stage", "check_deadline", "cancel_execution"]
    taken = apply(m, JobStarting(Stage.story, 1, AT, settles=True), CONFIG).movie
    assert [o.kind for o in taken.outbox] == ["cancel_execution"]
    stale = apply(m, JobStarting(Stage.story, 2, AT, settles=True), CONFIG)
    assert not stale.applied  # another attempt's request takes nothing out
