"""Faults that once stalled the whole service stay with the movie they hit: stories that
hang past their deadline, a job that overruns."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from tests.e2e.conftest import Service, write_faults

pytestmark = pytest.mark.e2e


@pytest.mark.parametrize("stage_processes", [0, 2])
def test_hung_stories_hold_up_no_other_movie(
    make_service: Callable[..., Service], stage_processes: int
) -> None:
    svc = make_service(
        generators="instant",
        story_timeout_s=3,
        retry_base_delay_s=0.5,
        retry_max_delay_s=1,
        workers=4,
        stage_processes=stage_processes,
    )
    write_faults(svc, {"story": {"kind": "delay", "match": "STUCK", "seconds": 40}})
    stuck = [svc.create(f"STUCK story {i}")["movie_id"] for i in range(4)]  # every worker
    time.sleep(1)
    normal = [svc.create(f"an ordinary movie {i}")["movie_id"] for i in range(3)]
    for movie_id in normal:
        done = svc.wait_terminal(movie_id, timeout=60)
        assert done["status"] == "succeeded", done["stages"]["story"]
        assert done["stages"]["story"]["attempts"] == 1
    for movie_id in stuck:
        done = svc.wait_terminal(movie_id, timeout=60)
        story = done["stages"]["story"]
        assert done["status"] == "failed" and story["attempts"] == 3
        assert story["last_error"]["code"] == "timeout"


def test_a_job_stopped_at_its_timeout_says_it_timed_out(
    make_service: Callable[..., Service],
) -> None:
    # No sweep within the test: only the job runner's own stop can time the attempt out.
    svc = make_service(
        generators="instant", images_timeout_s=2, max_attempts=1, sweep_interval_s=60
    )
    write_faults(svc, {"images": {"kind": "delay", "match": "SLOW", "seconds": 60}})
    movie_id = svc.create("a SLOW render")["movie_id"]
    done = svc.wait_terminal(movie_id, timeout=30)
    assert done["status"] == "failed"
    assert done["error"]["code"] == "timeout", done["error"]
    assert "did not finish within 2s" in done["error"]["message"]
