"""Movies go through story, images and video over real HTTP and come out as playable MP4s."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from tests.e2e.conftest import Service
from tests.e2e.helpers import download, probe_video, successes

pytestmark = pytest.mark.e2e


def test_priorities_set_positions_and_dispatch_order_and_videos_play(
    make_service: Callable[..., Service], tmp_path: Path
) -> None:
    svc: Service = make_service(story_concurrency=1)
    assert svc.request("POST", "/api/admission/pause")[1]["admission_paused"] is True
    plan = [("low", 2), ("normal", 2), ("high", 3), ("normal", 1)]
    movies = [
        svc.create(f"A clockmaker in Lisbon builds a {p} priority dream", priority=p, scene_count=n)
        for p, n in plan
    ]
    ids = [m["movie_id"] for m in movies]
    assert [m["position"] for m in movies] == [1, 1, 1, 3]  # each as it was admitted

    expected_order = [ids[2], ids[1], ids[3], ids[0]]  # high, then normals by arrival, then low
    for place, movie_id in enumerate(expected_order, start=1):
        code, pos = svc.request("GET", f"/api/queue/{movie_id}/position")
        assert code == 200 and pos["queue"] == "story"
        assert (pos["position"], pos["ahead"], pos["total_waiting"]) == (place, place - 1, 4)
        assert pos["eta_seconds"] > 0
        assert svc.status(movie_id)["position"]["position"] == place

    svc.request("POST", "/api/admission/resume")
    done = [svc.wait_terminal(movie_id, timeout=180) for movie_id in ids]
    assert [d["status"] for d in done] == ["succeeded"] * 4

    started = {d["movie_id"]: d["stages"]["story"]["started_at"] for d in done}
    assert sorted(ids, key=lambda i: started[i]) == expected_order

    for (_, scenes), d in zip(plan, done, strict=True):
        assert d["position"] is None and d["error"] is None
        for stage in ("story", "images", "video"):
            st = d["stages"][stage]
            assert (st["status"], st["attempts"], st["progress"]) == ("succeeded", 1, 100)
        arts = d["artifacts"]
        assert len(arts["images"]) == scenes and arts["poster"] and arts["captions"]
        video = probe_video(download(svc, arts["video"], tmp_path / f"{d['movie_id']}.mp4"))
        expected_s = scenes * 1.0 - (scenes - 1) * 0.5  # 1 s scenes, 0.5 s crossfades
        assert (video["codec"], video["width"], video["height"]) == ("h264", 1280, 720)
        assert video["pix_fmt"] == "yuv420p"
        assert video["frames"] == pytest.approx(expected_s * 12, abs=2)
        assert video["duration_s"] == pytest.approx(expected_s, abs=0.2)
        assert successes(svc, d["movie_id"]) == {"story": 1, "images": 1, "video": 1}

    code, story = svc.request("GET", done[2]["artifacts"]["story"])
    assert code == 200 and len(story["scenes"]) == 3 and "clockmaker" in story["prompt"]
    _, page = svc.request("GET", "/api/movies?limit=2")
    assert [m["movie_id"] for m in page["movies"]] == [ids[3], ids[2]] and page["next_cursor"]


def test_idempotency_key(shared_service: Service) -> None:
    svc = shared_service
    headers = {"Content-Type": "application/json", "Idempotency-Key": "order-42"}
    body = b'{"prompt": "A fox learns to sail", "priority": "high"}'
    first = svc.request("POST", "/api/movies", raw=body, headers=headers)
    again = svc.request("POST", "/api/movies", raw=body, headers=headers)
    assert first[0] == again[0] == 202
    assert first[1]["movie_id"] == again[1]["movie_id"]
    other = svc.request("POST", "/api/movies", raw=b'{"prompt": "Another fox"}', headers=headers)
    assert other[0] == 409 and other[1]["error"]["code"] == "conflict"
    assert other[1]["error"]["details"]["movie_id"] == first[1]["movie_id"]
    _, page = svc.request("GET", "/api/movies?limit=100")
    assert [m["movie_id"] for m in page["movies"]].count(first[1]["movie_id"]) == 1
    assert not any(m["prompt"] == "Another fox" for m in page["movies"])
