"""Hosted model usage as stage work meets it: calls report to the sink of the stage they run in."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from deepflix.pipeline.models import ModelUsage

UsageSink = Callable[[ModelUsage], None]

# A context variable, not an argument: one model client serves several movies' stages at
# once (threads), and the calls between a stage and its model pass through generator
# interfaces that have no reason to know about cost.
_SINK: ContextVar[UsageSink | None] = ContextVar("deepflix_usage_sink", default=None)


def record(usage: ModelUsage) -> None:
    """Report one call's usage to the stage running it; outside a stage, nowhere."""
    sink = _SINK.get()
    if sink is not None:
        sink(usage)


@contextmanager
def collecting(sink: UsageSink) -> Iterator[None]:
    """Within this block (and contexts copied from it), usage goes to `sink`."""
    token = _SINK.set(sink)
    try:
        yield
    finally:
        _SINK.reset(token)
