"""Counted buckets over the waiting queues, so a position costs about the same at any depth."""

from __future__ import annotations

import bisect
import sqlite3
from collections import Counter

import orjson

from deepflix.adapters.local.db import Database, json_rows, json_table
from deepflix.pipeline.models import Movie, arrival_key

SCHEMA = """
-- Buckets are ranges of arrival order: bucket b holds the movies whose (arrival, id) is at
-- or after its start and before bucket b+1's start. `created` is how many were put in it.
CREATE TABLE IF NOT EXISTS bucket_starts (
    bucket INTEGER PRIMARY KEY, arrival TEXT NOT NULL, id TEXT NOT NULL, created INTEGER NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS bucket_starts_key ON bucket_starts (arrival, id);
CREATE TABLE IF NOT EXISTS bucket_counts (
    stage TEXT NOT NULL, prio INTEGER NOT NULL, bucket INTEGER NOT NULL, n INTEGER NOT NULL,
    PRIMARY KEY (stage, prio, bucket)
) WITHOUT ROWID;
-- Per stage and priority: a stage's totals and the priorities ahead are a few rows each.
CREATE TABLE IF NOT EXISTS queue_counts (
    stage TEXT NOT NULL, prio INTEGER NOT NULL, waiting INTEGER NOT NULL,
    running INTEGER NOT NULL, PRIMARY KEY (stage, prio)
) WITHOUT ROWID;
"""
# Creates per bucket: a position sums the bucket rows of its priority before its own
# (about depth / BUCKET_SIZE of them) and counts the index entries of its priority inside
# its own (at most about BUCKET_SIZE), so both stay small up to millions waiting.
BUCKET_SIZE = 1000
Where = tuple[str, int]  # (stage, priority rank) where a movie waits or runs
# Written at each batch's end (a Buffer): rows of (stage, prio, bucket, n), (stage, prio,
# waiting, running) and (bucket, created), each added to what the table holds.
STATEMENTS = {
    "bucket_counts": "INSERT INTO bucket_counts "  # nosec B608 # constant names; values are bound parameters
    + json_rows(4, "NEW.bucket_counts")
    + " ON CONFLICT DO UPDATE SET n = n + excluded.n",  # nosec B608 # constant names; values are bound parameters
    "queue_counts": "INSERT INTO queue_counts "  # nosec B608 # constant names; values are bound parameters
    + json_rows(4, "NEW.queue_counts")
    + " ON CONFLICT DO UPDATE"  # nosec B608 # constant names; values are bound parameters
    " SET waiting = waiting + excluded.waiting, running = running + excluded.running",
    "bucket_created": "UPDATE bucket_starts SET created = created + v.n FROM "  # nosec B608 # constant names; values are bound parameters
    + json_table(("bucket", "n"), "NEW.bucket_created")
    + " AS v WHERE bucket_starts.bucket = v.bucket",
}


def _waiting(m: Movie | None) -> Where | None:
    stage = m.waiting_stage if m is not None else None
    return (stage.value, m.request.priority.rank) if m is not None and stage else None


def _running(m: Movie | None) -> Where | None:
    stage = m.running_stage if m is not None else None
    return (stage.value, m.request.priority.rank) if m is not None and stage else None


