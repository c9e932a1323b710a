"""Attempt numbers never repeat within a movie's stage; an attempt lost to an outage is free."""

from __future__ import annotations

from datetime import timedelta

import pytest

from deepflix.handlers.views import movie_view
from deepflix.pipeline.events import (
    CheckDeadline,
    Claimed,
    DeadlinePassed,
    RetryRequested,
    RunStage,
    StageFailed,
    StageSucceeded,
)
from deepflix.pipeline.models import Movie, MovieStatus, Stage, StageStatus
from deepflix.pipeline.policy import PipelineConfig, RetryPolicy, StagePolicy
from deepflix.pipeline.transitions import apply
from tests.factories import CONFIG, T0, movie

pytestmark = pytest.mark.unit
AT = T0 + timedelta(seconds=1)
# One attempt per run, so one timeout fails the movie.
ONCE = PipelineConfig(
    stages={
        **CONFIG.stages,
        Stage.story: StagePolicy(concurrency=1, timeout_s=5, retry=RetryPolicy(max_attempts=1)),
    }
)


def timed_out_then_retried() -> Movie:
    """A movie whose story attempt 1 timed out (failing it), then retried by its owner."""
    m = apply(movie(), Claimed(Stage.story, AT), ONCE).movie
    deadline = m.stages[Stage.story].deadline
    assert deadline is not None
    m = apply(m, DeadlinePassed(Stage.story, 1, deadline), ONCE).movie
    assert m.status is MovieStatus.failed
    return apply(m, RetryRequested(deadline), ONCE).movie


def test_a_retry_numbers_its_attempts_after_the_abandoned_ones() -> None:
    m = timed_out_then_retried()
    t = apply(m, Claimed(Stage.story, AT), ONCE)
    st = t.movie.stages[Stage.story]
    assert st.attempts == 2
    assert RunStage(m.id, Stage.story, 2) in t.commands
    # A different attempt, so a different deadline task name (deadline-{id}-{stage}-{attempt}).
    assert [c.attempt for c in t.commands if isinstance(c, CheckDeadline)] == [2]


def test_a_late_report_of_the_abandoned_attempt_changes_nothing_after_a_retry() -> None:
    m = apply(timed_out_then_retried(), Claimed(Stage.story, AT), ONCE).movie
    late = apply(m, StageSucceeded(Stage.story, 1, (("story.json", "stale"),), AT), ONCE)
    assert not late.applied
    assert late.movie.stages[Stage.story].status is StageStatus.running
    assert "story.json" not in late.movie.artifacts


def test_a_retry_gets_its_full_attempts_again() -> None:
    m = apply(timed_out_then_retried(), Claimed(Stage.story, AT), ONCE).movie
    deadline = m.stages[Stage.story].deadline
    assert deadline is not None
    # max_attempts=1 again for the retry's run: its one timeout fails the movie again.
    assert apply(m, DeadlinePassed(Stage.story, 2, deadline), ONCE).movie.status is (
        MovieStatus.failed
    )


def test_the_status_shows_the_runs_attempts_and_the_attempt_number() -> None:
    m = apply(timed_out_then_retried(), Claimed(Stage.story, AT), ONCE).movie
    story = movie_view(m, None, lambda path: path)["stages"]["story"]
    assert story["attempts"] == 1  # in this run
    assert story["attempt"] == 2  # the number the journal, logs and jobs use


def outage_failure(attempt: int) -> StageFailed:
    return StageFailed(Stage.story, attempt, "unavailable", "store away", True, AT, outage=True)


def test_an_attempt_lost_to_an_outage_is_retried_without_being_charged() -> None:
    m = apply(movie(), Claimed(Stage.story, AT), ONCE).movie
    t = apply(m, outage_failure(1), ONCE)
    st = t.movie.stages[Stage.story]
    # One attempt per run, yet retried: the outage was not the movie's.
    assert t.movie.status is MovieStatus.story and st.status is StageStatus.waiting
    assert (st.attempts, st.uncharged, st.charged) == (1, 1, 0)
    assert st.ready_at is not None and st.ready_at > AT  # after a backoff
    view = movie_view(t.movie, None, lambda path: path)["stages"]["story"]
    assert (view["attempts"], view["attempt"]) == (0, 1)
    m = apply(t.movie, Claimed(Stage.story, st.ready_at), ONCE).movie
    deadline = m.stages[Stage.story].deadline
    assert deadline is not None
    # The next attempt is charged as usual: its timeout fails the movie.
    assert apply(m, DeadlinePassed(Stage.story, 2, deadline), ONCE).movie.status is (
        MovieStatus.failed
    )


def test_an_outage_that_never_ends_fails_the_movie_in_the_end() -> None:
    cfg = PipelineConfig(
        stages={
            **CONFIG.stages,
            Stage.story: StagePolicy(
                concurrency=1,
                timeout_s=5,
                retry=RetryPolicy(max_attempts=1, max_outage_retries=2),
            ),
        }
    )
    m = movie()
    for attempt in (1, 2, 3):
        m = apply(m, Claimed(Stage.story, AT + timedelta(hours=attempt)), cfg).movie
        m = apply(m, outage_failure(attempt), cfg).movie
    assert m.status is MovieStatus.failed and m.stages[Stage.story].uncharged == 2
