"""OpenTelemetry spans exported to Cloud Trace, started as children of a traceparent."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from deepflix import tracing


def span_starter(project: str, exporter: Any = None) -> tracing.SpanStarter:
    """A span starter for `tracing.install`: spans batched to Cloud Trace in `project`
    (or to `exporter`, the tests' in-memory one). Imported only when spans are exported."""
    from opentelemetry.propagate import set_global_textmap
    from opentelemetry.propagators.cloud_trace_propagator import CloudTraceFormatPropagator
    from opentelemetry.propagators.composite import CompositePropagator
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

    provider = TracerProvider()
    if exporter is None:
        from opentelemetry.exporter.cloud_trace import CloudTraceSpanExporter

        cloud = CloudTraceSpanExporter(project_id=project)  # type: ignore[no-untyped-call]
        provider.add_span_processor(BatchSpanProcessor(cloud))
    else:
        provider.add_span_processor(SimpleSpanProcessor(exporter))
    # Whatever else OpenTelemetry instruments reads both headers Google's front end may set.
    w3c = TraceContextTextMapPropagator()
    set_global_textmap(CompositePropagator([w3c, CloudTraceFormatPropagator()]))
    tracer = provider.get_tracer("deepflix")

    @contextlib.contextmanager
    def start(name: str, parent: tracing.Trace | None) -> Iterator[tracing.Trace]:
        carrier = {tracing.HEADER: parent.traceparent()} if parent else {}
        with tracer.start_as_current_span(name, context=w3c.extract(carrier)) as span:
            ctx = span.get_span_context()
            yield tracing.Trace(
                f"{ctx.trace_id:032x}", f"{ctx.span_id:016x}", bool(ctx.trace_flags.sampled)
            )

    return start
