"""The sweep writes the gauge the "oldest waiting movie" alert reads: a `queue age` log line a
stage, whose field the Terraform log-based metric extracts and the alert policy watches."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from deepflix import logs
from deepflix.handlers.task_requests import AGE_FIELD, handle_task
from deepflix.pipeline.models import Stage
from tests.factories import request
from tests.pipeline_fakes import Bus, Clock, Outage, Tasks, cloud_like
from tests.unit.test_infra import _resources

pytestmark = pytest.mark.integration


@pytest.fixture
def lines() -> Iterator[io.StringIO]:
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(logs.JsonFormatter("p1"))
    log = logging.getLogger("deepflix.functions")
    log.addHandler(handler)
    old = log.level
    log.setLevel(logging.INFO)
    yield out
    log.removeHandler(handler)
    log.setLevel(old)


def _gauges(out: io.StringIO) -> dict[str, float]:
    entries = [json.loads(line) for line in out.getvalue().splitlines()]
    return {e["stage"]: e[AGE_FIELD] for e in entries if e["message"] == "queue age"}


def test_each_sweep_logs_how_long_each_stages_oldest_movie_has_waited(
    tmp_path: Path, lines: io.StringIO
) -> None:
    pipeline = cloud_like(tmp_path, Bus(Outage()), Tasks(Outage()))
    pipeline.pause_admission()  # so the sweep's dispatch leaves them waiting
    pipeline.create(request(), owner="u", idempotency_key=None)
    pipeline.create(request(priority="high"), owner="u", idempotency_key=None)
    assert isinstance(pipeline.clock, Clock)
    pipeline.clock.now += timedelta(seconds=90)
    answer = handle_task("/sweep", {}, pipeline=pipeline, prune=lambda: 0)
    assert answer.status == 200
    gauges = _gauges(lines)
    assert set(gauges) == {"story", "images", "video"}
    assert 90 <= gauges["story"] < 91  # the first created, 90 s and some clock ticks ago
    assert gauges["images"] == gauges["video"] == 0
    pipeline.resume_admission()
    assert pipeline.oldest_waiting_s()[Stage.story] == 0  # both dispatched


def test_the_log_metric_and_alert_read_what_the_sweep_writes() -> None:
    metric = _resources("google_logging_metric")["oldest_waiting_age"]
    assert 'jsonPayload.message=\\"queue age\\"' in metric["filter"]
    assert f"jsonPayload.{AGE_FIELD}" in metric["filter"]
    assert metric["value_extractor"] == f"EXTRACT(jsonPayload.{AGE_FIELD})"
    assert metric["label_extractors"]["stage"] == "EXTRACT(jsonPayload.stage)"
    assert metric["name"].endswith(f"/{AGE_FIELD}")
    alert = _resources("google_monitoring_alert_policy")["oldest_waiting_movie"]
    (condition,) = alert["conditions"]
    (threshold,) = condition["condition_threshold"]
    assert (
        "logging.googleapis.com/user/${google_logging_metric.oldest_waiting_age.name}"
        in (threshold["filter"])
    )
    assert threshold["threshold_value"] == "${var.waiting_slo_s}"
