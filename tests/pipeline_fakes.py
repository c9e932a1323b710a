"""Pipeline transports with outages to switch on, and the pipeline committed the cloud's way."""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from deepflix.adapters.local.store import SqliteMovieStore
from deepflix.pipeline.errors import Unavailable
from deepflix.pipeline.models import Stage
from deepflix.pipeline.ports import EventBus, TaskQueue
from deepflix.pipeline.service import Pipeline
from tests.factories import CONFIG, T0


class Outage:
    """Whether a backing service is down now; while it is, calls to it raise Unavailable."""

    def __init__(self) -> None:
        self.down = False
        self.refused = 0

    def check(self, what: str) -> None:
        if self.down:
            self.refused += 1
            raise Unavailable(f"{what}: down for this test")


class Bus:
    """An EventBus that records what it was given, or passes it on to `inner`."""

    def __init__(self, outage: Outage, inner: EventBus | None = None) -> None:
        self.outage, self.inner = outage, inner
        self.sent: list[tuple[str, dict[str, Any]]] = []

    def publish(self, topic: str, data: Mapping[str, Any], attributes: Mapping[str, str]) -> None:
        self.outage.check("pubsub publish")
        self.sent.append((topic, dict(data)))
        if self.inner is not None:
            self.inner.publish(topic, data, attributes)


class Tasks:
    def __init__(self, outage: Outage, inner: TaskQueue | None = None) -> None:
        self.outage, self.inner = outage, inner
        self.sent: list[tuple[str, dict[str, Any], str | None]] = []

    def enqueue(
        self,
        kind: str,
        payload: Mapping[str, Any],
        *,
        name: str | None = None,
        at: datetime | None = None,
    ) -> bool:
        self.outage.check("cloud tasks enqueue")
        self.sent.append((kind, dict(payload), name))
        if self.inner is not None:
            return self.inner.enqueue(kind, payload, name=name, at=at)
        return True


class Jobs:
    """A JobRunner whose start takes a while, so two deliveries can overlap."""

    def __init__(self) -> None:
        self.started: list[str] = []
        self.cancelled: list[str] = []
        self._lock = threading.Lock()

    def run(self, *, stage: Stage, movie_id: str, attempt: int, timeout_s: float) -> str:
        time.sleep(0.2)  # a RunJob call is not instant
        with self._lock:
            self.started.append(f"exec-{len(self.started) + 1}")
            return self.started[-1]

    def cancel(self, execution: str) -> None:
        self.cancelled.append(execution)

    def execution_name(self, *, stage: Stage, movie_id: str, attempt: int) -> None:
        return None  # named as it starts, as on Cloud Run


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        self.now += timedelta(milliseconds=1)
        return self.now


def cloud_like(tmp_path: Path, bus: Bus, tasks: Tasks, jobs: Jobs | None = None) -> Pipeline:
    """The pipeline as the Google Cloud adapters run it: each save commits on its own, and its
    messages are sent after it (each_step_alone), here over the embedded store."""
    return Pipeline(
        store=SqliteMovieStore(tmp_path / "m.db"),
        tasks=tasks,
        events=bus,
        jobs=jobs or Jobs(),
        config=CONFIG,
        clock=Clock(),
    )


class Recorder:
    """Task queue, event bus and job runner in one, recording what they were given."""

    def __init__(self) -> None:
        self.tasks: list[tuple[str, dict[str, Any], str | None, datetime | None]] = []
        self.events: list[tuple[str, dict[str, Any]]] = []
        self.cancelled: list[str] = []
        self.started = 0

    def enqueue(
        self,
        kind: str,
        payload: Mapping[str, Any],
        *,
        name: str | None = None,
        at: datetime | None = None,
    ) -> bool:
        self.tasks.append((kind, dict(payload), name, at))
        return True

    def publish(self, topic: str, data: Mapping[str, Any], attributes: Mapping[str, str]) -> None:
        self.events.append((topic, dict(data)))

    def run(self, *, stage: Stage, movie_id: str, attempt: int, timeout_s: float) -> str:
        self.started += 1
        return f"exec-{self.started}"

    def cancel(self, execution: str) -> None:
        self.cancelled.append(execution)

    def execution_name(self, *, stage: Stage, movie_id: str, attempt: int) -> None:
        return None
