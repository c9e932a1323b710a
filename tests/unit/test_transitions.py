"""The state machine: the table itself, and apply() for every event, duplicates included."""

from __future__ import annotations

from datetime import timedelta

import pytest

from deepflix.pipeline.events import (
    CancelExecution,
    CancelRequested,
    CheckDeadline,
    Claimed,
    DeadlinePassed,
    Dispatch,
    JobStarted,
    Progressed,
    RetryRequested,
    RunStage,
    StageFailed,
    StageSucceeded,
)
from deepflix.pipeline.models import MovieStatus, Stage, StageStatus
from deepflix.pipeline.policy import PipelineConfig, RetryPolicy, StagePolicy
from deepflix.pipeline.transitions import TRANSITIONS, apply
from tests.factories import CONFIG, T0, movie

pytestmark = pytest.mark.unit
CFG = CONFIG
AT = T0 + timedelta(seconds=1)


def run_through(m, *stages):  # type: ignore[no-untyped-def]
    """Claim and succeed each stage in turn."""
    for stage in stages:
        m = apply(m, Claimed(stage, AT), CFG).movie
        m = apply(m, StageSucceeded(stage, 1, ((f"{stage.value}.out", "p"),), AT), CFG).movie
    return m


def test_every_status_has_a_row_and_only_retry_leaves_failed_or_cancelled() -> None:
    assert set(TRANSITIONS) == set(MovieStatus)
    assert TRANSITIONS[MovieStatus.succeeded] == frozenset()
    # A retry goes back to the stage that stopped: never straight to an end.
    for stopped in (MovieStatus.failed, MovieStatus.cancelled):
        assert TRANSITIONS[stopped] == {MovieStatus.queued, MovieStatus.images, MovieStatus.video}
    for status, targets in TRANSITIONS.items():
        if not status.terminal:
            assert MovieStatus.cancelled in targets
        if status in (MovieStatus.story, MovieStatus.images, MovieStatus.video):
            assert MovieStatus.failed in targets


def test_claim_starts_the_stage_and_asks_for_work_and_a_deadline() -> None:
    t = apply(movie(), Claimed(Stage.story, AT), CFG)
    st = t.movie.stages[Stage.story]
    assert t.applied and t.movie.status is MovieStatus.story
    assert st.status is StageStatus.running and st.attempts == 1 and st.started_at == AT
    deadline = AT + timedelta(seconds=CFG[Stage.story].timeout_s)
    assert t.commands == (
        RunStage(t.movie.id, Stage.story, 1),
        CheckDeadline(t.movie.id, Stage.story, 1, deadline),
    )


def test_claim_twice_is_a_no_op() -> None:
    m = apply(movie(), Claimed(Stage.story, AT), CFG).movie
    t = apply(m, Claimed(Stage.story, AT), CFG)
    assert not t.applied and t.movie == m and t.commands == ()


def test_success_moves_to_the_next_queue_and_frees_the_slot() -> None:
    m = apply(movie(), Claimed(Stage.story, AT), CFG).movie
    t = apply(m, StageSucceeded(Stage.story, 1, (("story.json", "x/story.json"),), AT), CFG)
    assert t.movie.status is MovieStatus.images
    assert t.movie.stages[Stage.story].status is StageStatus.succeeded
    assert t.movie.stages[Stage.images].status is StageStatus.waiting
    assert t.movie.artifacts == {"story.json": "x/story.json"}
    assert t.commands == (Dispatch(Stage.story), Dispatch(Stage.images))


def test_duplicate_success_is_a_no_op() -> None:
    m = apply(movie(), Claimed(Stage.story, AT), CFG).movie
    event = StageSucceeded(Stage.story, 1, (), AT)
    once = apply(m, event, CFG).movie
    twice = apply(once, event, CFG)
    assert not twice.applied and twice.movie == once and twice.commands == ()


def test_last_stage_success_finishes_the_movie() -> None:
    m = run_through(movie(), Stage.story, Stage.images, Stage.video)
    assert m.status is MovieStatus.succeeded and m.finished_at == AT
    assert set(m.artifacts) == {"story.out", "images.out", "video.out"}


def test_job_started_records_the_execution_once() -> None:
    m = run_through(movie(), Stage.story)
    m = apply(m, Claimed(Stage.images, AT), CFG).movie
    t = apply(m, JobStarted(Stage.images, 1, "exec-1", AT), CFG)
    assert t.movie.stages[Stage.images].execution == "exec-1"
    # A report about an attempt that no longer runs: the stray execution is stopped.
    late = apply(t.movie, JobStarted(Stage.images, 7, "exec-9", AT), CFG)
    assert not late.applied and late.commands == (CancelExecution("exec-9"),)


def test_progress_only_moves_forward() -> None:
    m = apply(movie(), Claimed(Stage.story, AT), CFG).movie
    m = apply(m, Progressed(Stage.story, 1, 40, AT), CFG).movie
    assert m.stages[Stage.story].progress == 40
    assert not apply(m, Progressed(Stage.story, 1, 40, AT), CFG).applied
    assert not apply(m, Progressed(Stage.story, 1, 10, AT), CFG).applied
    assert not apply(m, Progressed(Stage.story, 2, 90, AT), CFG).applied


def test_retryable_failure_backs_off_in_the_same_queue() -> None:
    m = apply(movie(), Claimed(Stage.story, AT), CFG).movie
    t = apply(m, StageFailed(Stage.story, 1, "boom", "it broke", True, AT), CFG)
    st = t.movie.stages[Stage.story]
    assert t.movie.status is MovieStatus.story
    assert st.status is StageStatus.waiting and st.last_error and st.last_error.code == "boom"
    assert st.ready_at is not None and st.ready_at > AT
    assert t.commands == (Dispatch(Stage.story), Dispatch(Stage.story, at=st.ready_at))
    assert not apply(t.movie, StageFailed(Stage.story, 1, "boom", "x", True, AT), CFG).applied


