"""Faults that once stalled the whole service stay with the movie they hit."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.e2e.conftest import Service, write_faults

pytestmark = pytest.mark.e2e


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
