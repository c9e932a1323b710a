"""The W3C trace context (traceparent) of the work at hand, for log lines and messages sent."""

from __future__ import annotations

import contextlib
import re
import secrets
from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager
from contextvars import ContextVar
from dataclasses import dataclass

HEADER = "traceparent"  # HTTP header, Pub/Sub attribute and Cloud Tasks header
ENV = "TRACEPARENT"  # a job's environment
GOOGLE_HEADER = "x-cloud-trace-context"  # what Google's front end sets when no traceparent
_W3C = re.compile(r"^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$")
_GOOGLE = re.compile(r"^([0-9a-f]{32})/(\d{1,20})(?:;o=([01]))?$")


@dataclass(frozen=True)
class Trace:
    trace_id: str  # 32 hex digits
    span_id: str  # 16 hex digits: the span this process works in
    sampled: bool = False

    def traceparent(self) -> str:
        return f"00-{self.trace_id}-{self.span_id}-{'01' if self.sampled else '00'}"

    def child(self) -> Trace:
        return Trace(self.trace_id, new_span_id(), self.sampled)


def new_span_id() -> str:
    return secrets.token_hex(8)


def new_trace() -> Trace:
    return Trace(secrets.token_hex(16), new_span_id())


def parse(value: str | None) -> Trace | None:
    """A W3C traceparent (version 00), or None for a missing or malformed one."""
    m = _W3C.match((value or "").strip().lower())
    if m is None or set(m[1]) == {"0"} or set(m[2]) == {"0"}:
        return None
    return Trace(m[1], m[2], bool(int(m[3], 16) & 1))


def parse_google(value: str | None) -> Trace | None:
    """Google's X-Cloud-Trace-Context `TRACE_ID/SPAN_ID;o=1` (a decimal span id)."""
    m = _GOOGLE.match((value or "").strip().lower())
    if m is None or set(m[1]) == {"0"} or int(m[2]) == 0 or int(m[2]) >= 2**64:
        return None
    return Trace(m[1], f"{int(m[2]):016x}", m[3] == "1")


def from_headers(headers: Mapping[str, str]) -> Trace | None:
    """The caller's trace: its traceparent, else Google's own header (either header case)."""
    lowered = {k.lower(): v for k, v in headers.items()}
    return parse(lowered.get(HEADER)) or parse_google(lowered.get(GOOGLE_HEADER))


_current: ContextVar[Trace | None] = ContextVar("deepflix_trace", default=None)
# Installed when spans are exported (adapters/gcp/cloud_trace.py): starts a span as the
# child of `parent` (a new trace when None) and yields its context.
SpanStarter = Callable[[str, Trace | None], AbstractContextManager[Trace]]
_span_starter: SpanStarter | None = None


def install(starter: SpanStarter | None) -> None:
    global _span_starter
    _span_starter = starter


def current() -> Trace | None:
    return _current.get()


def traceparent() -> str | None:
    """What goes out with a message sent now: this work's trace and span, if any."""
    trace = _current.get()
    return trace.traceparent() if trace else None


@contextlib.contextmanager
def use(trace: Trace | str | None) -> Iterator[Trace | None]:
    """Work on behalf of `trace` (a movie's, say) for the block. The work at hand stays in
    its own span when it is already in that trace; no trace leaves the current one."""
    given = parse(trace) if isinstance(trace, str) else trace
    now = _current.get()
    if given is None or (now is not None and now.trace_id == given.trace_id):
        yield now
        return
    token = _current.set(given)
    try:
        yield given
    finally:
        _current.reset(token)


@contextlib.contextmanager
def start(name: str, parent: Trace | str | None) -> Iterator[Trace]:
    """One hop's work (a request, a task, a message, a job): a new span under the caller's,
    or a new trace when the caller sent none."""
    caller = parse(parent) if isinstance(parent, str) else parent
    with contextlib.ExitStack() as stack:
        if _span_starter is not None:
            trace = stack.enter_context(_span_starter(name, caller))
        else:
            trace = caller.child() if caller else new_trace()
        token = _current.set(trace)
        stack.callback(_current.reset, token)
        yield trace
