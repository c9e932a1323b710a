"""The embedded durable queue: names, delays, leases, redelivery, dead letters, push delivery."""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from deepflix.adapters.local.consumer import Consumer
from deepflix.adapters.local.queue import SqliteQueue

pytestmark = pytest.mark.integration


def messages_stored(queue: SqliteQueue) -> dict[str, int]:
    """Messages stored per queue (acknowledged ones are deleted)."""
    rows = queue.db.conn().execute("SELECT queue, COUNT(*) FROM messages GROUP BY queue")
    return {q: n for q, n in rows}


@pytest.fixture
def queue(tmp_path: Path) -> SqliteQueue:
    return SqliteQueue(tmp_path / "q.db", lease_s=30, max_deliveries=2)


def test_named_messages_are_accepted_once(queue: SqliteQueue) -> None:
    assert queue.put("q", {"n": 1}, name="same")
    assert not queue.put("q", {"n": 2}, name="same")
    assert [m.body for m in queue.lease({"q"}, 10)] == [{"n": 1}]


def test_delayed_messages_wait_for_their_time(queue: SqliteQueue) -> None:
    queue.put("q", {"n": 1}, eta=time.time() + 60)
    assert queue.lease({"q"}, 10) == []
    eta = queue.next_eta({"q"})
    assert eta is not None and eta > time.time() + 50


def test_leased_messages_are_hidden_until_released(queue: SqliteQueue, tmp_path: Path) -> None:
    queue.put("q", {"n": 1})
    (m,) = queue.lease({"q"}, 10)
    assert queue.lease({"q"}, 10) == []
    # A restart: the previous process's leases are void and nothing is lost.
    again = SqliteQueue(tmp_path / "q.db")
    assert again.release_leases() == 1
    (m2,) = again.lease({"q"}, 10)
    assert m2.id == m.id and m2.deliveries == 2


def test_nack_redelivers_then_dead_letters(queue: SqliteQueue) -> None:
    queue.put("q", {"n": 1})
    (m,) = queue.lease({"q"}, 1)
    queue.nack(m, "first")
    assert queue.lease({"q"}, 1) == []  # backing off
    queue.db.conn().execute("UPDATE messages SET eta = 0")
    (m,) = queue.lease({"q"}, 1)
    queue.nack(m, "second")
    assert messages_stored(queue) == {}
    (dead,) = queue.dead_letters()
    assert dead["error"] == "second" and dead["deliveries"] == 2 and dead["body"] == {"n": 1}


def test_consumer_delivers_at_once_and_redelivers_failures(queue: SqliteQueue) -> None:
    seen: list[dict[str, Any]] = []
    done = threading.Event()
    failures = {"left": 1}

    def handler(body: dict[str, Any]) -> None:
        if body["n"] == 2 and failures["left"]:
            failures["left"] -= 1
            raise RuntimeError("flaky")
        seen.append(body)
        if len(seen) == 2:
            done.set()

    consumer = Consumer(queue, {"q": handler}, threads=2, idle_s=30)
    consumer.start()
    try:
        started = time.monotonic()
        queue.put("q", {"n": 1})
        deadline = time.monotonic() + 5
        while not seen and time.monotonic() < deadline:
            time.sleep(0.001)
        # Delivered on the put's wake-up, far sooner than the 30 s idle poll.
        assert seen and time.monotonic() - started < 5
        queue.put("q", {"n": 2})
        assert done.wait(10)
        assert sorted(b["n"] for b in seen) == [1, 2]
        deadline = time.monotonic() + 5  # the ack follows the handler's return
        while messages_stored(queue) and time.monotonic() < deadline:
            time.sleep(0.005)
        assert messages_stored(queue) == {}
    finally:
        consumer.stop()


def test_a_locked_database_is_reported_as_unavailable(tmp_path: Path) -> None:
    from deepflix.pipeline.errors import Unavailable

    queue = SqliteQueue(tmp_path / "q.db")
    queue.db.busy_timeout_ms = 10  # read when the writer thread opens its connection
    other = sqlite3.connect(tmp_path / "q.db", isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    try:
        with pytest.raises(Unavailable):
            queue.put("q", {"n": 1})
    finally:
        other.execute("ROLLBACK")
    assert queue.put("q", {"n": 1})


@pytest.mark.parametrize("stored", [True, False])
def test_puts_for_a_consumer_here_are_stored_only_when_asked_or_when_they_fail(
    queue: SqliteQueue, stored: bool
) -> None:
    failures: list[int] = []

    def handler(body: dict[str, Any]) -> None:
        failures.append(body["n"])
        raise RuntimeError("always")

    consumer = Consumer(queue, {"q": handler}, threads=1, idle_s=0.05, stored=stored)
    assert queue.put("q", {"n": 1})
    assert queue.put("q", {"n": 2}, name="once")
    assert not queue.put("q", {"n": 3}, name="once")  # names hold either way
    assert messages_stored(queue) == ({"q": 2} if stored else {})
    handed = [queue.take_ready(), queue.take_ready()]
    assert [m.body["n"] for m in handed if m] == [1, 2] and queue.take_ready() is None
    for m in handed:
        assert m is not None
        queue.ack(m)
    assert queue.put("q", {"n": 4})
    # A failing delivery is stored then, redelivered with backoff, then dead-lettered.
    consumer.start()
    try:
        deadline = time.monotonic() + 10
        while not queue.dead_letters() and time.monotonic() < deadline:
            time.sleep(0.02)
        (dead,) = queue.dead_letters()
        assert dead["body"] == {"n": 4} and dead["deliveries"] == 2 and failures == [4, 4]
        assert messages_stored(queue) == {}
    finally:
        consumer.stop()


def test_a_delayed_put_is_delivered_when_due_not_at_the_idle_poll(queue: SqliteQueue) -> None:
    seen: list[float] = []
    consumer = Consumer(queue, {"q": lambda b: seen.append(time.time())}, threads=2, idle_s=30)
    consumer.start()
    try:
        time.sleep(0.2)  # both threads idle, having read that nothing is due
        due = time.time() + 0.5
        queue.put("q", {"n": 1}, eta=due)
        deadline = time.monotonic() + 5
        while not seen and time.monotonic() < deadline:
            time.sleep(0.01)
        assert seen and due <= seen[0] < due + 2
    finally:
        consumer.stop()
