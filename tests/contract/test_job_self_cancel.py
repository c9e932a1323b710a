"""A Cloud Run job that records its own failure leaves its execution to end on its own; a
deadline recorded elsewhere still cancels it (Cloud Run against a local gRPC fake)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from deepflix.adapters.gcp.factory import cloud_run_jobs
from deepflix.adapters.gcp.run_jobs import CloudRunJobRunner
from deepflix.pipeline.events import DeadlinePassed, JobStarted, StageFailed, StageSucceeded
from deepflix.pipeline.models import Stage, StageStatus
from deepflix.pipeline.service import Pipeline
from deepflix.settings import Settings
from tests import gcp_fakes
from tests.factories import request
from tests.gcp_fakes import FakeRun
from tests.pipeline_fakes import Bus, Outage, Tasks, cloud_like

pytestmark = pytest.mark.contract
JOB = "projects/p1/locations/europe-west4/jobs/deepflix-images"


Runner = Callable[[str | None], CloudRunJobRunner]


@pytest.fixture
def cloud_run() -> Iterator[tuple[FakeRun, Runner]]:
    """The fake, and runners reaching it (given the execution they run in, if any)."""
    with gcp_fakes.cloud_run() as served:
        yield served


def running_images(tmp_path: Path, runner: CloudRunJobRunner) -> tuple[Pipeline, str, str]:
    """A movie whose images attempt 1 runs in a Cloud Run execution the pipeline recorded."""
    pipeline = cloud_like(tmp_path, Bus(Outage()), Tasks(Outage()), runner)  # type: ignore[arg-type]
    movie = pipeline.create(request(scene_count=2), owner="u", idempotency_key=None)
    pipeline.dispatch(Stage.story)
    story = (("story.json", f"movies/{movie.id}/story.json"),)
    pipeline.report(movie.id, StageSucceeded(Stage.story, 1, story, pipeline.clock()))
    pipeline.dispatch(Stage.images)
    execution = runner.run(stage=Stage.images, movie_id=movie.id, attempt=1, timeout_s=300)
    pipeline.report(movie.id, JobStarted(Stage.images, 1, execution, pipeline.clock()))
    assert pipeline.get(movie.id).stages[Stage.images].execution == execution
    return pipeline, movie.id, execution


def test_a_job_recording_its_own_failure_does_not_cancel_its_execution(
    cloud_run: tuple[FakeRun, Runner], tmp_path: Path
) -> None:
    fake, make = cloud_run
    # What Cloud Run tells the job's container: its execution's short name.
    runner = make("exec-1")
    pipeline, movie_id, execution = running_images(tmp_path, runner)
    assert execution == f"{JOB}/executions/exec-1"
    failed = StageFailed(Stage.images, 1, "flaky", "model hiccup", True, pipeline.clock())
    assert pipeline.report(movie_id, failed) is not None
    assert pipeline.get(movie_id).stages[Stage.images].status is StageStatus.waiting
    assert fake.cancels == []  # the execution ends as the job exits, not as "cancelled"


def test_a_deadline_recorded_outside_the_job_still_cancels_it(
    cloud_run: tuple[FakeRun, Runner], tmp_path: Path
) -> None:
    fake, make = cloud_run
    runner = make(None)
    pipeline, movie_id, execution = running_images(tmp_path, runner)
    late = pipeline.get(movie_id).stages[Stage.images].deadline
    assert late is not None
    pipeline.report(movie_id, DeadlinePassed(Stage.images, 1, late + timedelta(seconds=1)))
    assert fake.cancels == [execution]


def test_another_execution_of_the_same_job_is_still_cancelled(
    cloud_run: tuple[FakeRun, Runner],
) -> None:
    fake, make = cloud_run
    runner = make("exec-2")
    runner.cancel(f"{JOB}/executions/exec-1")
    runner.cancel(f"{JOB}/executions/exec-2")
    assert fake.cancels == [f"{JOB}/executions/exec-1"]


def test_the_cloud_run_factory_knows_the_execution_it_runs_in(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    settings = Settings.model_construct(gcp_project="p1", gcp_location="l", run_job_prefix="d")
    monkeypatch.delenv("CLOUD_RUN_EXECUTION", raising=False)
    assert cloud_run_jobs(settings).own_execution is None  # a function: cancels any execution
    monkeypatch.setenv("CLOUD_RUN_EXECUTION", "d-images-x7k2p")
    assert cloud_run_jobs(settings).is_own(
        "projects/p1/locations/l/jobs/d-images/executions/d-images-x7k2p"
    )
