"""Live updates over `deepflix serve`: a movie's events to its end, the dashboard's stream, and
a SIGTERM that stops the service while streams are open."""

from __future__ import annotations

import http.client
import json
import os
import signal
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from deepflix.runtime.api_process import SHUTDOWN_GRACE_S
from tests.e2e.conftest import Service

pytestmark = pytest.mark.e2e


class EventStream:
    """A Server-Sent Events client on one connection: events as (name, data), comments kept."""

    def __init__(self, service: Service, path: str) -> None:
        self.conn = http.client.HTTPConnection("127.0.0.1", service.port, timeout=60)
        self.conn.request("GET", path, headers={"Accept": "text/event-stream"})
        self.response = self.conn.getresponse()
        self.comments: list[str] = []

    def events(self) -> Iterator[tuple[str, Any]]:
        name, data = "message", ""
        while line := self.response.readline():  # b"" once the server ends the stream
            text = line.decode().rstrip("\n")
            if text.startswith(":"):
                self.comments.append(text)
            elif text.startswith("event: "):
                name = text.removeprefix("event: ")
            elif text.startswith("data: "):
                data += text.removeprefix("data: ")
            elif not text and data:
                yield name, json.loads(data)
                name, data = "message", ""

    def close(self) -> None:
        self.conn.close()


def test_a_movies_events_follow_it_to_its_end(make_service: Callable[..., Service]) -> None:
    svc = make_service(generators="instant")
    svc.call("POST", "/api/admission/pause")  # it waits, so the stream sees it move
    movie_id = svc.create("a kite over the dunes")["movie_id"]
    stream = EventStream(svc, f"/api/movies/{movie_id}/events")
    assert stream.response.status == 200
    assert stream.response.getheader("Content-Type", "").startswith("text/event-stream")
    seen: list[str] = []
    for name, view in stream.events():
        assert name == "movie" and view["movie_id"] == movie_id
        if not seen:
            assert view["status"] == "queued"
            svc.call("POST", "/api/admission/resume")
        seen.append(view["status"])
    stream.close()
    # The server ended the stream after the final status, which came last.
    assert seen[-1] == "succeeded" and "succeeded" not in seen[:-1]
    assert len(seen) >= 2 and seen[0] == "queued"
    assert svc.status(movie_id)["status"] == "succeeded"


def test_an_unknown_movie_has_no_stream(shared_service: Service) -> None:
    code, body = shared_service.request("GET", "/api/movies/nope/events")
    assert code == 404 and body["error"]["code"] == "not_found"


def test_the_dashboard_stream_has_the_queues_then_each_changed_movie(
    shared_service: Service,
) -> None:
    stream = EventStream(shared_service, "/api/events")
    events = stream.events()
    name, queues = next(events)
    assert name == "queues" and set(queues["queues"]) == {"story", "images", "video"}
    movie_id = shared_service.create("a lantern festival")["movie_id"]
    statuses = set()
    for name, data in events:
        if name == "movie" and data["movie_id"] == movie_id:
            statuses.add(data["status"])
            if data["status"] == "succeeded":
                break
        elif name == "queues":
            assert set(data["queues"]) == {"story", "images", "video"}
    stream.close()
    assert "succeeded" in statuses


def test_sigterm_with_open_streams_stops_the_service_within_its_grace(
    make_service: Callable[..., Service],
) -> None:
    svc = make_service(generators="instant")
    svc.call("POST", "/api/admission/pause")
    movie_id = svc.create("a ferry at dusk")["movie_id"]
    streams = [EventStream(svc, "/api/events"), EventStream(svc, f"/api/movies/{movie_id}/events")]
    firsts = [next(s.events())[0] for s in streams]
    assert firsts == ["queues", "movie"]
    assert svc.proc is not None
    os.kill(svc.proc.pid, signal.SIGTERM)
    # The streams end (the server closes them) rather than holding the stop for its grace.
    for s in streams:
        assert list(s.events()) == []
        s.close()
    assert svc.proc.wait(timeout=SHUTDOWN_GRACE_S - 5) == 0
    log = (svc.data_dir.parent / f"service-{svc.port}.log").read_text()
    assert "Traceback" not in log and "timeout graceful shutdown exceeded" not in log, log[-2000:]
