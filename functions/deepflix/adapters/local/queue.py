"""A durable at-least-once message queue in SQLite: delays, leases, redelivery, dead letters."""

from __future__ import annotations

import itertools
import json
import sqlite3
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from deepflix.adapters.local.db import Database

SCHEMA = """
CREATE TABLE IF NOT EXISTS messages (
    id INTEGER PRIMARY KEY,
    queue TEXT NOT NULL,
    name TEXT,
    body TEXT NOT NULL,
    eta REAL NOT NULL,
    lease_until REAL,
    deliveries INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS messages_ready ON messages (eta);
CREATE TABLE IF NOT EXISTS names (
    queue TEXT NOT NULL, name TEXT NOT NULL, expires REAL NOT NULL, PRIMARY KEY (queue, name)
);
CREATE TABLE IF NOT EXISTS dead_letters (
    id INTEGER PRIMARY KEY, queue TEXT NOT NULL, body TEXT NOT NULL, error TEXT NOT NULL,
    deliveries INTEGER NOT NULL, at REAL NOT NULL
);
"""
# Like Cloud Tasks, a task name stays taken for a while after the task ran.
NAME_TTL_S = 3600.0


@dataclass(frozen=True)
class Message:
    id: int
    queue: str
    body: dict[str, Any]
    deliveries: int


@dataclass(frozen=True)
class StoredMessages:
    """The messages in the database: a delivery that is stuck shows here."""

    ready: int  # due and not leased
    leased: int  # being delivered (or leased by a delivery that died, until the lease ends)
    retrying: int  # delivered before and failed: waiting for their redelivery
    longest_leased_s: float | None


