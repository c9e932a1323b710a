"""TaskQueue and EventBus ports on the embedded SQLite queue."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from deepflix.adapters.local.queue import SqliteQueue


def task_queue_name(kind: str) -> str:
    return f"task:{kind}"


def topic_queue_name(topic: str) -> str:
    return f"topic:{topic}"


class LocalTaskQueue:
    """Tasks on the embedded queue.

    With swept_deadlines=True deadline tasks (`deadlines`, of a window; `deadline`, of one
    attempt, as named before ADR 0030) are not stored: a running stage's deadline is
    an indexed column of its movie, and the runtime's sweep times out every overdue stage
    from it (within one sweep interval, durably, after a restart too). A durable task per
    claim as well would cost two inserts now and a delivery later for every stage of every
    movie, to say what the sweep already says (ADR 0007). Nor are sweep tasks (asked for
    after a failed send): the runtime sweeps on its own schedule.
    """

    def __init__(self, queue: SqliteQueue, *, swept_deadlines: bool = False) -> None:
        self.queue = queue
        self.swept_deadlines = swept_deadlines

    def enqueue(
        self,
        kind: str,
        payload: Mapping[str, Any],
        *,
        name: str | None = None,
        at: datetime | None = None,
    ) -> bool:
        if kind in ("deadlines", "deadline", "sweep") and self.swept_deadlines:
            return True
        eta = at.timestamp() if at is not None else 0.0
        return self.queue.put(task_queue_name(kind), payload, name=name, eta=eta)


class LocalEventBus:
    """One subscription per topic, like a Pub/Sub push subscription to one stage function."""

    def __init__(self, queue: SqliteQueue) -> None:
        self.queue = queue

    def publish(self, topic: str, data: Mapping[str, Any], attributes: Mapping[str, str]) -> None:
        self.queue.put(
            topic_queue_name(topic), {"data": dict(data), "attributes": dict(attributes)}
        )
