"""Delivery threads outlive a queue database that fails, and lose no message to it."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import pytest

from deepflix.adapters.local.consumer import Consumer
from deepflix.adapters.local.queue import Message, SqliteQueue
from deepflix.pipeline.errors import Unavailable

pytestmark = pytest.mark.integration
DOWN = Unavailable("the embedded database is unavailable: database or disk is full")


def test_a_failing_lease_ends_no_thread_and_delivery_resumes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    queue = SqliteQueue(tmp_path / "q.db")
    got = threading.Event()
    consumer = Consumer(queue, {"q": lambda body: got.set()}, threads=2, idle_s=0.05)
    real_lease, failed = queue.lease, list[int]()

    def lease(queues: set[str], limit: int) -> list[Message]:
        if len(failed) < 6:
            failed.append(1)
            raise DOWN
        return real_lease(queues, limit)

    monkeypatch.setattr(queue, "lease", lease)
    consumer.start()
    try:
        SqliteQueue(tmp_path / "q.db").put("q", {"from": "a job"})  # another process's put
        assert got.wait(15), "the message was never delivered"
        status = consumer.status()
        assert status.threads_alive == status.threads == 2
        assert status.errors >= 6 and status.last_error is not None
        assert status.last_error.queue is None and "full" in status.last_error.error
    finally:
        consumer.stop()


def test_a_redelivery_the_database_refuses_is_kept_until_it_is_recorded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    queue = SqliteQueue(tmp_path / "q.db")
    calls: list[dict[str, Any]] = []
    done = threading.Event()

    def handler(body: dict[str, Any]) -> None:
        calls.append(body)
        if len(calls) == 1:
            raise DOWN  # the handler's own write failed
        done.set()

    # Not stored: the message exists nowhere but in memory until its redelivery is recorded.
    consumer = Consumer(queue, {"q": handler}, threads=1, idle_s=0.05, stored=False)
    real_nack, refused = queue.nack, list[str]()

    def nack(message: Message, error: str) -> None:
        if len(refused) < 3:
            refused.append(error)
            raise DOWN
        real_nack(message, error)

    monkeypatch.setattr(queue, "nack", nack)
    monkeypatch.setattr(queue, "next_eta", lambda names: time.time())  # look at once
    consumer.start()
    try:
        queue.put("q", {"n": 1})
        assert done.wait(15), "the message was lost with its refused redelivery"
        assert calls == [{"n": 1}, {"n": 1}] and len(refused) == 3
        assert consumer.status().threads_alive == 1
    finally:
        consumer.stop()


def test_the_stored_messages_show_a_stuck_or_failing_delivery(tmp_path: Path) -> None:
    queue = SqliteQueue(tmp_path / "q.db", lease_s=60)
    for n in range(3):
        queue.put("q", {"n": n})
    first, second = queue.lease({"q"}, 2)
    queue.nack(second, "it failed")
    stored = queue.stored()
    assert (stored.ready, stored.leased, stored.retrying) == (1, 1, 1)
    assert stored.longest_leased_s is not None and 0 <= stored.longest_leased_s < 5
    queue.ack(first)