class SqliteQueue:
    """A durable at-least-once queue on the embedded database: owns the messages (named,
    delayed, leased, redelivered with backoff), the taken names and the dead letters.

    Sharing the movie store's Database puts a state change and the messages it sends in
    one transaction. Puts for a consumer in this process are handed to it in memory once
    their write commits (deliver_here); everything else is found by leasing.
    """

    def __init__(
        self, where: Path | Database, *, lease_s: float = 600.0, max_deliveries: int = 5
    ) -> None:
        self.db = where if isinstance(where, Database) else Database(where)
        self.db.conn().executescript(SCHEMA)
        self.lease_s = lease_s
        self.max_deliveries = max_deliveries
        self._listeners: list[Callable[[], None]] = []
        # Queues whose consumer lives in this process: their due puts go straight to
        # `_ready` (stored already leased, or not stored at all: see deliver_here), so
        # delivering them costs no lease transaction.
        self._here: frozenset[str] = frozenset()
        self._ready: deque[Message] = deque()
        self._stored_here = True
        # Bumped by every put of a delayed message and every nack in this process: until it
        # moves, a consumer's last look at the earliest due time still holds.
        self.delays = 0
        self._unstored_ids = itertools.count(-1, -1)  # ids of messages with no row

    def on_put(self, listener: Callable[[], None]) -> None:
        """Called after every put in this process: consumers wake at once instead of polling."""
        self._listeners.append(listener)

    def deliver_here(self, queues: Iterable[str], *, stored: bool = True) -> None:
        """Hand due puts to this process's consumer directly; only one consumer may ask.

        With stored=False such a put is not written at all unless its delivery fails: for a
        consumer whose process rebuilds what a crash loses from its own records, as the
        embedded runtime does from its movies (ADR 0007). Delayed puts, and puts from other
        processes, are always stored.
        """
        if self._here:
            raise ValueError("another consumer in this process already takes this queue's puts")
        self._here = frozenset(queues)
        self._stored_here = stored

    def take_ready(self) -> Message | None:
        """A message put in this process for its consumer: leased to it, or never stored."""
        try:
            return self._ready.popleft()
        except IndexError:
            return None

    def put(
        self, queue: str, body: Mapping[str, Any], *, name: str | None = None, eta: float = 0.0
    ) -> bool:
        now = time.time()
        here = queue in self._here and eta <= now
        if here and not self._stored_here:
            return self._hand_over(queue, body, name, now)

        def write(conn: sqlite3.Connection) -> int | None:
            if name is not None and not _take_name(conn, queue, name, now):
                return None
            lease = (now + self.lease_s, 1) if here else (None, 0)
            (message_id,) = conn.execute(
                "INSERT INTO messages (queue, name, body, eta, lease_until, deliveries)"
                " VALUES (?, ?, ?, ?, ?, ?) RETURNING id",
                (queue, name, json.dumps(body), max(eta, 0.0), *lease),
            ).fetchone()
            return int(message_id)

        message_id = self.db.write(write)
        if message_id is None:
            return False
        if eta > now:
            self.delays += 1
        if here:
            self._ready_after_commit(Message(message_id, queue, dict(body), 1))
        else:  # stored: consumers here look again at what falls due next
            self._wake_after_commit()
        return True

    def _hand_over(self, queue: str, body: Mapping[str, Any], name: str | None, now: float) -> bool:
        """A put for this process's consumer that is not stored (deliver_here(stored=False))."""
        if name is not None and not self.db.write(lambda c: _take_name(c, queue, name, now)):
            return False
        self._ready_after_commit(Message(next(self._unstored_ids), queue, dict(body), 1))
        return True

    def _ready_after_commit(self, message: Message) -> None:
        # A put inside a write is handed over only once that write has committed.
        self.db.after_commit(lambda: self._ready.append(message))
        self._wake_after_commit()

    def _wake_after_commit(self) -> None:
        for listener in self._listeners:
            self.db.after_commit(listener)

    def lease(self, queues: set[str], limit: int) -> list[Message]:
        now = time.time()
        marks = ",".join("?" * len(queues))

        def write(conn: sqlite3.Connection) -> list[Any]:
            rows = conn.execute(
                f"SELECT id, queue, body, deliveries FROM messages WHERE eta <= ?"  # nosec B608 # constant names; values are bound parameters
                f" AND (lease_until IS NULL OR lease_until < ?) AND queue IN ({marks})"
                " ORDER BY eta, id LIMIT ?",
                (now, now, *sorted(queues), limit),
            ).fetchall()
            conn.executemany(
                "UPDATE messages SET lease_until = ?, deliveries = deliveries + 1 WHERE id = ?",
                [(now + self.lease_s, r[0]) for r in rows],
            )
            return rows

        rows = self.db.write(write)
        return [Message(r[0], r[1], json.loads(r[2]), r[3] + 1) for r in rows]

    def ack(self, message: Message) -> None:
        if message.id < 0:
            return  # never stored
        # Not waited for: if the process dies first, the message is delivered again, which
        # at-least-once delivery allows.
        self.db.write_later(
            lambda conn: conn.execute("DELETE FROM messages WHERE id = ?", (message.id,))
        )

    def nack(self, message: Message, error: str) -> None:
        """Redeliver later with exponential backoff, or dead-letter once deliveries run out."""

        def write(conn: sqlite3.Connection) -> None:
            if message.deliveries >= self.max_deliveries:
                conn.execute(
                    "INSERT INTO dead_letters (queue, body, error, deliveries, at)"
                    " VALUES (?, ?, ?, ?, ?)",
                    (
                        message.queue,
                        json.dumps(message.body),
                        error,
                        message.deliveries,
                        time.time(),
                    ),
                )
                conn.execute("DELETE FROM messages WHERE id = ?", (message.id,))
                return
            eta = time.time() + min(60.0, 0.5 * 2 ** (message.deliveries - 1))
            if message.id < 0:  # never stored: from now on it is, for its redelivery
                conn.execute(
                    "INSERT INTO messages (queue, body, eta, deliveries) VALUES (?, ?, ?, ?)",
                    (message.queue, json.dumps(message.body), eta, message.deliveries),
                )
            else:
                conn.execute(
                    "UPDATE messages SET lease_until = NULL, eta = ? WHERE id = ?",
                    (eta, message.id),
                )

        self.db.write(write)
        self.delays += 1

    def next_eta(self, queues: set[str]) -> float | None:
        marks = ",".join("?" * len(queues))
        row = (
            self.db.conn()
            .execute(
                "SELECT MIN(MAX(eta, COALESCE(lease_until, 0))) FROM messages"  # nosec B608 # constant names; values are bound parameters
                f" WHERE queue IN ({marks})",
                sorted(queues),
            )
            .fetchone()
        )
        return float(row[0]) if row and row[0] is not None else None

    def release_leases(self) -> int:
        """At start-up nothing is in flight: make every leased message deliverable again."""
        return self.db.write(
            lambda conn: (
                conn.execute(
                    "UPDATE messages SET lease_until = NULL WHERE lease_until IS NOT NULL"
                ).rowcount
            )
        )

    def stored(self) -> StoredMessages:
        now = time.time()
        ready, leased, retrying, first_lease = (
            self.db.conn()
            .execute(
                "SELECT TOTAL(eta <= ?1 AND (lease_until IS NULL OR lease_until < ?1)),"
                " TOTAL(lease_until >= ?1), TOTAL(deliveries > 0 AND lease_until IS NULL),"
                " MIN(CASE WHEN lease_until >= ?1 THEN lease_until END) FROM messages",
                (now,),
            )
            .fetchone()
        )
        longest = None if first_lease is None else round(now - (first_lease - self.lease_s), 3)
        return StoredMessages(int(ready), int(leased), int(retrying), longest)

    def dead_letters(self) -> list[dict[str, Any]]:
        rows = self.db.conn().execute(
            "SELECT queue, body, error, deliveries, at FROM dead_letters ORDER BY id"
        )
        return [
            {"queue": q, "body": json.loads(b), "error": e, "deliveries": d, "at": at}
            for q, b, e, d, at in rows
        ]

    def purge_names(self) -> None:
        now = time.time()
        self.db.write(lambda conn: conn.execute("DELETE FROM names WHERE expires < ?", (now,)))


def _take_name(conn: sqlite3.Connection, queue: str, name: str, now: float) -> bool:
    """Claim a message name; False while it is still taken (like Cloud Tasks' task names)."""
    taken = conn.execute(
        "INSERT INTO names VALUES (?, ?, ?) ON CONFLICT DO UPDATE SET expires ="
        " excluded.expires WHERE expires < ? RETURNING 1",
        (queue, name, now + NAME_TTL_S, now),
    ).fetchone()
    return taken is not None
