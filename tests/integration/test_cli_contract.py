"""The CLI against a small local server speaking the API's contract: routes built elsewhere
(DELETE, logs, `?status=`, a movie's event stream, queue pause) and credentials answers."""

from __future__ import annotations

import copy
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from deepflix.entrypoints import cli
from deepflix.handlers.examples import MOVIE_VIEW, QUEUES

pytestmark = pytest.mark.integration

MOVIE = "3f2c" + "a" * 28
OTHER = "3f2d" + "b" * 28
FAILED_ERROR = {
    "code": "injected_fault",
    "message": "injected permanent fault in images",
    "retryable": False,
    "attempt": 3,
    "at": "2026-11-29T12:00:03+00:00",
}


def summary(movie_id: str, status: str) -> dict[str, Any]:
    return {
        "movie_id": movie_id,
        "status": status,
        "current_stage": None,
        "priority": "normal",
        "prompt": f"prompt of {movie_id[:4]}",
        "title": None,
        "created_at": "2026-11-29T12:00:00+00:00",
        "links": {},
    }


def movie_view(status: str, **stages: str) -> dict[str, Any]:
    view: dict[str, Any] = copy.deepcopy(dict(MOVIE_VIEW[0]))
    view.update(movie_id=MOVIE, status=status, position=None)
    for stage, st in stages.items():
        view["stages"][stage]["status"] = st
    if status == "failed":
        view.update(error=FAILED_ERROR, current_stage=None)
        view["stages"]["images"]["last_error"] = FAILED_ERROR
    return view


