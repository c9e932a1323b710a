"""Trace context: traceparent parsing, the span of the work at hand, and the log fields."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from datetime import timedelta

import pytest

from deepflix import logs, tracing
from deepflix.adapters.gcp.pubsub import PubSubEventBus
from deepflix.adapters.gcp.run_jobs import execution_env
from deepflix.adapters.gcp.tasks import CloudTasksQueue
from deepflix.pipeline.models import Stage
from deepflix.pipeline.ports import job_env

pytestmark = pytest.mark.unit
T = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT = f"00-{T}-00f067aa0ba902b7-01"


def test_a_w3c_traceparent_parses_and_bad_ones_do_not() -> None:
    assert tracing.parse(PARENT) == tracing.Trace(T, "00f067aa0ba902b7", True)
    assert tracing.parse(PARENT).traceparent() == PARENT  # type: ignore[union-attr]
    for bad in (None, "", "garbage", f"01-{T}-00f067aa0ba902b7-01", f"00-{'0' * 32}-1-01"):
        assert tracing.parse(bad) is None, bad
    assert tracing.parse(f"00-{T}-{'0' * 16}-01") is None


def test_googles_own_header_is_read_when_there_is_no_traceparent() -> None:
    got = tracing.from_headers({"X-Cloud-Trace-Context": f"{T}/255;o=1"})
    assert got == tracing.Trace(T, "00000000000000ff", True)
    both = {"X-Cloud-Trace-Context": f"{'a' * 32}/1", "Traceparent": PARENT}
    assert tracing.from_headers(both) == tracing.parse(PARENT)


def test_a_hop_works_in_a_new_span_of_the_callers_trace() -> None:
    assert tracing.current() is None
    with tracing.start("tasks /dispatch", PARENT) as trace:
        assert trace.trace_id == T and trace.span_id != "00f067aa0ba902b7" and trace.sampled
        assert tracing.traceparent() == trace.traceparent()
    assert tracing.current() is None
    with tracing.start("api", None) as fresh:  # no caller's trace: a new one
        assert fresh.trace_id != T and len(fresh.trace_id) == 32


def test_work_for_a_movie_joins_its_trace_and_keeps_its_span_when_already_in_it() -> None:
    movie_trace = f"00-{'c' * 32}-{'d' * 16}-00"
    with tracing.start("sweep", PARENT) as sweep:
        with tracing.use(movie_trace) as inside:
            assert inside is not None and inside.trace_id == "c" * 32
        assert tracing.current() == sweep
        with tracing.use(sweep.child().traceparent()) as same:
            assert same == sweep  # the same trace: stays in this span
        with tracing.use(None) as kept:
            assert kept == sweep


@pytest.fixture
def captured() -> Iterator[io.StringIO]:
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(logs.JsonFormatter("p1"))
    log = logging.getLogger("deepflix.test-tracing")
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    yield out
    log.removeHandler(handler)


def test_log_lines_carry_cloud_loggings_trace_and_span_fields(captured: io.StringIO) -> None:
    log = logging.getLogger("deepflix.test-tracing")
    log.info("outside")
    with tracing.start("api", PARENT) as span:
        log.info("inside", extra={"movie_id": "m1"})
    outside, inside = (json.loads(line) for line in captured.getvalue().splitlines())
    assert logs.TRACE_FIELD not in outside
    assert inside[logs.TRACE_FIELD] == f"projects/p1/traces/{T}"
    assert inside[logs.SPAN_FIELD] == span.span_id
    assert inside[logs.SAMPLED_FIELD] is True and inside["movie_id"] == "m1"


def test_messages_sent_in_a_trace_carry_its_traceparent() -> None:
    queue = CloudTasksQueue(
        project="p", location="l", queue="q", target_base_url="https://t", client=object()
    )
    published: list[dict[str, str]] = []

    class Publisher:
        def publish(self, topic: str, body: bytes, timeout: float, **attrs: str) -> object:
            published.append(attrs)
            return type("Done", (), {"result": lambda self, timeout: "id"})()

    bus = PubSubEventBus(project="p", topic_prefix="d", publisher=Publisher())
    assert "traceparent" not in queue.build_task("dispatch", {}).http_request.headers
    assert "TRACEPARENT" not in job_env(stage=Stage.images, movie_id="m", attempt=1, execution="")
    with tracing.start("api", PARENT) as span:
        task = queue.build_task("deadline", {"movie_id": "m"}, at=None)
        bus.publish("story.requested", {"movie_id": "m"}, {})
        env = execution_env(stage=Stage.images, movie_id="m", attempt=1)
    assert task.http_request.headers["traceparent"] == span.traceparent()
    assert published[0]["traceparent"] == span.traceparent()
    assert env["TRACEPARENT"] == span.traceparent()
    assert timedelta(0) < task.dispatch_deadline


def test_spans_export_through_opentelemetry_when_installed() -> None:
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    from deepflix.adapters.gcp.cloud_trace import span_starter

    exported = InMemorySpanExporter()
    tracing.install(span_starter("p1", exported))
    try:
        with tracing.start("images.job", PARENT) as span:
            assert span.trace_id == T
    finally:
        tracing.install(None)
    (done,) = exported.get_finished_spans()
    assert done.name == "images.job" and f"{done.context.trace_id:032x}" == T
    assert done.parent is not None and f"{done.parent.span_id:016x}" == "00f067aa0ba902b7"
    assert f"{done.context.span_id:016x}" == span.span_id
