"""Deadline windows on every store (ADR 0030): one `deadlines` task times out the attempts
whose deadlines fall in its window, stops their jobs and retries them; early or repeated
deliveries change nothing."""

from __future__ import annotations

from datetime import timedelta

from deepflix.handlers.task_requests import handle_task
from deepflix.pipeline.events import StageSucceeded
from deepflix.pipeline.models import Movie, Stage, StageStatus
from deepflix.pipeline.ports import MovieStore
from deepflix.pipeline.sender import deadlines_task
from deepflix.pipeline.service import Pipeline
from tests.factories import CONFIG, request
from tests.pipeline_fakes import Clock, Recorder

# Tier marks: on the adapter parameters (conftest.py), `contract` or `emulator`.


def deliver(pipeline: Pipeline) -> None:
    """The `deadlines` task reaching the tasks function, as Cloud Tasks delivers it."""
    answer = handle_task("/tasks/deadlines", {}, pipeline=pipeline, prune=lambda: 0)
    assert answer.status == 200, answer.body


def test_an_overrun_attempt_is_timed_out_by_its_windows_task(store: MovieStore) -> None:
    rec, clock = Recorder(), Clock()
    pipeline = Pipeline(
        store=store, tasks=rec, events=rec, jobs=rec, config=CONFIG, clock=clock, receipts=True
    )
    ids = [pipeline.create(request(), owner="u", idempotency_key=None).id for _ in range(2)]
    assert pipeline.dispatch(Stage.story) == 2
    for movie_id in ids:  # each success claims the movie's images stage, whose job starts
        pipeline.report(movie_id, StageSucceeded(Stage.story, 1, (), clock()))
        pipeline.start_job(movie_id, Stage.images, 1, settles=True)
    deadlines = [pipeline.get(i).stages[Stage.images].deadline for i in ids]
    assert all(d is not None for d in deadlines)
    windows = {deadlines_task(d)[0]: deadlines_task(d)[1] for d in deadlines if d is not None}
    assert len(windows) == 1  # claimed a moment apart: one window, one task for both
    ((name, due),) = windows.items()
    asked = [(t[2], t[3]) for t in rec.tasks if t[0] == "deadlines"]
    assert asked[-1] == (name, due) and len(asked) == 2  # the story's window, the images'

    before: list[Movie] = [pipeline.get(i) for i in ids]
    clock.now = min(d for d in deadlines if d is not None) - timedelta(seconds=1)  # early
    deliver(pipeline)
    assert [pipeline.get(i) for i in ids] == before and rec.cancelled == []

    clock.now = due  # when Cloud Tasks runs it: after both deadlines
    deliver(pipeline)
    for movie_id in ids:
        st = pipeline.get(movie_id).stages[Stage.images]
        assert st.last_error is not None and st.last_error.code == "timeout"
        # The retry policy's: waiting for a second attempt after a backoff.
        assert st.status is StageStatus.waiting and st.attempts == 1
        assert st.ready_at is not None and st.ready_at > due
    assert sorted(rec.cancelled) == ["exec-1", "exec-2"]  # their Cloud Run executions

    after = [pipeline.get(i) for i in ids]
    deliver(pipeline)  # delivered again: no attempt is overdue any more
    assert [pipeline.get(i) for i in ids] == after and len(rec.cancelled) == 2