def test_failures_exhaust_the_policy_and_keep_the_error() -> None:
    cfg = PipelineConfig(
        stages={
            **CFG.stages,
            Stage.story: StagePolicy(concurrency=1, timeout_s=5, retry=RetryPolicy(max_attempts=2)),
        }
    )
    m = movie()
    for attempt in (1, 2):
        m = apply(m, Claimed(Stage.story, AT), cfg).movie
        m = apply(m, StageFailed(Stage.story, attempt, "boom", "no", True, AT), cfg).movie
    assert m.status is MovieStatus.failed and m.error is not None and m.error.attempt == 2
    assert m.stages[Stage.story].status is StageStatus.failed


def test_permanent_failure_fails_at_once_and_cancels_the_job() -> None:
    m = run_through(movie(), Stage.story)
    m = apply(m, Claimed(Stage.images, AT), CFG).movie
    m = apply(m, JobStarted(Stage.images, 1, "exec-1", AT), CFG).movie
    t = apply(m, StageFailed(Stage.images, 1, "bad", "bad input", False, AT), CFG)
    assert t.movie.status is MovieStatus.failed
    assert CancelExecution("exec-1") in t.commands and Dispatch(Stage.images) in t.commands


def test_deadline_times_out_only_the_current_attempt_after_its_deadline() -> None:
    m = apply(movie(), Claimed(Stage.story, AT), CFG).movie
    deadline = m.stages[Stage.story].deadline
    assert deadline is not None
    assert not apply(m, DeadlinePassed(Stage.story, 1, deadline - timedelta(1)), CFG).applied
    assert not apply(m, DeadlinePassed(Stage.story, 2, deadline), CFG).applied
    t = apply(m, DeadlinePassed(Stage.story, 1, deadline), CFG)
    err = t.movie.stages[Stage.story].last_error
    assert err is not None and err.code == "timeout" and err.retryable


def test_cancel_queued_and_running_and_twice() -> None:
    queued = apply(movie(), CancelRequested(AT), CFG)
    assert queued.movie.status is MovieStatus.cancelled and queued.commands == ()
    m = run_through(movie(), Stage.story)
    m = apply(m, Claimed(Stage.images, AT), CFG).movie
    m = apply(m, JobStarted(Stage.images, 1, "exec-1", AT), CFG).movie
    running = apply(m, CancelRequested(AT), CFG)
    assert running.movie.status is MovieStatus.cancelled
    assert running.commands == (Dispatch(Stage.images), CancelExecution("exec-1"))
    assert running.movie.stages[Stage.images].status is StageStatus.cancelled
    assert not apply(running.movie, CancelRequested(AT), CFG).applied
    # Work that finishes after a cancel changes nothing.
    assert not apply(running.movie, StageSucceeded(Stage.images, 1, (), AT), CFG).applied


def test_retry_resumes_at_the_failed_stage_and_keeps_finished_ones() -> None:
    m = run_through(movie(), Stage.story)
    m = apply(m, Claimed(Stage.images, AT), CFG).movie
    m = apply(m, StageFailed(Stage.images, 1, "bad", "x", False, AT), CFG).movie
    t = apply(m, RetryRequested(AT), CFG)
    assert t.movie.status is MovieStatus.images and t.movie.error is None
    assert t.movie.stages[Stage.story].status is StageStatus.succeeded
    assert t.movie.stages[Stage.images].status is StageStatus.waiting
    images = t.movie.stages[Stage.images]
    assert images.run_attempts == 0 and images.attempts == 1  # numbered on from the last
    assert t.movie.artifacts == m.artifacts
    assert t.commands == (Dispatch(Stage.images),)
    assert not apply(t.movie, RetryRequested(AT), CFG).applied


def test_retry_of_a_story_failure_goes_back_to_queued() -> None:
    m = apply(movie(), Claimed(Stage.story, AT), CFG).movie
    m = apply(m, StageFailed(Stage.story, 1, "bad", "x", False, AT), CFG).movie
    assert apply(m, RetryRequested(AT), CFG).movie.status is MovieStatus.queued


def test_only_failed_movies_can_be_retried() -> None:
    t = apply(movie(), RetryRequested(AT), CFG)
    assert not t.applied and "queued" in t.reason


def test_retry_of_a_cancelled_movie_resumes_where_it_was_cancelled() -> None:
    m = run_through(movie(), Stage.story)
    m = apply(m, Claimed(Stage.images, AT), CFG).movie
    m = apply(m, JobStarted(Stage.images, 1, "exec-1", AT), CFG).movie
    cancelled = apply(m, CancelRequested(AT), CFG).movie
    t = apply(cancelled, RetryRequested(AT), CFG)
    assert t.applied and t.movie.status is MovieStatus.images
    assert t.movie.finished_at is None
    assert t.movie.stages[Stage.story].status is StageStatus.succeeded
    images = t.movie.stages[Stage.images]
    assert images.status is StageStatus.waiting and images.attempts == 1
    assert images.first_attempt == 2  # a late report of the cancelled attempt matches nothing
    assert t.commands == (Dispatch(Stage.images),)


def test_retry_of_a_movie_cancelled_while_queued_goes_back_to_queued() -> None:
    cancelled = apply(movie(), CancelRequested(AT), CFG).movie
    t = apply(cancelled, RetryRequested(AT), CFG)
    assert t.applied and t.movie.status is MovieStatus.queued
    assert t.movie.stages[Stage.story].status is StageStatus.waiting
    assert t.commands == (Dispatch(Stage.story),)
