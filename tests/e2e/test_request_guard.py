"""`deepflix serve` over real HTTP, as an attacker's page would reach it: a cross-site form
POST changes nothing, a rebound DNS name reads nothing; the dashboard's requests still work."""

from __future__ import annotations

import pytest

from tests import rawhttp
from tests.e2e.conftest import Service

pytestmark = pytest.mark.e2e


def send(
    service: Service, method: str, path: str, headers: dict[str, str], body: bytes = b""
) -> rawhttp.Answer:
    """A request with exactly these headers, Host included, as a browser sends it."""
    lines = [f"{method} {path} HTTP/1.1", "Connection: close", f"Content-Length: {len(body)}"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    return rawhttp.send(service.port, "\r\n".join(lines).encode() + b"\r\n\r\n" + body)


def test_a_page_of_another_site_can_neither_write_nor_read(shared_service: Service) -> None:
    svc = shared_service
    own = f"127.0.0.1:{svc.port}"
    svc.request("POST", "/api/admission/pause")  # the movie waits, so it could be cancelled
    code, created = svc.request("POST", "/api/movies", {"prompt": "A fox at dawn"})
    assert code == 202
    cancel = f"/api/movies/{created['movie_id']}/cancel"

    form = {
        "Host": own,
        "Origin": "http://evil.example",
        "Content-Type": "application/x-www-form-urlencoded",
        "Sec-Fetch-Site": "cross-site",
    }
    for path in ("/api/admission/resume", cancel):
        answer = send(svc, "POST", path, form, b"x=1")
        assert answer.status == 403, answer.body
        assert answer.json()["error"]["code"] == "cross_site_request"
    assert svc.request("GET", "/api/queues")[1]["admission_paused"] is True
    assert svc.request("GET", cancel.removesuffix("/cancel"))[1]["status"] != "cancelled"

    rebound = send(svc, "GET", "/api/movies", {"Host": f"attacker.example:{svc.port}"})
    assert rebound.status == 421, rebound.body
    assert set(rebound.json()["error"]) == {"code", "message", "details"}

    # The dashboard's own fetch calls, as a browser sends them from its page.
    page = {"Host": own, "Origin": f"http://{own}", "Sec-Fetch-Site": "same-origin"}
    dashboard = {**page, "X-DeepFlix-Client": "dashboard"}
    answer = send(svc, "POST", cancel, dashboard)
    assert answer.status == 200 and answer.json()["status"] == "cancelled", answer.body
    answer = send(svc, "POST", "/api/admission/resume", dashboard)
    assert answer.status == 200 and answer.json()["admission_paused"] is False, answer.body
    assert send(svc, "GET", "/", {"Host": f"localhost:{svc.port}"}).status == 200
