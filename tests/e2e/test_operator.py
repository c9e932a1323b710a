"""The operator's routes on a real `deepflix serve`: through the API process's write channel,
with subprocess jobs and their log files, and a queue pause that outlives a restart."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from tests.e2e.conftest import Service

pytestmark = pytest.mark.e2e


def test_a_paused_queue_holds_movies_across_a_restart_then_they_finish(
    make_service: Callable[..., Service],
) -> None:
    svc = make_service(generators="instant")
    code, queues = svc.request("POST", "/api/queues/video/pause")
    assert code == 200 and queues["queues"]["video"]["paused"]
    movie_id = svc.create("A lantern festival on the river", scene_count=2)["movie_id"]
    svc.wait_until(movie_id, lambda s: s["stages"]["video"]["status"] == "waiting")
    svc.stop()
    svc.start()
    code, queues = svc.request("GET", "/api/queues")
    assert queues["queues"]["video"]["paused"] and queues["queues"]["video"]["waiting"] == 1
    assert svc.status(movie_id)["stages"]["video"]["status"] == "waiting"
    code, queues = svc.request("POST", "/api/queues/video/resume")
    assert code == 200 and not queues["queues"]["video"]["paused"]
    assert svc.wait_terminal(movie_id)["status"] == "succeeded"


def test_logs_then_delete_then_bulk_actions_through_the_write_channel(
    make_service: Callable[..., Service],
) -> None:
    svc = make_service(generators="instant")
    done = svc.create("A kite over the dunes", scene_count=2)["movie_id"]
    assert svc.wait_terminal(done)["status"] == "succeeded"
    code, text = svc.request("GET", f"/api/movies/{done}/logs?tail=500")
    assert code == 200 and isinstance(text, bytes)
    # The stages that run as jobs (the story runs in the service's own process), in order.
    images = text.index(f"==> images-{done}-1.log <==".encode())
    assert images < text.index(f"==> video-{done}-1.log <==".encode())
    assert b'"stage": "video"' in text

    artifacts = svc.data_dir / "artifacts" / done
    media = [p for p in svc.data_dir.rglob(done) if p.is_dir()]
    assert media, f"no artifact folder for {done} under {svc.data_dir}"
    code, _ = svc.request("DELETE", f"/api/movies/{done}")
    assert code == 204
    assert svc.request("GET", f"/api/movies/{done}")[0] == 404
    assert not any(Path(p).exists() for p in media) and not artifacts.exists()
    assert not list((svc.data_dir / "jobs").glob(f"*-{done}-*.log"))

    svc.request("POST", "/api/admission/pause")
    queued = svc.create("A harbour at dawn")["movie_id"]
    code, moved = svc.request("POST", f"/api/movies/{queued}/priority", {"priority": "high"})
    assert code == 200 and moved["priority"] == "high"
    svc.request("POST", f"/api/movies/{queued}/cancel")
    code, cleaned = svc.request(
        "POST", "/api/bulk/clean", {"older_than_seconds": 0, "statuses": ["cancelled"]}
    )
    assert (code, cleaned) == (200, {"count": 1, "movie_ids": [queued]})
    code, retried = svc.request("POST", "/api/bulk/retry-failed")
    assert (code, retried) == (200, {"count": 0, "movie_ids": []})
    code, letters = svc.request("GET", "/api/dead-letters")
    assert (code, letters) == (200, {"dead_letters": []})
    code, missing = svc.request("POST", "/api/dead-letters/12345/replay")
    assert code == 404 and missing["error"]["code"] == "not_found"
