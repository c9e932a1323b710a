"""The pure edges of the GCP adapters: task names, job env, lazy clients, outages."""

from __future__ import annotations

import re
import threading
from types import SimpleNamespace
from typing import Any

import pytest
from google.api_core import exceptions as gexc

from deepflix.adapters.gcp.clients import Lazy, outages
from deepflix.adapters.gcp.firestore_store import FirestoreMovieStore
from deepflix.adapters.gcp.pubsub import PubSubEventBus
from deepflix.adapters.gcp.run_jobs import CloudRunJobRunner, execution_env
from deepflix.adapters.gcp.storage import GcsArtifactStore
from deepflix.adapters.gcp.tasks import (
    CloudTasksQueue,
    clamp_deadline,
    task_id,
)
from deepflix.handlers.responses import http_status
from deepflix.pipeline.errors import Unavailable
from deepflix.pipeline.models import Stage

pytestmark = pytest.mark.unit


def test_task_ids_are_stable_hashes_and_deadlines_stay_in_range() -> None:
    assert task_id("admit-m1") == task_id("admit-m1") != task_id("admit-m2")
    # The same in every release (a redeployed function must still refuse a repeat), in the
    # characters Cloud Tasks accepts, and not sharing a prefix with a name one character away.
    assert task_id("admit-m1") == (
        "0ed63becf843c602e0039b8c77a688bf8139e00c5ebb44437c2d81cce6f9697d"
    )
    assert all(re.fullmatch(r"[A-Za-z0-9_-]{1,500}", task_id(n)) for n in ("admit-m1", "é/ ?"))
    assert task_id("admit-m1")[:8] != task_id("admit-m2")[:8]
    assert [clamp_deadline(s) for s in (1, 60, 7200)] == [15, 60, 1800]


def test_execution_env_leaves_cloud_runs_own_variables_alone() -> None:
    assert execution_env(stage=Stage.video, movie_id="m", attempt=3) == {
        "DEEPFLIX_JOB_STAGE": "video",
        "DEEPFLIX_JOB_MOVIE_ID": "m",
        "DEEPFLIX_JOB_ATTEMPT": "3",
    }


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
        pipeline = SimpleNamespace(sweep=lambda: calls.append("sweep"), oldest_waiting_s=dict)

        def prune(self) -> int:
            calls.append("prune")
            return 0

    monkeypatch.setattr(functions, "service", Service)
    with flask.Flask("tasks").test_request_context("/sweep", method="POST", json={}):
        response = functions.tasks(flask.request)
    assert response.status_code == 200 and calls == ["sweep", "prune"]  # type: ignore[union-attr]
