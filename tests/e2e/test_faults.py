"""A locked database, hung stories and an overrunning job stall no movie but their own."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable
from typing import Any

import pytest

from tests.e2e.conftest import Service, write_faults

pytestmark = pytest.mark.e2e


def until(check: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while not (found := check()):
        assert time.monotonic() < deadline, what
        time.sleep(0.1)
    return found


def test_healthz_says_when_the_database_takes_no_writes_and_work_resumes_after(
    make_service: Callable[..., Service],
) -> None:
    svc = make_service(generators="instant", sqlite_busy_timeout_s=0.3, sweep_interval_s=0.5)
    first = svc.create("before the lock")["movie_id"]
    assert svc.wait_terminal(first)["status"] == "succeeded"

    lock = sqlite3.connect(svc.data_dir / "movies.db", isolation_level=None)
    lock.execute("BEGIN IMMEDIATE")  # another process holds the write lock (a backup tool)
    try:
        code, body = until(
            lambda: (answer := svc.request("GET", "/healthz"))[0] == 503 and answer,
            15,
            "/healthz never said the database takes no writes",
        )
        assert body["status"] == "degraded" and body["error"]["code"] == "unavailable"
        assert not body["store"]["writable"] and "locked" in body["store"]["error"]
        assert any("database" in problem for problem in body["problems"])
        time.sleep(2)  # every delivery thread's poll of the queue meets the lock
    finally:
        lock.execute("ROLLBACK")
        lock.close()

    code, body = until(
        lambda: (answer := svc.request("GET", "/healthz"))[0] == 200 and answer,
        15,
        "/healthz never recovered",
    )
    assert body["status"] == "ok" and body["store"]["writable"] and body["problems"] == []
    after = svc.create("after the lock")["movie_id"]
    assert svc.wait_terminal(after, timeout=30)["status"] == "succeeded"
    code, queues = svc.request("GET", "/api/queues")
    assert code == 200
    delivery = queues["delivery"]
    assert delivery["threads_alive"] == delivery["threads"] == 4
    assert delivery["last_error"] is not None and "locked" in delivery["last_error"]["error"]
    assert delivery["messages"] == {
        "ready": 0,
        "leased": 0,
        "retrying": 0,
        "longest_leased_s": None,
    }


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
