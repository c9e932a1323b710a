"""Every kind of bad input gets the right 4xx, a JSON error body, and creates nothing."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from tests import rawhttp
from tests.e2e.conftest import Service

pytestmark = pytest.mark.e2e


def assert_refused(service: Service, result: tuple[int, Any], status: int, code: str) -> None:
    got, body = result
    assert got == status, body
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message", "details"}
    assert body["error"]["code"] == code and body["error"]["message"]
    assert service.movie_count() == 0


def post(service: Service, raw: bytes, ctype: str = "application/json") -> tuple[int, Any]:
    return service.request("POST", "/api/movies", raw=raw, headers={"Content-Type": ctype})


def test_invalid_json(shared_service: Service) -> None:
    assert_refused(shared_service, post(shared_service, b'{"prompt": '), 400, "bad_request")


def test_body_that_is_not_utf8(shared_service: Service) -> None:
    assert_refused(shared_service, post(shared_service, b'{"prompt": "\xff"}'), 400, "bad_request")


def test_json_nested_too_deeply(shared_service: Service) -> None:
    r = post(shared_service, b"[" * 30_000 + b"]" * 30_000)
    assert_refused(shared_service, r, 400, "bad_request")


def test_json_that_is_not_an_object(shared_service: Service) -> None:
    r = post(shared_service, b'["a prompt"]')
    assert_refused(shared_service, r, 422, "validation_failed")


def test_wrong_types(shared_service: Service) -> None:
    r = post(shared_service, json.dumps({"prompt": "a", "scene_count": "5"}).encode())
    assert_refused(shared_service, r, 422, "validation_failed")
    assert r[1]["error"]["details"][0]["field"] == "scene_count"


def test_unknown_fields(shared_service: Service) -> None:
    r = post(shared_service, json.dumps({"prompt": "a", "colour": "red"}).encode())
    assert_refused(shared_service, r, 422, "validation_failed")
    assert r[1]["error"]["details"][0]["field"] == "colour"


def test_missing_prompt(shared_service: Service) -> None:
    r = post(shared_service, json.dumps({"scene_count": 3}).encode())
    assert_refused(shared_service, r, 422, "validation_failed")


def test_empty_prompt(shared_service: Service) -> None:
    r = post(shared_service, json.dumps({"prompt": "   "}).encode())
    assert_refused(shared_service, r, 422, "validation_failed")


def test_oversized_prompt(shared_service: Service) -> None:
    r = post(shared_service, json.dumps({"prompt": "x" * 2001}).encode())
    assert_refused(shared_service, r, 422, "validation_failed")


def test_title_too_long(shared_service: Service) -> None:
    r = post(shared_service, json.dumps({"prompt": "a", "title": "t" * 121}).encode())
    assert_refused(shared_service, r, 422, "validation_failed")


@pytest.mark.parametrize("count", [0, 25, 2.5, True])
def test_scene_count_out_of_range_or_not_an_integer(shared_service: Service, count: Any) -> None:
    r = post(shared_service, json.dumps({"prompt": "a", "scene_count": count}).encode())
    assert_refused(shared_service, r, 422, "validation_failed")


def test_unknown_priority_and_style(shared_service: Service) -> None:
    for field, value in (("priority", "urgent"), ("style", "vaporwave")):
        r = post(shared_service, json.dumps({"prompt": "a", field: value}).encode())
        assert_refused(shared_service, r, 422, "validation_failed")


def test_body_over_64_kib(shared_service: Service) -> None:
    raw = json.dumps({"prompt": "a", "title": "x" * 70_000}).encode()
    assert_refused(shared_service, post(shared_service, raw), 413, "payload_too_large")


def test_wrong_content_type(shared_service: Service) -> None:
    r = post(shared_service, b"prompt=a", "application/x-www-form-urlencoded")
    assert_refused(shared_service, r, 415, "unsupported_media_type")


def test_missing_content_type(shared_service: Service) -> None:
    r = shared_service.request("POST", "/api/movies", raw=b'{"prompt": "a"}')
    assert_refused(shared_service, r, 415, "unsupported_media_type")


def test_bad_idempotency_key(shared_service: Service) -> None:
    r = shared_service.request(
        "POST",
        "/api/movies",
        raw=b'{"prompt": "a"}',
        headers={"Content-Type": "application/json", "Idempotency-Key": "x" * 201},
    )
    assert_refused(shared_service, r, 400, "bad_request")


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/api/movies/nope/status"),
        ("GET", "/api/movies/nope"),
        ("GET", "/api/queue/nope/position"),
        ("POST", "/api/movies/nope/cancel"),
        ("POST", "/api/movies/nope/retry"),
        ("GET", "/api/movies/nope/artifacts/movie.mp4"),
        ("GET", "/api/nothing-here"),
    ],
)
def test_unknown_ids_and_routes(shared_service: Service, method: str, path: str) -> None:
    assert_refused(shared_service, shared_service.request(method, path), 404, "not_found")


def test_wrong_method(shared_service: Service) -> None:
    r = shared_service.request("DELETE", "/api/movies")
    assert_refused(shared_service, r, 405, "method_not_allowed")
    assert "POST" in r[1]["error"]["details"]["allowed"]


@pytest.mark.parametrize(
    "query", ["limit=0", "limit=abc", "limit=101", "cursor=%%%", "cursor=eHl6"]
)
def test_bad_listing_parameters(shared_service: Service, query: str) -> None:
    r = shared_service.request("GET", f"/api/movies?{query}")
    assert_refused(shared_service, r, 400, "bad_request")


def test_content_length_beside_transfer_encoding_is_refused(shared_service: Service) -> None:
    """Two framings of one body are how requests are smuggled past a proxy: neither wins."""
    body = b'{"prompt": "smuggled"}'
    raw = rawhttp.build(
        b"POST",
        b"/api/movies",
        [
            (b"Content-Type", b"application/json"),
            (b"Content-Length", b"5"),
            (b"Transfer-Encoding", b"chunked"),
        ],
        b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body),
    )
    assert rawhttp.send(shared_service.port, raw).status == 400
    assert shared_service.movie_count() == 0


def test_a_body_that_never_finishes_arriving_times_out(shared_service: Service) -> None:
    head = (
        b"POST /api/movies HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        b"Content-Length: 100\r\n\r\n"
    )
    started = time.monotonic()
    # read to the close: one recv may hold the head without the body
    answer = rawhttp.send(shared_service.port, head + b'{"pro', timeout_s=90)  # and nothing more
    assert answer.status == 408 and answer.json()["error"]["code"] == "request_timeout"
    assert time.monotonic() - started < 60  # the limit is 10 s; the rest is a busy machine
    assert shared_service.movie_count() == 0
