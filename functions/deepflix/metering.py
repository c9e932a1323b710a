"""Per-process counts of billable cloud operations, flushed to a folder to price a run."""

from __future__ import annotations

import json
import os
import sys
import threading
from collections import Counter
from pathlib import Path


class Meter:
    """Thread-safe counters (`firestore.reads`, `pubsub.publishes`, `invocations.api`, ...).

    Counting is always on and costs a lock and an add; flushing writes `<pid>.json` into a
    folder so the counts of every function and job process of a run can be summed.
    """

    def __init__(self, *, by_caller: bool = False) -> None:
        self._counts: Counter[str] = Counter()
        self._lock = threading.Lock()
        self._flushing = threading.Lock()
        # Also count each operation under the pipeline code that asked for it
        # (`firestore.reads@pipeline.service.create`): where a run's reads and writes go.
        self.by_caller = by_caller

    def add(self, name: str, n: int = 1) -> None:
        caller = _caller() if self.by_caller else None
        with self._lock:
            self._counts[name] += n
            if caller:
                self._counts[f"{name}@{caller}"] += n

    def snapshot(self) -> dict[str, int]:
        with self._lock:
            return dict(self._counts)

    def flush(self, directory: Path | None) -> None:
        if directory is None:
            return
        # Requests of one process flush concurrently: one at a time, each through a temp file
        # of its own, so a reader of the folder never sees half a file and no flush fails.
        with self._flushing:
            directory.mkdir(parents=True, exist_ok=True)
            target = directory / f"{os.getpid()}.json"
            tmp = directory / f"{os.getpid()}-{threading.get_ident()}.tmp"
            tmp.write_text(json.dumps(self.snapshot(), sort_keys=True))
            os.replace(tmp, target)


def _caller() -> str | None:
    """The innermost frame outside the adapters that led to an operation."""
    frame = sys._getframe(2)
    while frame is not None:
        module = frame.f_globals.get("__name__", "")
        if module.startswith("deepflix.") and not module.startswith(
            ("deepflix.adapters", "deepflix.metering")
        ):
            return f"{module.removeprefix('deepflix.')}.{frame.f_code.co_name}"
        frame = frame.f_back  # type: ignore[assignment]
    return None


def totals(directory: Path) -> dict[str, int]:
    """The sum of every process's last flush in `directory`."""
    total: Counter[str] = Counter()
    for path in sorted(directory.glob("*.json")):
        total.update(json.loads(path.read_text()))
    return dict(total)


# One per process, like the logging module's registry: it holds counts, never clients.
METER = Meter(by_caller=os.environ.get("DEEPFLIX_METER_CALLERS") == "1")
