"""Structured JSON logs on stderr, with the fields Cloud Logging reads (severity, trace); at
a terminal, short lines for people instead."""

from __future__ import annotations

import json
import logging
import os
import sys
from datetime import UTC, datetime
from typing import Any

from deepflix import tracing

TRACE_FIELD = "logging.googleapis.com/trace"
SPAN_FIELD = "logging.googleapis.com/spanId"
SAMPLED_FIELD = "logging.googleapis.com/trace_sampled"
_FIELDS = ("movie_id", "stage", "attempt", "execution", "trace", "oldest_waiting_age_s")


class JsonFormatter(logging.Formatter):
    """One JSON object a line; Cloud Logging reads `severity` and the trace fields, so a
    movie's lines from every function and job group under its trace."""

    def __init__(self, project: str | None = None) -> None:
        super().__init__()
        self.project = project or os.environ.get("GOOGLE_CLOUD_PROJECT") or "-"

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "severity": record.levelname,
            "message": record.getMessage(),
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "logger": record.name,
        }
        for key in _FIELDS:
            value = getattr(record, key, None)
            if value is not None:
                entry[key] = value
        trace = tracing.current()
        if trace is not None:
            entry[TRACE_FIELD] = f"projects/{self.project}/traces/{trace.trace_id}"
            entry[SPAN_FIELD] = trace.span_id
            entry[SAMPLED_FIELD] = trace.sampled
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


class HumanFormatter(logging.Formatter):
    """`12:00:01 warning  <message> (movie 1a2b3c4d, video, attempt 2)`: the time, the
    severity, the message and its movie, without a traceback (JSON lines keep those)."""

    def format(self, record: logging.LogRecord) -> str:
        at = datetime.fromtimestamp(record.created).strftime("%H:%M:%S")
        about = []
        movie = getattr(record, "movie_id", None)
        if movie:
            about.append(f"movie {str(movie)[:8]}")
        for key in ("stage", "execution"):
            value = getattr(record, key, None)
            if value:
                about.append(str(value))
        attempt = getattr(record, "attempt", None)
        if attempt:
            about.append(f"attempt {attempt}")
        tail = f" ({', '.join(about)})" if about else ""
        message = record.getMessage().splitlines()[0] if record.getMessage() else ""
        return f"{at} {record.levelname.lower():<8} {message}{tail}"


def for_people(log_format: str) -> bool:
    """Whether logs are for a person: `text`, or `auto` where stdout is a terminal."""
    return log_format == "text" or (log_format == "auto" and sys.stdout.isatty())


def setup(level: str = "INFO", project: str | None = None, *, human: bool = False) -> None:
    """JSON lines on stderr; `human`: short lines for a person at a terminal, warnings and
    worse only unless `level` is DEBUG (what happens to movies is told by the narrator)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(HumanFormatter() if human else JsonFormatter(project))
    root = logging.getLogger("deepflix")
    root.handlers[:] = [handler]
    root.setLevel(level if not human or level in ("DEBUG", "ERROR") else "WARNING")
    root.propagate = False


def get(name: str) -> logging.Logger:
    return logging.getLogger(f"deepflix.{name}")