class Fake:
    """Answers by route; keeps every request (method, path, headers)."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, str, dict[str, str]]] = []
        self.token: str | None = None  # when set, requests without it get 401
        self.rate_limited = False
        self.events = [movie_view("images", story="succeeded", images="running")]
        self.events.append(movie_view("failed", story="succeeded", images="failed"))

    def answer(self, h: BaseHTTPRequestHandler) -> None:
        self.requests.append((h.command, h.path, dict(h.headers.items())))
        path = h.path.split("?")[0]
        if self.rate_limited:
            return self.json(h, 429, envelope("rate_limited", "too many"), {"Retry-After": "7"})
        if self.token and h.headers.get("Authorization") != f"Bearer {self.token}":
            return self.json(h, 401, envelope("unauthenticated", "a token is needed"))
        if path == "/api/movies" and h.command == "GET":
            movies = [summary(MOVIE, "failed"), summary(OTHER, "succeeded")]
            return self.json(h, 200, {"movies": movies, "next_cursor": None})
        if path == f"/api/movies/{MOVIE}" and h.command == "DELETE":
            h.send_response(204)
            h.end_headers()
            return None
        if path == f"/api/movies/{MOVIE}/status":
            return self.json(h, 200, self.events[-1])
        if path == f"/api/movies/{MOVIE}/logs":
            body = b"12:00:01 images attempt 3 started\n12:00:02 injected permanent fault\n"
            return self.raw(h, 200, body, "text/plain")
        if path == f"/api/movies/{MOVIE}/events":
            stream = b"".join(
                b": hello\n\nevent: movie\ndata: " + json.dumps(v).encode() + b"\n\n"
                for v in self.events
            )
            return self.raw(h, 200, stream, "text/event-stream")
        if path in ("/api/queues/video/pause", "/api/admission/pause") and h.command == "POST":
            queues: dict[str, Any] = copy.deepcopy(dict(QUEUES[0]))
            queues["admission_paused"] = path.startswith("/api/admission")
            for stage, q in queues["queues"].items():
                q["paused"] = stage == "video" and "video" in path
            return self.json(h, 200, queues)
        return self.json(h, 404, envelope("not_found", f"no route for {path}"))

    def json(
        self, h: BaseHTTPRequestHandler, code: int, body: Any, headers: dict[str, str] | None = None
    ) -> None:
        self.raw(h, code, json.dumps(body).encode(), "application/json", headers)

    def raw(
        self,
        h: BaseHTTPRequestHandler,
        code: int,
        body: bytes,
        media: str,
        headers: dict[str, str] | None = None,
    ) -> None:
        h.send_response(code)
        h.send_header("Content-Type", media)
        h.send_header("Content-Length", str(len(body)))
        for k, v in (headers or {}).items():
            h.send_header(k, v)
        h.end_headers()
        h.wfile.write(body)


def envelope(code: str, message: str) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "details": None}}


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> Iterator[Fake]:
    state = Fake()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            state.answer(self)

        do_POST = do_DELETE = do_GET

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    monkeypatch.setenv("DEEPFLIX_URL", f"http://127.0.0.1:{server.server_address[1]}")
    monkeypatch.delenv("DEEPFLIX_TOKEN", raising=False)
    yield state
    server.shutdown()
    server.server_close()


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = cli.main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def test_list_asks_the_service_for_a_status(fake: Fake, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "list", "--status", "failed")
    assert code == 0
    assert (
        fake.requests[-1][1].startswith("/api/movies?") and "status=failed" in fake.requests[-1][1]
    )
    lines = out.splitlines()
    assert lines[0].split()[:2] == ["ID", "STATUS"]
    # Filtered here too, where a service answers unfiltered.
    assert [line.split()[0] for line in lines[1:]] == [MOVIE[:8]]


def test_delete_resolves_a_short_id_and_asks_first(
    fake: Fake, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run(capsys, "delete", "3f2c")
    assert code == 2 and "add --yes" in err  # no terminal to ask at: nothing deleted
    assert not [r for r in fake.requests if r[0] == "DELETE"]
    code, out, _ = run(capsys, "delete", "3f2c", "--yes")
    assert code == 0 and out.strip() == f"{MOVIE[:8]} deleted"
    assert ("DELETE", f"/api/movies/{MOVIE}") in [(m, p) for m, p, _ in fake.requests]


def test_an_ambiguous_or_unknown_prefix_is_refused(
    fake: Fake, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run(capsys, "status", "3f2")
    assert code == 1 and "starts more than one movie id" in err
    code, _, err = run(capsys, "status", "9999")
    assert code == 1 and "no movie with an id starting '9999'" in err


def test_logs_print_the_job_logs_tail(fake: Fake, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "logs", MOVIE, "--tail", "50")
    assert code == 0 and "injected permanent fault" in out
    assert fake.requests[-1][1] == f"/api/movies/{MOVIE}/logs?tail=50"


def test_waiting_follows_the_event_stream_and_says_why_it_failed(
    fake: Fake, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(capsys, "status", MOVIE, "--wait")
    assert code == 1
    assert f"/api/movies/{MOVIE}/events" in [p for _, p, _ in fake.requests]
    assert f"{MOVIE[:8]} running images" in out
    assert (
        "failed in images after attempt 3: injected permanent fault in images (injected_fault)"
    ) in out
    assert f"deepflix retry {MOVIE[:8]}" in out


def test_pause_of_one_stage_uses_its_queue_route(
    fake: Fake, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(capsys, "pause", "video")
    assert code == 0 and fake.requests[-1][:2] == ("POST", "/api/queues/video/pause")
    assert "video" in out and "PAUSED" in out and "admission open" in out
    code, out, _ = run(capsys, "pause")
    assert code == 0 and "admission PAUSED" in out


def test_the_token_is_sent_as_a_bearer_credential(
    fake: Fake, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    fake.token = "dfx_secret"
    code, _, err = run(capsys, "list")
    assert code == 1 and "pass --token or set DEEPFLIX_TOKEN" in err and len(err.splitlines()) == 1
    code, _, err = run(capsys, "list", "--token", "dfx_wrong")
    assert code == 1 and "refused the token (401)" in err
    monkeypatch.setenv("DEEPFLIX_TOKEN", "dfx_secret")
    code, _, _ = run(capsys, "list")
    assert code == 0 and fake.requests[-1][2]["Authorization"] == "Bearer dfx_secret"


def test_rate_limits_say_when_to_try_again(fake: Fake, capsys: pytest.CaptureFixture[str]) -> None:
    fake.rate_limited = True
    code, _, err = run(capsys, "list")
    assert (
        code == 1 and err.strip() == "deepflix list: rate limited (429): too many; try again in 7 s"
    )
