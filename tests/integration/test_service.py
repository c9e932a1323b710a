"""The pipeline service over the embedded store, with recording fakes for queues and jobs."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import pytest

from deepflix.adapters.local.store import SqliteMovieStore
from deepflix.pipeline.errors import Conflict, NotFound
from deepflix.pipeline.eta_reads import as_waiting_in
from deepflix.pipeline.events import JobStarted, StageSucceeded
from deepflix.pipeline.models import STORY, MovieStatus, Stage
from deepflix.pipeline.sender import admit_task, deadlines_task
from deepflix.pipeline.service import Pipeline
from tests.factories import CONFIG, T0, request
from tests.pipeline_fakes import Recorder

pytestmark = pytest.mark.integration
T = TypeVar("T")


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        self.now += timedelta(milliseconds=1)
        return self.now


@pytest.fixture
def rec() -> Recorder:
    return Recorder()


def build(tmp_path: Path, rec: Recorder, **options: Any) -> Pipeline:
    """The service over a fresh SQLite store, with `rec` for every transport and job."""
    return Pipeline(
        store=SqliteMovieStore(tmp_path / "m.db"),
        tasks=rec,
        events=rec,
        jobs=rec,
        config=CONFIG,
        clock=Clock(),
        **options,
    )


@pytest.fixture
def pipeline(tmp_path: Path, rec: Recorder) -> Pipeline:
    return build(tmp_path, rec)


def test_creates_in_one_window_share_one_admission_task(pipeline: Pipeline, rec: Recorder) -> None:
    movie = pipeline.create(request(), owner="u", idempotency_key=None)
    assert movie.status is MovieStatus.queued
    name, at = admit_task(movie.created_at)
    assert rec.tasks == [("dispatch", {"stage": "story"}, name, at)]
    assert at > movie.created_at  # it runs after every create of its window
    pipeline.create(request(), owner="u", idempotency_key=None)
    assert [t[2] for t in rec.tasks] == [name]  # enqueued already: no call the queue refuses


def test_idempotent_create_schedules_nothing_more(pipeline: Pipeline, rec: Recorder) -> None:
    a = pipeline.create(request(), owner="u", idempotency_key="k")
    b = pipeline.create(request(), owner="u", idempotency_key="k")
    assert a.id == b.id and len(rec.tasks) == 1
    with pytest.raises(Conflict):
        pipeline.create(request(prompt="other"), owner="u", idempotency_key="k")


def test_dispatch_respects_concurrency_and_publishes_stage_requests(
    pipeline: Pipeline, rec: Recorder
) -> None:
    ids = [pipeline.create(request(), owner="u", idempotency_key=None).id for _ in range(6)]
    assert pipeline.dispatch(Stage.story) == CONFIG[Stage.story].concurrency == 4
    assert pipeline.dispatch(Stage.story) == 0
    assert [e[1]["movie_id"] for e in rec.events] == ids[:4]
    assert all(topic == "story.requested" for topic, _ in rec.events)
    # The four deadlines fall in one window: one `deadlines` task, due after each of them.
    due = [pipeline.get(i).stages[Stage.story].deadline for i in ids[:4]]
    deadlines = [t for t in rec.tasks if t[0] == "deadlines"]
    assert [t[2] for t in deadlines] == [deadlines_task(due[0] or T0)[0]]
    assert all(d is not None and deadlines[0][3] is not None and d < deadlines[0][3] for d in due)
    pos = pipeline.position(pipeline.get(ids[5]))
    assert pos is not None and (pos.position, pos.total_waiting, pos.running) == (2, 2, 4)


def test_success_frees_the_slot_and_moves_on_at_once(pipeline: Pipeline, rec: Recorder) -> None:
    ids = [pipeline.create(request(), owner="u", idempotency_key=None).id for _ in range(5)]
    pipeline.dispatch(Stage.story)
    pipeline.report(
        ids[0], StageSucceeded(Stage.story, 1, (("story.json", "p"),), pipeline.clock())
    )
    topics = [(topic, data["movie_id"]) for topic, data in rec.events]
    assert ("story.requested", ids[4]) in topics  # the freed story slot was refilled
    assert ("images.requested", ids[0]) in topics  # and the next stage started
    assert pipeline.get(ids[0]).status is MovieStatus.images


def test_paused_admission_holds_new_movies_only(pipeline: Pipeline, rec: Recorder) -> None:
    pipeline.pause_admission()
    movie = pipeline.create(request(), owner="u", idempotency_key=None)
    assert pipeline.dispatch(Stage.story) == 0
    pipeline.resume_admission()
    assert pipeline.get(movie.id).status is MovieStatus.story


def test_cancel_running_job_and_errors(pipeline: Pipeline, rec: Recorder) -> None:
    movie = pipeline.create(request(), owner="u", idempotency_key=None)
    pipeline.dispatch(Stage.story)
    pipeline.report(movie.id, StageSucceeded(Stage.story, 1, (), pipeline.clock()))
    pipeline.report(movie.id, JobStarted(Stage.images, 1, "exec-7", pipeline.clock()))
    assert pipeline.cancel(movie.id).status is MovieStatus.cancelled
    assert rec.cancelled == ["exec-7"]
    with pytest.raises(Conflict):
        pipeline.cancel(movie.id)
    # A cancelled movie can be retried, from the stage it was cancelled in; only once.
    assert pipeline.retry(movie.id).status is MovieStatus.images
    with pytest.raises(Conflict):
        pipeline.retry(movie.id)
    with pytest.raises(NotFound):
        pipeline.cancel("missing")


def test_sweep_times_out_overdue_attempts(pipeline: Pipeline, rec: Recorder) -> None:
    movie = pipeline.create(request(), owner="u", idempotency_key=None)
    pipeline.dispatch(Stage.story)
    clock = pipeline.clock
    assert isinstance(clock, Clock)
    clock.now += timedelta(seconds=CONFIG[Stage.story].timeout_s + 1)
    pipeline.sweep()
    st = pipeline.get(movie.id).stages[Stage.story]
    assert st.last_error is not None and st.last_error.code == "timeout"


class Units:
    """A unit of work that counts the units opened and checks none opens inside another."""

    def __init__(self) -> None:
        self.opened = 0
        self._depth = 0

    def __call__(self, operation: Callable[[], T]) -> T:
        self.opened += 1
        self._depth += 1
        try:
            assert self._depth == 1, "an operation opened a unit of work inside its own"
            return operation()
        finally:
            self._depth -= 1


def test_each_state_change_is_one_unit_of_work(tmp_path: Path, rec: Recorder) -> None:
    units = Units()
    pipeline = build(tmp_path, rec, unit_of_work=units)
    movie = pipeline.create(request(), owner="u", idempotency_key=None)
    pipeline.dispatch(Stage.story)
    # A success saves, refills the slot and claims the next stage: still one unit.
    pipeline.report(movie.id, StageSucceeded(Stage.story, 1, (), pipeline.clock()))
    pipeline.sweep()
    pipeline.cancel(movie.id)
    assert units.opened == 5
    pipeline.get(movie.id)
    pipeline.position(movie)
    assert units.opened == 5  # reads open none


def test_inline_admission_claims_in_the_create_itself(tmp_path: Path, rec: Recorder) -> None:
    pipeline = build(tmp_path, rec, admission="inline")
    movie = pipeline.create(request(), owner="u", idempotency_key=None)
    assert pipeline.get(movie.id).status is MovieStatus.story
    assert rec.events == [
        ("story.requested", {"movie_id": movie.id, "stage": "story", "attempt": 1})
    ]
    assert [t[0] for t in rec.tasks] == ["deadlines"]  # no admission task


def test_an_eta_counts_the_movies_ahead_in_later_queues_by_dispatch_order(
    pipeline: Pipeline,
) -> None:
    ids = [pipeline.create(request(), owner="u", idempotency_key=None).id for _ in range(4)]
    pipeline.dispatch(Stage.story)
    for movie_id in ids:
        done = ((STORY, "p"),)
        pipeline.report(movie_id, StageSucceeded(Stage.story, 1, done, pipeline.clock()))
    counts = pipeline.counts()[Stage.images]
    assert (counts.running, counts.waiting) == (2, 2)
    later = pipeline.create(request(), owner="u", idempotency_key=None)
    first = pipeline.create(request(priority="high"), owner="u", idempotency_key=None)
    store = pipeline.store
    assert store.position(as_waiting_in(later, Stage.images), Stage.images)[0] == 2
    assert store.position(as_waiting_in(first, Stage.images), Stage.images)[0] == 0
    # No image or video run has finished: no estimate, saying why (the story's runs may not
    # be read yet: the store reuses the histograms it read for a second).
    eta = pipeline.eta(later)
    assert eta is not None and eta.finish_s is None
    assert eta.unknown in ("no_history:story", "no_history:images")
    assert later.eta_at_create is not None and later.eta_at_create.finish_s is None
    assert (later.eta_at_create.unknown or "").startswith("no_history:")
