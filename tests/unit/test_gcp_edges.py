"""The pure edges of the GCP adapters: task headers, names, lazy clients."""

from __future__ import annotations

import base64
import threading
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

import pytest
from google.api_core import exceptions as gexc

from deepflix.adapters.gcp.clients import Lazy, outages
from deepflix.adapters.gcp.firestore_docs import decode_cursor
from deepflix.adapters.gcp.firestore_store import FirestoreMovieStore
from deepflix.adapters.gcp.pubsub import PubSubEventBus
from deepflix.adapters.gcp.run_jobs import CloudRunJobRunner, execution_env
from deepflix.adapters.gcp.storage import GcsArtifactStore
from deepflix.adapters.gcp.tasks import (
    CloudTasksQueue,
    clamp_deadline,
    parse_task_headers,
    task_id,
)
from deepflix.handlers.responses import http_status
from deepflix.pipeline.errors import BadRequest, Unavailable
from deepflix.pipeline.models import Stage

pytestmark = pytest.mark.unit


def test_cloud_tasks_headers_are_read_whatever_their_case() -> None:
    headers = {
        "X-CloudTasks-QueueName": "deepflix",
        "X-CloudTasks-TaskName": task_id("deadline-m1-story-1"),
        "X-CloudTasks-TaskRetryCount": "2",
        "X-CloudTasks-TaskExecutionCount": "1",
        "X-CloudTasks-TaskETA": "1795953600.5",
        "X-CloudTasks-TaskPreviousResponse": "503",
        "X-CloudTasks-TaskRetryReason": "Service Unavailable",
        "X-Deepflix-Task-Kind": "deadline",
    }
    h = parse_task_headers({k.lower(): v for k, v in headers.items()})
    assert h == parse_task_headers(headers)
    assert h is not None
    assert (h.queue_name, h.retry_count, h.execution_count) == ("deepflix", 2, 1)
    assert h.eta == datetime.fromtimestamp(1795953600.5, tz=UTC)
    assert (h.previous_response, h.retry_reason, h.kind) == (503, "Service Unavailable", "deadline")
    assert not h.first_attempt


def test_a_request_not_from_cloud_tasks_has_no_task_headers() -> None:
    assert parse_task_headers({"Content-Type": "application/json"}) is None
    odd = parse_task_headers({"X-CloudTasks-TaskName": "t", "X-CloudTasks-TaskRetryCount": "x"})
    assert odd is not None and odd.retry_count == 0 and odd.first_attempt


def test_task_ids_are_stable_hashes_and_deadlines_stay_in_range() -> None:
    assert task_id("admit-m1") == task_id("admit-m1") != task_id("admit-m2")
    assert len(task_id("admit-m1")) == 64 and int(task_id("admit-m1"), 16) >= 0
    assert [clamp_deadline(s) for s in (1, 60, 7200)] == [15, 60, 1800]


def test_execution_env_leaves_cloud_runs_own_variables_alone() -> None:
    assert execution_env(stage=Stage.video, movie_id="m", attempt=3) == {
        "DEEPFLIX_JOB_STAGE": "video",
        "DEEPFLIX_JOB_MOVIE_ID": "m",
        "DEEPFLIX_JOB_ATTEMPT": "3",
    }


def test_an_invalid_list_cursor_is_a_bad_request() -> None:
    for cursor in ("%%%", base64.urlsafe_b64encode(b"no-separator").decode()):
        with pytest.raises(BadRequest):
            decode_cursor(cursor)


def test_clients_are_built_on_first_use_once() -> None:
    built: list[object] = []

    def factory() -> object:
        built.append(object())
        return built[-1]

    lazy: Lazy[object] = Lazy(factory)
    assert built == []
    threads = [threading.Thread(target=lazy.get) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(built) == 1 and lazy.get() is built[0]


def test_constructing_the_adapters_touches_no_client() -> None:
    def explode() -> Any:
        raise AssertionError("a client was built at construction")

    FirestoreMovieStore(client=explode)
    CloudTasksQueue(project="p", location="l", queue="q", target_base_url="u", client=explode)
    PubSubEventBus(project="p", publisher=explode)
    CloudRunJobRunner(project="p", location="l", jobs_client=explode, executions_client=explode)
    GcsArtifactStore(bucket="b", client=explode)


def test_outages_become_unavailable_and_bugs_stay_bugs() -> None:
    with pytest.raises(Unavailable) as info, outages("firestore get"):
        raise gexc.ServiceUnavailable("connection refused")
    assert http_status(info.value) == 503 and "firestore get" in info.value.message
    with pytest.raises(gexc.PermissionDenied), outages("firestore get"):
        raise gexc.PermissionDenied("no")


def test_the_sweep_task_also_prunes_the_store(monkeypatch: pytest.MonkeyPatch) -> None:
    import flask

    from deepflix.entrypoints import cloud_functions as functions

    calls: list[str] = []

    class Service:
        pipeline = SimpleNamespace(sweep=lambda: calls.append("sweep"))

        def prune(self) -> int:
            calls.append("prune")
            return 0

    monkeypatch.setattr(functions, "service", Service)
    with flask.Flask("tasks").test_request_context("/sweep", method="POST", json={}):
        response = functions.tasks(flask.request)
    assert response.status_code == 200 and calls == ["sweep", "prune"]
