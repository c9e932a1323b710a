"""The live routes where the store keeps no change sequence (the cloud's case): a movie's
stream polls its movie and ends after its final status."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from deepflix.pipeline.models import MovieStatus
from deepflix.pipeline.transitions import Decision
from tests.api_client import in_process

pytestmark = pytest.mark.integration


def events(text: str) -> list[tuple[str, str]]:
    out = []
    for block in text.split("\n\n"):
        lines = dict(line.split(": ", 1) for line in block.splitlines() if ": " in line)
        if "event" in lines:
            out.append((lines["event"], lines["data"]))
    return out


def test_a_movie_stream_polls_until_the_movie_is_done(tmp_path: Path) -> None:
    with in_process(tmp_path) as api:
        movie_id = api.client.post("/api/movies", json={"prompt": "a rain dance"}).json()[
            "movie_id"
        ]
        answers: list[str] = []
        reading = threading.Thread(
            target=lambda: answers.append(api.client.get(f"/api/movies/{movie_id}/events").text)
        )
        reading.start()
        hub = api.api.hub()
        deadline = time.monotonic() + 30
        # Open, and its first read made (it marks a movie that waits in a queue).
        while not any(s.movie_id == movie_id and s.waiting for s in hub.streams):
            assert time.monotonic() < deadline, "the stream never opened"
            time.sleep(0.01)
        api.pipeline.store.mutate(
            movie_id,
            lambda m: Decision(m.model_copy(update={"status": MovieStatus.cancelled})),
        )
        reading.join(timeout=30)
        assert not reading.is_alive()
        got = events(answers[0])
        assert [name for name, _ in got] == ["movie", "movie"]
        assert '"status":"queued"' in got[0][1] and '"status":"cancelled"' in got[1][1]
        assert not hub.streams  # the ended stream left the hub


def test_the_dashboard_stream_starts_with_the_queues(tmp_path: Path) -> None:
    with in_process(tmp_path) as api:
        hub = api.api.hub()
        hub.close()  # a closed hub ends a new stream after its first events
        text = api.client.get("/api/events").text
        assert [name for name, _ in events(text)] == ["queues"]
        assert '"story"' in text