class Counts:
    """The writer thread's copy of the count tables, changed in memory as movies are saved
    and written once per batch (a Buffer of the Database).

    Every statement gives the GIL away and waits to take it back, so a save changes the
    counts without one (no bucket lookup, no upsert per count, no sum for the free slots);
    the batch writes them all at its end (ADR 0007, 0008). The copy is read again whenever
    the database's generation moves (another process wrote, a batch rolled back).
    """

    statements = STATEMENTS

    def __init__(self, db: Database) -> None:
        self.db = db
        self._generation = -1
        self._counts: dict[Where, list[int]] = {}  # (stage, prio) -> [waiting, running]
        self._starts: list[tuple[str, str]] = []  # bucket b's first (arrival, id)
        self._created: list[int] = []
        self._newest: tuple[str, str] | None = None  # the latest (arrival, id) of any movie
        self._pending: Counter[tuple[Where, str]] = Counter()
        self._pending_buckets: Counter[tuple[Where, int]] = Counter()
        self._pending_created: Counter[int] = Counter()
        db.buffer(self)

    def created(self, conn: sqlite3.Connection, m: Movie) -> None:
        """Count a new movie, in the transaction that inserts it.

        A movie lands in the bucket whose range holds its key, so counts stay exact whatever
        order creates commit in (concurrent API workers read the clock before they queue for
        the write lock, and equal arrivals are ordered by id, not by commit). Only a movie
        that comes after every other in arrival order may open a new bucket, once the last
        one has had BUCKET_SIZE: buckets are sized by count, not by the time the queue spans.
        """
        self._load(conn)
        key = (arrival_key(m.created_at), m.id)
        bucket = bisect.bisect_right(self._starts, key) - 1
        # A new start must be past every movie already counted, or it would split a bucket.
        latest = self._newest is None or key > self._newest
        self.db.staged()
        if bucket == len(self._starts) - 1 and self._created[bucket] >= BUCKET_SIZE and latest:
            bucket += 1
            conn.execute("INSERT INTO bucket_starts VALUES (?, ?, ?, 1)", (bucket, *key))
            self._starts.append(key)
            self._created.append(1)
        else:
            self._created[bucket] += 1
            self._pending_created[bucket] += 1
        if latest:
            self._newest = key
        self._move(bucket, None, m)

    def saved(self, conn: sqlite3.Connection, old: Movie, new: Movie) -> None:
        """Keep the counts in step with one movie's save, in the same transaction."""
        if _waiting(old) != _waiting(new):
            self._load(conn)
            # A movie keeps its arrival, so it stays in one bucket through every stage.
            key = (arrival_key(new.created_at), new.id)
            self._move(bisect.bisect_right(self._starts, key) - 1, old, new)
        elif _running(old) != _running(new):
            self._load(conn)
            self._move(None, old, new)

    def of(self, conn: sqlite3.Connection, stage: str) -> tuple[int, int]:
        """(waiting, running) in one stage, this batch's changes included."""
        self._load(conn)
        waiting = running = 0
        for (s, _), (w, r) in self._counts.items():
            if s == stage:
                waiting, running = waiting + w, running + r
        return waiting, running

    def rows(self) -> dict[str, str]:
        out: dict[str, str] = {}
        buckets = [[*w, b, n] for (w, b), n in self._pending_buckets.items() if n]
        if buckets:
            out["bucket_counts"] = orjson.dumps(buckets).decode()
        counts = [
            [*w, self._pending[w, "waiting"], self._pending[w, "running"]]
            for w in sorted({w for w, _ in self._pending})
        ]
        if counts:
            out["queue_counts"] = orjson.dumps(counts).decode()
        if self._pending_created:
            out["bucket_created"] = orjson.dumps(list(self._pending_created.items())).decode()
        self.discard()
        return out

    def discard(self) -> None:
        self._pending.clear()
        self._pending_buckets.clear()
        self._pending_created.clear()

    def _load(self, conn: sqlite3.Connection) -> None:
        if self._generation == self.db.generation:
            return
        self._counts = {
            (str(stage), int(prio)): [int(w), int(r)]
            for stage, prio, w, r in conn.execute("SELECT * FROM queue_counts")
        }
        rows = conn.execute("SELECT arrival, id, created FROM bucket_starts ORDER BY bucket")
        self._starts, self._created = [], []
        for arrival, movie_id, n in rows:
            self._starts.append((str(arrival), str(movie_id)))
            self._created.append(int(n))
        assert self._starts, "bucket 0 starts before every key: first_bucket() was not run"  # nosec B101 # an invariant, not a check of input
        newest = conn.execute(
            "SELECT arrival, id FROM movies ORDER BY arrival DESC, id DESC LIMIT 1"
        ).fetchone()
        self._newest = (str(newest[0]), str(newest[1])) if newest else None
        self._generation = self.db.generation

    def _move(self, bucket: int | None, old: Movie | None, new: Movie) -> None:
        """Apply one movie's change of waiting place and running stage to the counts."""
        self.db.staged()
        before, after = _waiting(old), _waiting(new)
        if before != after:
            assert bucket is not None  # nosec B101 # an invariant, not a check of input
            for where, sign in ((before, -1), (after, 1)):
                if where is not None:
                    self._add(where, "waiting", sign)
                    # Rows that reach zero stay until prune(): fewer rows to write.
                    self._pending_buckets[where, bucket] += sign
        was, now = _running(old), _running(new)
        if was != now:
            for where, sign in ((was, -1), (now, 1)):
                if where is not None:
                    self._add(where, "running", sign)

    def _add(self, where: Where, column: str, sign: int) -> None:
        self._pending[where, column] += sign
        self._counts.setdefault(where, [0, 0])[column == "running"] += sign


