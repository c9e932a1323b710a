"""Structured JSON logs on stderr, with the fields Cloud Logging reads (severity, trace)."""

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


def setup(level: str = "INFO", project: str | None = None) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter(project))
    root = logging.getLogger("deepflix")
    root.handlers[:] = [handler]
    root.setLevel(level)
    root.propagate = False


def get(name: str) -> logging.Logger:
    return logging.getLogger(f"deepflix.{name}")
