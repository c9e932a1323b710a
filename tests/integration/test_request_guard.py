"""The API in front of a web page of another site: a form it posts changes nothing, a
rebound DNS name reads nothing, and the dashboard's and scripts' own requests still work."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from deepflix.pipeline.models import MovieStatus
from tests.api_client import BASE_URL, InProcess, in_process

pytestmark = pytest.mark.integration

EVIL = "http://evil.example"
FORM = {"Content-Type": "application/x-www-form-urlencoded"}
# What a browser adds to the dashboard's own fetch calls (handlers/dashboard.html).
DASHBOARD = {"Origin": BASE_URL, "Sec-Fetch-Site": "same-origin", "X-DeepFlix-Client": "dashboard"}


@pytest.fixture
def api(tmp_path: Path) -> Iterator[InProcess]:
    with in_process(tmp_path, headers={}) as api:  # a browser's requests: no client header
        yield api


def create(api: InProcess) -> str:
    response = api.client.post("/api/movies", json={"prompt": "A fox at dawn"})
    assert response.status_code == 202, response.text
    movie_id: str = response.json()["movie_id"]
    return movie_id


def refused(response: Any, status: int, code: str) -> None:
    assert response.status_code == status, response.text
    assert response.json()["error"]["code"] == code
    assert set(response.json()["error"]) == {"code", "message", "details"}


def test_a_cross_site_form_cannot_pause_admission(api: InProcess) -> None:
    response = api.client.post(
        "/api/admission/pause", content=b"x=1", headers={**FORM, "Origin": EVIL}
    )
    refused(response, 403, "cross_site_request")
    assert api.pipeline.admission_paused() is False


def test_a_cross_site_form_cannot_cancel_a_movie(api: InProcess) -> None:
    movie_id = create(api)
    response = api.client.post(
        f"/api/movies/{movie_id}/cancel", content=b"x=1", headers={**FORM, "Origin": EVIL}
    )
    refused(response, 403, "cross_site_request")
    assert api.pipeline.get(movie_id).status is not MovieStatus.cancelled


@pytest.mark.parametrize(
    "headers",
    [
        {"Origin": EVIL, "Content-Type": "application/json"},  # after a refused preflight
        {"Origin": EVIL, "X-DeepFlix-Client": "x"},
        {"Origin": "null"},  # a sandboxed frame, a file:// page
        {"Origin": "http://127.0.0.1:9999"},  # same site, another origin
        {"Sec-Fetch-Site": "cross-site", "X-DeepFlix-Client": "x"},
    ],
)
def test_any_write_from_another_site_is_refused(api: InProcess, headers: dict[str, str]) -> None:
    refused(api.client.post("/api/admission/pause", headers=headers), 403, "cross_site_request")
    assert api.pipeline.admission_paused() is False


def test_a_write_neither_json_nor_named_is_refused(api: InProcess) -> None:
    """A form a browser sends without Origin (or a simple fetch): no preflight protects it."""
    movie_id = create(api)
    for path in ("/api/admission/pause", f"/api/movies/{movie_id}/cancel"):
        for headers in ({}, FORM, {"Content-Type": "text/plain"}):
            refused(api.client.post(path, headers=headers), 415, "unsupported_media_type")
    assert api.pipeline.admission_paused() is False
    assert api.pipeline.get(movie_id).status is not MovieStatus.cancelled


@pytest.mark.parametrize("method", ["GET", "POST", "HEAD"])
@pytest.mark.parametrize("host", ["attacker.example", "attacker.example:8080", "127.0.0.2:8080"])
def test_a_host_not_served_is_misdirected(api: InProcess, method: str, host: str) -> None:
    for path in ("/api/movies", "/", "/api/admission/pause", "/nothing"):
        response = api.client.request(method, path, headers={"Host": host, **DASHBOARD})
        assert response.status_code == 421, (path, response.text)
        if method != "HEAD":
            refused(response, 421, "misdirected_request")
    assert api.pipeline.admission_paused() is False


@pytest.mark.parametrize(
    ("host", "status"),
    [
        ("127.0.0.1:8080", 200),
        ("localhost:8080", 200),
        ("LOCALHOST:8080", 200),
        ("[::1]:8080", 200),
        ("127.0.0.1", 200),  # no port: raw HTTP tools; a browser names any port but 80
        ("localhost:9999", 421),
        ("localhost.attacker.example:8080", 421),
        ("", 421),
    ],
)
def test_the_loopback_names_at_the_bound_port_are_served(
    api: InProcess, host: str, status: int
) -> None:
    assert api.client.get("/api/queues", headers={"Host": host}).status_code == status


def test_the_dashboards_own_actions_succeed(api: InProcess) -> None:
    page = api.client.get("/", headers={"Sec-Fetch-Site": "none"})
    assert '"X-DeepFlix-Client": "dashboard"' in page.text  # every fetch of the page sends it
    movie_id = create(api)
    paused = api.client.post("/api/admission/pause", headers=DASHBOARD)
    assert paused.status_code == 200 and paused.json()["admission_paused"] is True
    cancelled = api.client.post(f"/api/movies/{movie_id}/cancel", headers=DASHBOARD)
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
    resumed = api.client.post("/api/admission/resume", headers=DASHBOARD)
    assert resumed.status_code == 200 and resumed.json()["admission_paused"] is False
    made = api.client.post("/api/movies", json={"prompt": "Another fox"}, headers=DASHBOARD)
    assert made.status_code == 202, made.text


def test_a_script_writes_with_json_or_its_header(api: InProcess) -> None:
    """The CLI's and curl's requests: no Origin, no Sec-Fetch-Site."""
    pause = api.client.post("/api/admission/pause", headers={"X-DeepFlix-Client": "cli"})
    assert pause.status_code == 200
    resume = api.client.post("/api/admission/resume", headers={"Content-Type": "application/json"})
    assert resume.status_code == 200
    assert api.client.post("/api/admission/pause", headers={"X-Requested-With": "x"}).is_success


def test_the_openapi_document_names_the_guards_errors(api: InProcess) -> None:
    paths = api.client.get("/openapi.json").json()["paths"]
    pause = paths["/api/admission/pause"]["post"]
    assert {"403", "415", "421"} <= set(pause["responses"])
    assert "X-DeepFlix-Client" in {p["name"] for p in pause["parameters"]}
    # A read for any user: the guard adds no 403 (operators' reads have one, for the role).
    status = paths["/api/movies/{movie_id}/status"]["get"]["responses"]
    assert "421" in status and "403" not in status
