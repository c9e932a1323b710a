"""The API in-process: bodies parsed once into the right 4xx, headers and parameters checked,
outages and bugs answered as JSON, repeated creates with one Idempotency-Key made once."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from deepflix.handlers.writes import Write
from deepflix.pipeline.errors import Unavailable
from deepflix.pipeline.models import Movie
from tests.api_client import InProcess, in_process

pytestmark = pytest.mark.integration


@pytest.fixture
def api(tmp_path: Path) -> Iterator[InProcess]:
    with in_process(tmp_path) as api:
        yield api


def post(api: InProcess, body: bytes, **headers: str | bytes) -> tuple[int, Any]:
    fields: dict[str, str | bytes] = {"Content-Type": "application/json", **headers}
    raw = [(k.encode(), v if isinstance(v, bytes) else v.encode()) for k, v in fields.items()]
    response = api.client.post("/api/movies", content=body, headers=raw)
    return response.status_code, response.json()


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        (b'{"prompt": ', 400, "bad_request"),
        (b'{"prompt": "\xff"}', 400, "bad_request"),
        (b"[" * 30_000 + b"]" * 30_000, 400, "bad_request"),
        (b'{"prompt": "a"} trailing', 400, "bad_request"),
        (b"", 400, "bad_request"),
        (b'["a prompt"]', 422, "validation_failed"),
        (b'{"prompt": "a", "scene_count": "5"}', 422, "validation_failed"),
    ],
)
def test_a_body_is_parsed_once_into_the_right_refusal(
    api: InProcess, body: bytes, status: int, code: str
) -> None:
    got, answer = post(api, body)
    assert got == status and answer["error"]["code"] == code
    assert api.client.get("/api/movies").json()["movies"] == []


def test_field_errors_name_each_field(api: InProcess) -> None:
    got, answer = post(api, json.dumps({"prompt": "a", "colour": "red", "seed": -1}).encode())
    fields = [d["field"] for d in answer["error"]["details"]]
    assert got == 422 and sorted(fields) == ["colour", "seed"]


def test_a_json_content_type_may_carry_parameters(api: InProcess) -> None:
    got, _ = post(api, b'{"prompt": "a"}', **{"Content-Type": "Application/JSON; charset=utf-8"})
    assert got == 202


def test_a_declared_oversized_body_is_refused_before_it_is_read(api: InProcess) -> None:
    response = api.client.post(
        "/api/movies",
        content=b"{}",
        headers={"Content-Type": "application/json", "Content-Length": str(65 * 1024)},
    )
    assert response.status_code == 413


@pytest.mark.parametrize("key", ["x" * 201, "caf\u00e9".encode(), "two words", ""])
def test_an_idempotency_key_outside_printable_ascii_is_refused(
    api: InProcess, key: str | bytes
) -> None:
    got, answer = post(api, b'{"prompt": "a"}', **{"Idempotency-Key": key})
    assert got == 400 and answer["error"]["code"] == "bad_request"


def test_one_idempotency_key_makes_one_movie(api: InProcess) -> None:
    first = post(api, b'{"prompt": "a"}', **{"Idempotency-Key": "k-1"})
    again = post(api, b'{"prompt": "a"}', **{"Idempotency-Key": "k-1"})
    other = post(api, b'{"prompt": "b"}', **{"Idempotency-Key": "k-1"})
    assert first[0] == again[0] == 202 and first[1]["movie_id"] == again[1]["movie_id"]
    assert other[0] == 409


@pytest.mark.parametrize("limit", ["0", "101", "abc", "\u00b2", "-1", "1.5"])
def test_a_listing_limit_must_be_1_to_100(api: InProcess, limit: str) -> None:
    response = api.client.get("/api/movies", params={"limit": limit})
    assert response.status_code == 400 and response.json()["error"]["code"] == "bad_request"


def test_a_path_outside_latin_1_is_an_unknown_movie(api: InProcess) -> None:
    response = api.client.get("/api/movies/%E2%82%AC/status")
    assert response.status_code == 404 and "\u20ac" in response.json()["error"]["message"]


def test_an_outage_answers_503_with_retry_after(api: InProcess) -> None:
    async def down(write: Write) -> Movie | None:
        raise Unavailable("the embedded database is unavailable", retry_after_s=7)

    api.api.writes = down
    got, answer = post(api, b'{"prompt": "a"}')
    assert got == 503 and answer["error"]["code"] == "unavailable"
    assert api.client.post("/api/admission/pause").headers["Retry-After"] == "7"


def test_a_bug_is_a_logged_500_with_a_json_body(
    api: InProcess, caplog: pytest.LogCaptureFixture
) -> None:
    async def broken(write: Write) -> Movie | None:
        raise ZeroDivisionError("boom")

    api.api.writes = broken
    with caplog.at_level(logging.ERROR):
        got, answer = post(api, b'{"prompt": "a"}')
    assert got == 500 and answer["error"]["code"] == "internal"
    assert "boom" not in json.dumps(answer)
    assert any(r.exc_info for r in caplog.records)
