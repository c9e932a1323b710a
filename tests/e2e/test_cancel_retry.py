"""Cancel queued and running movies; injected failures are retried, fail, and can be resumed."""

from __future__ import annotations

import time

import pytest

from tests.e2e.conftest import Service, write_faults
from tests.e2e.helpers import job_pids, successes

pytestmark = pytest.mark.e2e


def test_cancel_a_queued_movie(make_service) -> None:  # type: ignore[no-untyped-def]
    svc: Service = make_service(generators="instant")
    svc.request("POST", "/api/admission/pause")
    movie_id = svc.create("A quiet harbour at dawn")["movie_id"]
    code, body = svc.request("POST", f"/api/movies/{movie_id}/cancel")
    assert code == 200 and body["status"] == "cancelled"
    assert body["stages"]["story"]["status"] == "cancelled"
    code, again = svc.request("POST", f"/api/movies/{movie_id}/cancel")
    assert code == 409 and again["error"]["details"]["status"] == "cancelled"
    svc.request("POST", "/api/admission/resume")
    other = svc.create("A loud harbour at noon")["movie_id"]
    assert svc.wait_terminal(other)["status"] == "succeeded"
    final = svc.status(movie_id)
    assert final["status"] == "cancelled" and final["stages"]["story"]["attempts"] == 0


def test_cancel_a_running_movie_stops_its_job(make_service) -> None:  # type: ignore[no-untyped-def]
    svc: Service = make_service(generators="instant", images_concurrency=1)
    write_faults(svc, {"images": {"kind": "delay", "seconds": 120, "match": "SLOW"}})
    movie_id = svc.create("A SLOW voyage across glass mountains")["movie_id"]
    svc.wait_until(movie_id, lambda s: s["stages"]["images"]["status"] == "running")
    deadline = time.monotonic() + 30
    while not job_pids(movie_id):
        assert time.monotonic() < deadline, "the images job never started"
        time.sleep(0.05)

    code, body = svc.request("POST", f"/api/movies/{movie_id}/cancel")
    assert code == 200 and body["status"] == "cancelled"
    assert body["stages"]["images"]["status"] == "cancelled"
    deadline = time.monotonic() + 15
    while job_pids(movie_id):
        assert time.monotonic() < deadline, "the cancelled job is still running"
        time.sleep(0.05)
    # The slot is free again: the next movie gets the single images slot.
    nxt = svc.create("A brisk walk")["movie_id"]
    assert svc.wait_terminal(nxt)["status"] == "succeeded"
    assert svc.status(movie_id)["status"] == "cancelled"


def test_injected_failure_is_retried_then_fails_then_retry_completes(make_service) -> None:  # type: ignore[no-untyped-def]
    svc: Service = make_service(max_attempts=3)
    write_faults(svc, {"images": {"kind": "retryable", "match": "FLAKY"}})
    movie_id = svc.create("A FLAKY robot paints the sea", scene_count=2)["movie_id"]
    failed = svc.wait_terminal(movie_id)
    assert failed["status"] == "failed"
    images = failed["stages"]["images"]
    assert images["status"] == "failed" and images["attempts"] == 3
    assert images["last_error"]["code"] == "injected_fault"
    assert failed["error"]["code"] == "injected_fault" and failed["error"]["attempt"] == 3
    story_done = failed["stages"]["story"]["finished_at"]
    code, _ = svc.request("POST", f"/api/movies/{movie_id}/retry")
    assert code == 202  # the fault is still there: it fails again, from images
    assert svc.wait_terminal(movie_id)["stages"]["images"]["attempts"] == 3

    write_faults(svc, {})
    code, body = svc.request("POST", f"/api/movies/{movie_id}/retry")
    assert code == 202 and body["status"] == "images"
    done = svc.wait_terminal(movie_id)
    assert done["status"] == "succeeded" and done["artifacts"]["video"]
    assert done["stages"]["story"]["attempts"] == 1
    assert done["stages"]["story"]["finished_at"] == story_done  # not redone
    assert successes(svc, movie_id) == {"story": 1, "images": 1, "video": 1}
    code, body = svc.request("POST", f"/api/movies/{movie_id}/retry")
    assert code == 409 and body["error"]["code"] == "conflict"


def test_permanent_failure_is_not_retried(make_service) -> None:  # type: ignore[no-untyped-def]
    svc: Service = make_service(generators="instant")
    write_faults(svc, {"story": {"kind": "permanent"}})
    movie_id = svc.create("Anything at all")["movie_id"]
    failed = svc.wait_terminal(movie_id)
    assert failed["status"] == "failed" and failed["stages"]["story"]["attempts"] == 1
    assert failed["error"]["retryable"] is False


def test_a_stage_past_its_timeout_is_timed_out_and_retried(make_service) -> None:  # type: ignore[no-untyped-def]
    # The story runs in the service itself, so only the sweep can time it out (a job
    # stage's own process is also stopped by its runner at the timeout).
    svc: Service = make_service(
        generators="instant", story_timeout_s=1, sweep_interval_s=0.2, max_attempts=2
    )
    write_faults(svc, {"story": {"kind": "delay", "seconds": 4, "match": "STUCK"}})
    movie_id = svc.create("A STUCK elevator between floors", scene_count=2)["movie_id"]
    final = svc.wait_terminal(movie_id, timeout=60)
    story = final["stages"]["story"]
    assert final["status"] == "failed" and story["attempts"] == 2
    assert story["last_error"]["code"] == "timeout"
    time.sleep(4)  # the stuck attempts now finish: their late success must change nothing
    assert svc.status(movie_id)["status"] == "failed"
    other = svc.create("A brisk walk", scene_count=2)["movie_id"]
    assert svc.wait_terminal(other)["status"] == "succeeded"
