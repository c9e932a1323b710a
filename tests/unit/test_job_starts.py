"""One execution per attempt: a job start is claimed in the movie, and a second is cancelled."""

from __future__ import annotations

from datetime import timedelta

import pytest

from deepflix.pipeline.events import (
    CancelExecution,
    Claimed,
    JobStarted,
    JobStartFailed,
    JobStarting,
    StageSucceeded,
)
from deepflix.pipeline.models import Movie, Stage
from deepflix.pipeline.transitions import JOB_START_HOLD_S, apply
from tests.factories import CONFIG, T0, movie

pytestmark = pytest.mark.unit
AT = T0 + timedelta(seconds=1)


def images_running() -> Movie:
    m = apply(movie(), Claimed(Stage.story, AT), CONFIG).movie
    m = apply(m, StageSucceeded(Stage.story, 1, (), AT), CONFIG).movie
    return apply(m, Claimed(Stage.images, AT), CONFIG).movie


def test_a_second_execution_for_one_attempt_is_cancelled_not_recorded() -> None:
    m = apply(movie(), Claimed(Stage.story, AT), CONFIG).movie
    m = apply(m, StageSucceeded(Stage.story, 1, (), AT), CONFIG).movie
    m = apply(m, Claimed(Stage.images, AT), CONFIG).movie
    m = apply(m, JobStarted(Stage.images, 1, "exec-1", AT), CONFIG).movie
    t = apply(m, JobStarted(Stage.images, 1, "exec-2", AT), CONFIG)
    assert t.movie.stages[Stage.images].execution == "exec-1"  # still cancellable
    assert CancelExecution("exec-2") in t.commands
    again = apply(t.movie, JobStarted(Stage.images, 1, "exec-1", AT), CONFIG)
    assert CancelExecution("exec-1") not in again.commands  # a repeated report is harmless


def test_a_job_start_is_claimed_once_per_attempt() -> None:
    m = images_running()
    first = apply(m, JobStarting(Stage.images, 1, AT), CONFIG)
    assert first.applied and first.movie.stages[Stage.images].starting_at == AT
    second = apply(first.movie, JobStarting(Stage.images, 1, AT + timedelta(seconds=1)), CONFIG)
    assert not second.applied  # another delivery is starting it
    assert not apply(first.movie, JobStarting(Stage.images, 2, AT), CONFIG).applied  # stale
    started = apply(first.movie, JobStarted(Stage.images, 1, "exec-1", AT), CONFIG).movie
    assert started.stages[Stage.images].starting_at is None
    assert not apply(started, JobStarting(Stage.images, 1, AT), CONFIG).applied


def test_a_start_claim_is_given_back_or_taken_over_once_it_is_old() -> None:
    claimed = apply(images_running(), JobStarting(Stage.images, 1, AT), CONFIG).movie
    later = AT + timedelta(seconds=JOB_START_HOLD_S)
    # The starter died before it recorded anything: a later delivery may start the job.
    assert apply(claimed, JobStarting(Stage.images, 1, later), CONFIG).applied
    # A starter whose job did not start gives its own claim back, and only its own.
    assert not apply(claimed, JobStartFailed(Stage.images, 1, later, AT), CONFIG).applied
    back = apply(claimed, JobStartFailed(Stage.images, 1, AT, AT), CONFIG)
    assert back.applied and back.movie.stages[Stage.images].starting_at is None


def test_a_job_named_before_its_start_is_recorded_with_the_claim() -> None:
    m = images_running()
    t = apply(m, JobStarting(Stage.images, 1, AT, "images-m-1"), CONFIG)
    assert t.movie.stages[Stage.images].execution == "images-m-1"  # cancellable at once
    later = AT + timedelta(seconds=JOB_START_HOLD_S)
    assert not apply(t.movie, JobStarting(Stage.images, 1, later, "images-m-1"), CONFIG).applied
    back = apply(t.movie, JobStartFailed(Stage.images, 1, AT, AT), CONFIG).movie
    assert back.stages[Stage.images].execution is None
