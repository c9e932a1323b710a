"""Webhooks from `deepflix serve` to a receiver on this machine: signed, retried after a 500,
given up on after the last attempt at a receiver that is not there."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import socket
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from tests.e2e.conftest import Service

pytestmark = pytest.mark.e2e

KEY = b"a test key of thirty-two bytes!!"
SECRET = "whsec_" + base64.b64encode(KEY).decode()


class Receiver:
    """A webhook receiver answering the statuses in `answers` in turn (then 200)."""

    def __init__(self, answers: list[int]) -> None:
        self.answers = answers
        self.calls: list[tuple[dict[str, str], bytes]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.calls.append(({k.lower(): v for k, v in self.headers.items()}, body))
                status = receiver.answers.pop(0) if receiver.answers else 200
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Callable[[list[int]], Receiver]]:
    made: list[Receiver] = []

    def make(answers: list[int]) -> Receiver:
        made.append(Receiver(answers))
        return made[-1]

    yield make
    for r in made:
        r.close()


def hooked(make_service: Callable[..., Service], **settings: Any) -> Service:
    return make_service(
        generators="instant",
        webhook_secret=SECRET,
        webhook_base_delay_s=0.2,
        webhook_timeout_s=20,  # a loaded machine's slow answer is no failed attempt
        sweep_interval_s=0.5,
        **settings,
    )


def until(check: Callable[[], Any], what: str, timeout: float = 60) -> Any:
    deadline = time.monotonic() + timeout
    while not (found := check()):
        assert time.monotonic() < deadline, what
        time.sleep(0.05)
    return found


def test_a_finished_movie_is_posted_signed_with_its_status_view(
    make_service: Callable[..., Service], receiver: Callable[[list[int]], Receiver]
) -> None:
    hook = receiver([])
    svc = hooked(make_service)
    movie_id = svc.create("a paper boat", webhook=hook.url)["movie_id"]
    view = until(
        lambda: (s := svc.status(movie_id))["webhook"]["delivered"] and s, "never delivered"
    )
    ((headers, body),) = hook.calls
    signed = f"{headers['webhook-id']}.{headers['webhook-timestamp']}.".encode() + body
    expected = base64.b64encode(hmac.new(KEY, signed, hashlib.sha256).digest()).decode()
    assert headers["webhook-signature"] == f"v1,{expected}"
    assert abs(int(headers["webhook-timestamp"]) - time.time()) < 300
    posted = json.loads(body)
    assert posted["movie_id"] == movie_id and posted["status"] == "succeeded"
    assert posted["artifacts"] == view["artifacts"]
    (attempt,) = view["webhook"]["attempts"]
    assert attempt["status_code"] == 200 and attempt["error"] is None
    assert view["webhook"]["url"] == hook.url


def test_a_500_is_retried_and_the_next_200_delivers(
    make_service: Callable[..., Service], receiver: Callable[[list[int]], Receiver]
) -> None:
    hook = receiver([500])
    svc = hooked(make_service, webhook_url=hook.url)  # the setting: no URL on the create
    movie_id = svc.create("a tin drum")["movie_id"]
    view = until(
        lambda: (s := svc.status(movie_id))["webhook"]["delivered"] and s, "never delivered"
    )
    assert [a["status_code"] for a in view["webhook"]["attempts"]] == [500, 200]
    assert len(hook.calls) == 2
    first, second = (headers for headers, _ in hook.calls)
    assert first["webhook-id"] == second["webhook-id"]  # one notice, two attempts
    # The runtime's counts reach the API process with its next status report (each second).
    text = until(
        lambda: b'{result="delivered"} 1' in (t := svc.request("GET", "/metrics")[1]) and t,
        "the delivery was never counted",
    )
    assert b'deepflix_webhook_deliveries_total{result="failed"} 1' in text
    assert b'deepflix_webhook_deliveries_total{result="gave_up"} 0' in text


def test_a_dead_receiver_is_given_up_on_after_the_last_attempt(
    make_service: Callable[..., Service],
) -> None:
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{s.getsockname()[1]}/hook"
    svc = hooked(make_service, webhook_max_attempts=3)
    movie_id = svc.create("a glass harp", webhook=dead)["movie_id"]
    view = until(
        lambda: len((s := svc.status(movie_id))["webhook"]["attempts"]) == 3 and s,
        "three attempts never made",
    )
    assert not view["webhook"]["delivered"]
    assert all(
        a["status_code"] is None and "Connection" in a["error"] for a in view["webhook"]["attempts"]
    )
    with sqlite3.connect(svc.data_dir / "movies.db") as conn:
        (doc,) = conn.execute("SELECT doc FROM movies WHERE id = ?", (movie_id,)).fetchone()
    assert json.loads(doc)["outbox"] == []  # no attempt left to make


def test_a_webhook_that_is_not_http_is_refused(shared_service: Service) -> None:
    code, body = shared_service.request(
        "POST", "/api/movies", {"prompt": "a", "webhook": "file:///etc/passwd"}
    )
    assert code == 422 and body["error"]["details"][0]["field"] == "webhook"
