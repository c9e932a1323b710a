"""kill -9 in the middle of a batch, restart: every accepted movie finishes, each stage once."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.e2e.conftest import Service
from tests.e2e.helpers import download, job_pids, probe_video, successes

pytestmark = pytest.mark.e2e


def test_kill_9_mid_batch_then_restart_completes_every_movie_once(
    make_service: Callable[..., Service], tmp_path: Path
) -> None:
    svc: Service = make_service(images_concurrency=2, video_concurrency=1)
    ids = [
        svc.create(f"Voyage {i}: a paper boat crosses the city", scene_count=2)["movie_id"]
        for i in range(6)
    ]

    def progress() -> tuple[int, int]:
        statuses = [svc.status(i) for i in ids]
        done = sum(s["status"] == "succeeded" for s in statuses)
        gpu = sum(
            s["stages"][st]["status"] == "running" for s in statuses for st in ("images", "video")
        )
        return done, gpu

    deadline = time.monotonic() + 120
    while True:
        done, gpu = progress()
        if done >= 1 and gpu >= 1:
            break
        assert done < len(ids) and time.monotonic() < deadline, "no moment mid-batch was seen"
        time.sleep(0.02)

    svc.kill()  # SIGKILL: no clean-up of any kind
    deadline = time.monotonic() + 10
    while any(job_pids(i) for i in ids):  # jobs die with the service
        assert time.monotonic() < deadline, "job processes outlived the service"
        time.sleep(0.05)

    restarted = Service(svc.data_dir, svc.env)
    try:
        restarted.start()
        final = [restarted.wait_terminal(i, timeout=240) for i in ids]
        assert [f["status"] for f in final] == ["succeeded"] * len(ids)
        interrupted = [
            f["movie_id"]
            for f in final
            for st in f["stages"].values()
            if (st["last_error"] or {}).get("code") == "interrupted"
        ]
        assert interrupted, "the kill hit no running attempt"
        for f in final:
            assert successes(restarted, f["movie_id"]) == {"story": 1, "images": 1, "video": 1}
        video = probe_video(
            download(restarted, final[-1]["artifacts"]["video"], tmp_path / "v.mp4")
        )
        assert video["frames"] > 0 and video["codec"] == "h264"
    finally:
        restarted.kill()
