"""`GET /metrics` of `deepflix serve`: valid Prometheus text, whose figures follow the movies."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.e2e.conftest import Service, write_faults

pytestmark = pytest.mark.e2e


def scrape(svc: Service) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    code, text = svc.request("GET", "/metrics")
    assert code == 200 and isinstance(text, bytes)
    samples = {}
    for family in text_string_to_metric_families(text.decode()):
        for s in family.samples:
            samples[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return samples


def test_metrics_parse_and_count_runs_failures_retries_and_durations(
    make_service: Callable[..., Service],
) -> None:
    svc = make_service(generators="instant", max_attempts=2)
    write_faults(svc, {"images": {"kind": "retryable", "match": "FLAKY"}})
    ok = svc.create("a quiet harbour", scene_count=2)["movie_id"]
    flaky = svc.create("a FLAKY harbour", scene_count=2)["movie_id"]
    assert svc.wait_terminal(ok)["status"] == "succeeded"
    assert svc.wait_terminal(flaky)["status"] == "failed"
    svc.call("POST", "/api/admission/pause")
    svc.create("one that waits")

    m = scrape(svc)
    for stage in ("story", "images", "video"):
        assert m[("deepflix_queue_running", (("stage", stage),))] == 0
        count = m[("deepflix_stage_duration_seconds_count", (("stage", stage),))]
        inf = m[("deepflix_stage_duration_seconds_bucket", (("le", "+Inf"), ("stage", stage)))]
        assert count == inf and m[("deepflix_stage_duration_seconds_sum", (("stage", stage),))] > 0
    assert m[("deepflix_queue_waiting", (("stage", "story"),))] == 1
    assert m[("deepflix_queue_oldest_waiting_age_seconds", (("stage", "story"),))] > 0
    assert m[("deepflix_admission_paused", ())] == 1
    runs = "deepflix_stage_runs_total"
    assert m[(runs, (("result", "succeeded"), ("stage", "story")))] == 2
    assert m[(runs, (("result", "succeeded"), ("stage", "video")))] == 1
    assert m[(runs, (("result", "failed"), ("stage", "images")))] == 1
    assert m[("deepflix_stage_duration_seconds_count", (("stage", "images"),))] == 1
    assert m[("deepflix_stage_retries_total", (("stage", "images"),))] == 1
    assert m[("deepflix_dead_letters", ())] == 0
