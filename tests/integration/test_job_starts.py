"""One execution per attempt: duplicate deliveries start one job, and jobs are spawned safely."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest

from deepflix.pipeline.events import StageSucceeded
from deepflix.pipeline.models import Stage
from deepflix.stages.faults import FaultPlan
from deepflix.stages.runner import StageRunner
from tests.factories import request
from tests.pipeline_fakes import Bus, Jobs, Outage, Tasks, cloud_like
from tests.read_counts import CountingStore

pytestmark = pytest.mark.integration


def test_two_deliveries_of_one_images_request_start_one_job(tmp_path: Path) -> None:
    jobs = Jobs()
    pipeline = cloud_like(tmp_path, Bus(Outage()), Tasks(Outage()), jobs)
    movie = pipeline.create(request(), owner="u", idempotency_key=None)
    pipeline.dispatch(Stage.story)
    pipeline.report(movie.id, StageSucceeded(Stage.story, 1, (), pipeline.clock()))
    barrier = threading.Barrier(2)

    def deliver() -> None:
        barrier.wait()
        pipeline.start_job(movie.id, Stage.images, 1)

    threads = [threading.Thread(target=deliver) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert jobs.started == ["exec-1"]
    assert pipeline.get(movie.id).stages[Stage.images].execution == "exec-1"
    pipeline.start_job(movie.id, Stage.images, 1)  # a later redelivery
    assert jobs.started == ["exec-1"]


def test_a_job_stage_request_reads_the_movie_once_in_its_start_claim(tmp_path: Path) -> None:
    jobs = Jobs()
    pipeline = cloud_like(tmp_path, Bus(Outage()), Tasks(Outage()), jobs)
    movie = pipeline.create(request(), owner="u", idempotency_key=None)
    pipeline.dispatch(Stage.story)
    pipeline.report(movie.id, StageSucceeded(Stage.story, 1, (), pipeline.clock()))
    counting = CountingStore(pipeline.store)
    pipeline.store = counting
    runner = StageRunner(pipeline=pipeline, work=None, faults=FaultPlan(None))  # type: ignore[arg-type]
    body = {"movie_id": movie.id, "stage": "images", "attempt": 1}
    runner.handle(body)
    assert jobs.started == ["exec-1"]
    assert counting.reads["get"] == 0  # the start's claim read it, in its own transaction
    for stale in (body, body | {"attempt": 2}, {**body, "movie_id": "0" * 32}):
        runner.handle(stale)  # a redelivery, a stale attempt, a movie that is gone
    assert jobs.started == ["exec-1"]


def test_jobs_are_spawned_without_a_preexec_fn(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import subprocess

    from deepflix.adapters.local import subprocess_jobs

    seen: list[dict[str, Any]] = []

    class Proc:
        pid = 0

        def wait(self, timeout: float | None = None) -> int:
            return 0

        def poll(self) -> int:
            return 0

    def popen(args: list[str], **kwargs: Any) -> Proc:
        seen.append(kwargs)
        return Proc()

    monkeypatch.setattr(subprocess, "Popen", popen)
    runner = subprocess_jobs.SubprocessJobRunner(log_dir=tmp_path)
    runner.run(stage=Stage.images, movie_id="m" * 32, attempt=1, timeout_s=5)
    (kwargs,) = seen
    # A preexec_fn runs Python between fork and exec, where another thread (gRPC's) may hold
    # a lock the child then waits for forever, or crash it (a SIGABRT was seen).
    assert kwargs.get("preexec_fn") is None
    assert kwargs.get("start_new_session") or kwargs.get("process_group") is not None