def first_bucket(conn: sqlite3.Connection) -> None:
    """Open bucket 0, which starts before every key, in a new database."""
    conn.execute("INSERT OR IGNORE INTO bucket_starts VALUES (0, '', '', 0)")


def prune(conn: sqlite3.Connection) -> int:
    """Drop emptied bucket rows, which would only lengthen the sums (run by the sweep)."""
    return conn.execute("DELETE FROM bucket_counts WHERE n <= 0").rowcount


# Higher priorities come from their totals, whole buckets of the movie's priority before its
# own from their counts; only its own bucket is counted index entry by entry. One statement:
# each gives the GIL away and waits to take it back.
POSITION = """
WITH start AS (
    SELECT bucket, arrival, id FROM bucket_starts WHERE (arrival, id) <= (:arrival, :id)
    ORDER BY arrival DESC, id DESC LIMIT 1
)
SELECT
    (SELECT COALESCE(SUM(waiting), 0) FROM queue_counts WHERE stage = :stage AND prio < :prio)
    + (SELECT COALESCE(SUM(n), 0) FROM bucket_counts WHERE stage = :stage AND prio = :prio
       AND bucket < (SELECT bucket FROM start))
    + (SELECT COUNT(*) FROM movies WHERE waiting_stage = :stage AND prio = :prio
       AND (arrival, id) >= (SELECT arrival, id FROM start) AND (arrival, id) < (:arrival, :id)),
    (SELECT COALESCE(SUM(waiting), 0) FROM queue_counts WHERE stage = :stage),
    (SELECT COALESCE(SUM(running), 0) FROM queue_counts WHERE stage = :stage),
    (SELECT bucket FROM start)
"""


def position(conn: sqlite3.Connection, m: Movie, stage: str) -> tuple[int, int, int]:
    """(movies before `m` in `stage`'s queue order, waiting, running): ahead is 0 unless `m`
    waits in that stage."""
    where = _waiting(m)
    if where is None or where[0] != stage:
        return (0, *counts_of(conn, stage))
    ahead, waiting, running, bucket = conn.execute(
        POSITION,
        {"stage": stage, "prio": where[1], "arrival": arrival_key(m.created_at), "id": m.id},
    ).fetchone()
    assert bucket is not None, "bucket 0 starts before every key: first_bucket() was not run"  # nosec B101 # an invariant, not a check of input
    return int(ahead), int(waiting), int(running)


def stage_counts(conn: sqlite3.Connection) -> dict[str, tuple[int, int]]:
    """(waiting, running) per stage that has ever had a movie: a row per priority."""
    rows = conn.execute(
        "SELECT stage, SUM(waiting), SUM(running) FROM queue_counts GROUP BY stage"
    ).fetchall()
    return {str(stage): (int(w), int(r)) for stage, w, r in rows}


def counts_of(conn: sqlite3.Connection, stage: str) -> tuple[int, int]:
    """(waiting, running) in one stage."""
    (w, r) = conn.execute(
        "SELECT COALESCE(SUM(waiting), 0), COALESCE(SUM(running), 0) FROM queue_counts"
        " WHERE stage = ?",
        (stage,),
    ).fetchone()
    return int(w), int(r)
