"""The API's routes: each method and path reaches its operation with its arguments; other
paths are 404 and other methods 405, naming every allowed one."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from tests.api_client import in_process

pytestmark = pytest.mark.integration


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    with in_process(tmp_path) as api:
        yield api.client


@pytest.mark.parametrize(
    ("method", "path", "status", "says"),
    [
        ("GET", "/", 200, "<html"),
        ("GET", "/healthz", 200, '"status":"ok"'),
        ("GET", "/openapi.json", 200, '"openapi"'),
        ("POST", "/api/movies", 415, "unsupported_media_type"),  # the create, refusing
        ("GET", "/api/movies/", 200, '"movies"'),
        ("GET", "/api/movies/m1", 404, "no movie with id 'm1'"),
        ("HEAD", "/api/movies/m1/status", 404, ""),
        ("POST", "/api/movies/m1/cancel/", 404, "no movie with id 'm1'"),
        ("POST", "/api/movies/m1/retry", 404, "no movie with id 'm1'"),
        ("GET", "/api/movies/m1/artifacts/movie.mp4", 404, "no movie with id 'm1'"),
        ("GET", "/api/queue/j1/position", 404, "no movie with id 'j1'"),
        ("GET", "/api/queues", 200, '"admission_paused":false'),
        ("POST", "/api/admission/pause", 200, '"admission_paused":true'),
        ("POST", "/api/admission/resume", 200, '"admission_paused":false'),
    ],
)
def test_routes_reach_their_operation(
    client: TestClient, method: str, path: str, status: int, says: str
) -> None:
    response = client.request(method, path)
    assert response.status_code == status, response.text
    assert says in response.text
    assert "no route" not in response.text


@pytest.mark.parametrize(
    "path",
    [
        "/nothing",
        "/api/movies//status",
        "/api/movies/m1/status/extra",
        "/api//movies",
        "/api/movies//",
        "/api/movies/m1/artifacts/",
    ],
)
def test_unknown_paths(client: TestClient, path: str) -> None:
    response = client.get(path)
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"
    assert response.json()["error"]["message"].startswith("no route for")


def test_wrong_method_lists_every_allowed_one(client: TestClient) -> None:
    response = client.delete("/api/movies")
    assert response.status_code == 405
    assert response.headers["Allow"] == "GET, HEAD, POST"
    assert response.json()["error"]["details"] == {"allowed": "GET, HEAD, POST"}
