"""CloudTasksQueue on gcloud-tasks-emulator: the tasks it creates and how they are delivered."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from deepflix.adapters.gcp.tasks import CloudTasksQueue, task_id
from devtools.emulators import PROJECT
from tests.gcp_fakes import Sink, http_sink

pytestmark = pytest.mark.emulator
LOCATION = "europe-west1"
ACCOUNT = f"tasks@{PROJECT}.iam.gserviceaccount.com"


@dataclass
class Setup:
    client: Any
    queue_path: str
    sink: Sink
    tasks: CloudTasksQueue


@pytest.fixture
def setup(cloud_tasks_client: Any) -> Iterator[Setup]:
    queue_id = f"q-{uuid.uuid4().hex[:12]}"
    parent = f"projects/{PROJECT}/locations/{LOCATION}"
    path = f"{parent}/queues/{queue_id}"
    cloud_tasks_client.create_queue(parent=parent, queue={"name": path})
    with http_sink() as sink:
        tasks = CloudTasksQueue(
            project=PROJECT,
            location=LOCATION,
            queue=queue_id,
            target_base_url=f"{sink.url}/tasks/",
            client=cloud_tasks_client,
            service_account_email=ACCOUNT,
            dispatch_deadlines={"deadline": 5.0, "dispatch": 120.0},
        )
        yield Setup(cloud_tasks_client, path, sink, tasks)
        cloud_tasks_client.delete_queue(name=path)


def test_a_task_is_named_by_hash_and_carries_its_options(setup: Setup) -> None:
    at = datetime.now(UTC) + timedelta(minutes=10)  # still queued when listed
    assert setup.tasks.enqueue("dispatch", {"stage": "video"}, name="dispatch-video-1", at=at)
    (task,) = setup.client.list_tasks(parent=setup.queue_path)
    assert task.name == f"{setup.queue_path}/tasks/{task_id('dispatch-video-1')}"
    assert len(task.name.rsplit("/", 1)[-1]) == 64
    http = task.http_request
    assert http.url == f"{setup.sink.url}/tasks/dispatch"
    assert http.oidc_token.service_account_email == ACCOUNT
    assert http.oidc_token.audience == http.url
    assert http.headers["Content-Type"] == "application/json"
    assert http.body == b'{"stage":"video"}'
    assert task.schedule_time.timestamp() == pytest.approx(at.timestamp(), abs=1e-3)
    assert task.dispatch_deadline == timedelta(seconds=120)


def test_the_dispatch_deadline_stays_within_what_cloud_tasks_accepts(setup: Setup) -> None:
    at = datetime.now(UTC) + timedelta(minutes=10)
    setup.tasks.enqueue("deadline", {"movie_id": "m"}, at=at)  # asked for 5 s: below 15 s
    (task,) = setup.client.list_tasks(parent=setup.queue_path)
    assert task.dispatch_deadline == timedelta(seconds=15)


def test_a_failed_delivery_is_tried_again_as_the_same_task(setup: Setup) -> None:
    setup.sink.statuses.append(503)  # the first attempt fails: Cloud Tasks tries again
    setup.tasks.enqueue("deadline", {"movie_id": "m1", "stage": "story", "attempt": 1}, name="d1")
    first, second = setup.sink.wait(2, timeout_s=10)[:2]
    assert first.json() == second.json() == {"movie_id": "m1", "stage": "story", "attempt": 1}
    h1, h2 = ({k.lower(): v for k, v in r.headers.items()} for r in (first, second))
    assert h1["x-cloudtasks-taskname"] == h2["x-cloudtasks-taskname"] == task_id("d1")
    assert h1["x-cloudtasks-queuename"].endswith(setup.queue_path.rsplit("/", 1)[-1])
    assert (h1["x-cloudtasks-taskretrycount"], h2["x-cloudtasks-taskretrycount"]) == ("0", "1")
