"""In-process stage work off the delivery threads: a hang holds only a thread of its own."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from deepflix.pipeline.errors import RetryableStageError, Unavailable
from deepflix.pipeline.models import MovieCreate, Stage, StageStatus
from deepflix.runtime.compose import build_embedded
from deepflix.settings import Settings
from deepflix.stages.faults import FaultPlan
from deepflix.stages.threads import StageThreads
from tests.factories import movie as make_movie

pytestmark = pytest.mark.integration


def test_work_that_hangs_keeps_its_thread_and_the_rest_runs_beside_it() -> None:
    threads = StageThreads(limit=8)
    hang, done = threading.Event(), threading.Event()

    def hung() -> None:
        hang.wait(10)

    for _ in range(3):
        threads.submit(hung)
    threads.submit(done.set)
    assert done.wait(5), "work behind three hung ones never ran"
    assert threads.counts() == (4, 3)
    hang.set()
    deadline = time.monotonic() + 5
    while threads.counts()[1]:
        assert time.monotonic() < deadline
        time.sleep(0.01)
    threads.submit(done.set)
    assert threads.counts()[0] == 4  # reused, not a new thread


def test_past_the_limit_work_waits_for_a_thread_and_a_raise_ends_none() -> None:
    threads = StageThreads(limit=1)
    ran = threading.Event()

    def broken() -> None:
        raise RuntimeError("a bug in stage work")

    threads.submit(broken)
    threads.submit(ran.set)
    assert ran.wait(5)
    assert threads.counts() == (1, 0)


def test_an_injected_delay_past_the_deadline_ends_there_as_a_timeout(tmp_path: Path) -> None:
    faults = tmp_path / "faults.json"
    faults.write_text(json.dumps({"story": {"kind": "delay", "seconds": 30}}))
    plan = FaultPlan(faults)
    started = time.monotonic()
    with pytest.raises(RetryableStageError) as raised:
        plan.check(Stage.story, make_movie(), deadline=started + 0.3)
    assert raised.value.code == "timeout"
    assert 0.25 < time.monotonic() - started < 5


def test_an_outcome_is_recorded_once_the_store_takes_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    runtime = build_embedded(Settings(_env_file=None, data_dir=tmp_path, generators="instant"))
    pipeline = runtime.pipeline
    pipeline.pause_admission()  # claimed by hand below
    movie = pipeline.create(MovieCreate(prompt="patience"), owner="u", idempotency_key=None)
    pipeline.store.set_admission_paused(False)
    pipeline.dispatch(Stage.story)
    real_report, refused = pipeline.report, list[Any]()

    def down_twice(movie_id: str, event: Any) -> Any:
        if len(refused) < 2:
            refused.append(event)
            raise Unavailable("the embedded database is unavailable: database is locked")
        return real_report(movie_id, event)

    monkeypatch.setattr(pipeline, "report", down_twice)
    runtime.runner.handle({"movie_id": movie.id, "stage": "story", "attempt": 1})
    deadline = time.monotonic() + 10
    while pipeline.get(movie.id).stages[Stage.story].status is StageStatus.running:
        assert time.monotonic() < deadline, "the outcome was never recorded"
        time.sleep(0.02)
    assert len(refused) == 2
    assert pipeline.get(movie.id).stages[Stage.story].status is StageStatus.succeeded
