"""A change sequence of the movie rows, kept by triggers: what live streams read."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from deepflix.adapters.local.db import Database

# One row per movie, moved to the next number by every insert, update or delete of its row:
# bounded by the movies, and a reader asks "which moved past n" of one index. Triggers, not
# a write in the store: the batch-end statement that writes a batch's rows (ADR 0007) fires
# them inside SQLite, with no statement of its own and no GIL hand-off.
_NEXT = "(SELECT coalesce(max(seq), 0) + 1 FROM movie_changes)"
_UPSERT = "ON CONFLICT (movie_id) DO UPDATE SET seq = excluded.seq"
SCHEMA = [
    "CREATE TABLE IF NOT EXISTS movie_changes (movie_id TEXT PRIMARY KEY, seq INTEGER NOT NULL)",
    "CREATE INDEX IF NOT EXISTS movie_changes_seq ON movie_changes (seq)",
    *(
        f"CREATE TRIGGER IF NOT EXISTS movie_changes_{when.lower()} AFTER {when} ON movies BEGIN"
        f" INSERT INTO movie_changes VALUES ({row}.id, {_NEXT}) {_UPSERT}; END"
        for when, row in (("INSERT", "NEW"), ("UPDATE", "NEW"), ("DELETE", "OLD"))
    ),
]
# Ids one read hands over at most; the next read goes on from the last of them.
BATCH = 1000


def install(db: Database) -> None:
    """Create the sequence and its triggers (the runtime, which writes the file)."""

    def create(conn: sqlite3.Connection) -> None:
        for statement in SCHEMA:
            conn.execute(statement)

    db.write(create)


class SqliteChanges:
    """The reading end, on a connection of its own: `PRAGMA data_version` says, for the
    price of no read at all, whether another connection committed since the last look;
    only then are the moved rows read."""

    interval_s = 0.25
    complete = True  # every change of a movie's row is in the sequence

    def __init__(self, path: Path) -> None:
        self.path = path
        self._conn: sqlite3.Connection | None = None
        self._version: int | None = None

    def latest(self) -> int:
        """The sequence number now: changes after it are news."""
        row = self._connect().execute("SELECT coalesce(max(seq), 0) FROM movie_changes")
        return int(row.fetchone()[0])

    def since(self, seq: int) -> tuple[int, list[str]] | None:
        """(the last number read, the ids of the movies that changed after `seq`), or None
        when nothing was committed since the last call."""
        conn = self._connect()
        (version,) = conn.execute("PRAGMA data_version").fetchone()
        if version == self._version:
            return None
        self._version = version
        rows = conn.execute(
            "SELECT movie_id, seq FROM movie_changes WHERE seq > ? ORDER BY seq LIMIT ?",
            (seq, BATCH),
        ).fetchall()
        if len(rows) == BATCH:
            self._version = None  # more to read: the next call reads on
        return (rows[-1][1] if rows else seq), [r[0] for r in rows]

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def _connect(self) -> sqlite3.Connection:
        if self._conn is None:
            conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            conn.execute("PRAGMA busy_timeout=5000")
            conn.execute("PRAGMA query_only=1")
            self._conn = conn
        return self._conn
