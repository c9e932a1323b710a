"""CloudTasksQueue on gcloud-tasks-emulator: the tasks it creates and the headers they bring."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from deepflix.adapters.gcp.tasks import CloudTasksQueue, parse_task_headers, task_id
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


def test_a_delivery_brings_the_headers_the_handler_reads(setup: Setup) -> None:
    setup.sink.statuses.append(503)  # the first attempt fails: Cloud Tasks tries again
    setup.tasks.enqueue("deadline", {"movie_id": "m1", "stage": "story", "attempt": 1}, name="d1")
    first, second = setup.sink.wait(2, timeout_s=10)[:2]
    assert first.json() == second.json() == {"movie_id": "m1", "stage": "story", "attempt": 1}
    h1, h2 = parse_task_headers(first.headers), parse_task_headers(second.headers)
    assert h1 is not None and h2 is not None
    assert h1.task_name == h2.task_name == task_id("d1")
    assert h1.queue_name.endswith(setup.queue_path.rsplit("/", 1)[-1])
    assert (h1.retry_count, h2.retry_count) == (0, 1)
    assert h1.first_attempt and not h2.first_attempt
    assert h1.kind == "deadline"
