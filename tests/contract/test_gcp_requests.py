"""Cloud Run and Cloud Tasks adapters against local gRPC fakes: well-formed requests, and the
answers only the real services give (ALREADY_EXISTS, NOT_FOUND, UNAVAILABLE)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import grpc
import pytest
from google.cloud import tasks_v2
from google.cloud.tasks_v2.services.cloud_tasks.transports import CloudTasksGrpcTransport

from deepflix.adapters.gcp.run_jobs import CloudRunJobRunner
from deepflix.adapters.gcp.tasks import CloudTasksQueue, task_id
from deepflix.pipeline.errors import Unavailable
from deepflix.pipeline.models import Stage
from tests.gcp_fakes import FakeRun, cloud_run, grpc_service

pytestmark = pytest.mark.contract
JOB = "projects/p1/locations/europe-west4/jobs/deepflix-images"


@pytest.fixture
def fake_run() -> Iterator[tuple[FakeRun, CloudRunJobRunner]]:
    with cloud_run() as (fake, runner):
        yield fake, runner(None)


def test_run_starts_one_task_with_the_attempt_in_its_env(
    fake_run: tuple[FakeRun, CloudRunJobRunner],
) -> None:
    fake, runner = fake_run
    execution = runner.run(stage=Stage.images, movie_id="m42", attempt=2, timeout_s=299.5)
    assert execution == f"{JOB}/executions/exec-1"
    (request,) = fake.runs
    assert request.name == JOB
    (override,) = request.overrides.container_overrides
    assert {e.name: e.value for e in override.env} == {
        "DEEPFLIX_JOB_STAGE": "images",
        "DEEPFLIX_JOB_MOVIE_ID": "m42",
        "DEEPFLIX_JOB_ATTEMPT": "2",
    }  # CLOUD_RUN_EXECUTION is Cloud Run's own: overriding it is refused
    assert request.overrides.task_count == 1
    assert request.overrides.timeout == timedelta(seconds=300)


def test_each_stage_runs_its_own_job(fake_run: tuple[FakeRun, CloudRunJobRunner]) -> None:
    fake, runner = fake_run
    runner.run(stage=Stage.video, movie_id="m1", attempt=1, timeout_s=600)
    assert fake.runs[0].name == "projects/p1/locations/europe-west4/jobs/deepflix-video"


def test_cancel_names_the_execution_and_ignores_one_already_gone(
    fake_run: tuple[FakeRun, CloudRunJobRunner],
) -> None:
    fake, runner = fake_run
    runner.cancel(f"{JOB}/executions/exec-7")
    fake.cancel_status = grpc.StatusCode.NOT_FOUND
    runner.cancel(f"{JOB}/executions/exec-8")
    fake.cancel_status = grpc.StatusCode.FAILED_PRECONDITION  # finished already
    runner.cancel(f"{JOB}/executions/exec-9")
    assert fake.cancels == [f"{JOB}/executions/exec-{i}" for i in (7, 8, 9)]
    fake.cancel_status = grpc.StatusCode.UNAVAILABLE
    with pytest.raises(Unavailable):
        runner.cancel(f"{JOB}/executions/exec-10")


class FakeTasks:
    """CreateTask with Cloud Tasks' named-task rule: a name is accepted once."""

    def __init__(self) -> None:
        self.created: dict[str, tasks_v2.CreateTaskRequest] = {}
        self.lock = threading.Lock()
        self.status = grpc.StatusCode.OK

    def create_task(self, request: tasks_v2.CreateTaskRequest, context: Any) -> tasks_v2.Task:
        if self.status is not grpc.StatusCode.OK:
            context.abort(self.status, "fake says no")
        with self.lock:
            name = request.task.name or f"{request.parent}/tasks/{len(self.created)}"
            if name in self.created:
                context.abort(grpc.StatusCode.ALREADY_EXISTS, "Requested entity already exists")
            self.created[name] = request
        return request.task


@pytest.fixture
def fake_tasks() -> Iterator[tuple[FakeTasks, CloudTasksQueue]]:
    fake = FakeTasks()
    methods = {
        "CreateTask": (
            fake.create_task,
            tasks_v2.CreateTaskRequest.deserialize,
            tasks_v2.Task.serialize,
        )
    }
    with grpc_service("google.cloud.tasks.v2.CloudTasks", methods) as channel:
        queue = CloudTasksQueue(
            project="p1",
            location="europe-west1",
            queue="deepflix",
            target_base_url="https://tasks.example.run.app",
            client=lambda: tasks_v2.CloudTasksClient(
                transport=CloudTasksGrpcTransport(channel=channel)
            ),
            service_account_email="invoker@p1.iam.gserviceaccount.com",
            audience="https://tasks.example.run.app",
        )
        yield fake, queue


def test_a_repeated_task_name_is_done_already(
    fake_tasks: tuple[FakeTasks, CloudTasksQueue],
) -> None:
    fake, queue = fake_tasks
    at = datetime(2026, 11, 29, 12, 0, 1, 500000, tzinfo=UTC)
    assert queue.enqueue("deadline", {"movie_id": "m1"}, name="deadline-m1-story-1", at=at)
    assert not queue.enqueue("deadline", {"movie_id": "m1"}, name="deadline-m1-story-1", at=at)
    assert queue.enqueue("dispatch", {"stage": "story"})  # unnamed: always a new task
    assert queue.enqueue("dispatch", {"stage": "story"})
    parent = "projects/p1/locations/europe-west1/queues/deepflix"
    request = fake.created[f"{parent}/tasks/{task_id('deadline-m1-story-1')}"]
    assert request.parent == parent
    task = request.task
    assert task.http_request.url == "https://tasks.example.run.app/deadline"
    assert task.http_request.oidc_token.audience == "https://tasks.example.run.app"
    assert task.schedule_time == at
    assert task.dispatch_deadline == timedelta(seconds=60)
    assert len(fake.created) == 3


def test_an_unreachable_cloud_tasks_is_unavailable(
    fake_tasks: tuple[FakeTasks, CloudTasksQueue],
) -> None:
    fake, queue = fake_tasks
    fake.status = grpc.StatusCode.UNAVAILABLE
    with pytest.raises(Unavailable):
        queue.enqueue("dispatch", {"stage": "story"}, name="x")
