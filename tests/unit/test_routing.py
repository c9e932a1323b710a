"""The API router: the routes werkzeug's Map matched, with the same 404 and 405 answers."""

from __future__ import annotations

import pytest

from deepflix.handlers.api import ROUTES
from deepflix.handlers.routing import NoRoute, Router, WrongMethod

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("method", "path", "endpoint", "args"),
    [
        ("GET", "/", "dashboard", {}),
        ("GET", "/healthz", "health", {}),
        ("POST", "/api/movies", "create", {}),
        ("GET", "/api/movies/", "list", {}),
        ("GET", "/api/movies/m1", "status", {"movie_id": "m1"}),
        ("HEAD", "/api/movies/m1/status", "status", {"movie_id": "m1"}),
        ("POST", "/api/movies/m1/cancel/", "cancel", {"movie_id": "m1"}),
        (
            "GET",
            "/api/movies/m1/artifacts/movie.mp4",
            "artifact",
            {"movie_id": "m1", "name": "movie.mp4"},
        ),
        ("GET", "/api/queue/j1/position", "position", {"job_id": "j1"}),
        ("POST", "/api/admission/pause", "pause", {}),
    ],
)
def test_routes_match(method: str, path: str, endpoint: str, args: dict[str, str]) -> None:
    assert ROUTES.match(method, path) == (endpoint, args)


@pytest.mark.parametrize(
    "path", ["/nothing", "/api/movies//status", "/api/movies/m1/status/extra", "/api//movies"]
)
def test_unknown_paths(path: str) -> None:
    with pytest.raises(NoRoute):
        ROUTES.match("GET", path)


def test_wrong_method_lists_every_allowed_one() -> None:
    with pytest.raises(WrongMethod) as e:
        ROUTES.match("DELETE", "/api/movies")
    assert e.value.allowed == ["GET", "HEAD", "POST"]
    assert str(e.value) == "GET, HEAD, POST"


def test_a_parameter_is_one_non_empty_segment() -> None:
    router = Router([("GET", "/a/<x>", "one")])
    assert router.match("GET", "/a/b") == ("one", {"x": "b"})
    for path in ("/a/", "/a/b/c"):
        with pytest.raises(NoRoute):
            router.match("GET", path)
