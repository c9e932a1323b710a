"""Counted buckets over the waiting queues, so a position costs about the same at any depth."""

from __future__ import annotations

import sqlite3
from collections import Counter

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
# Bumped whenever the bucketing changes: opening an older database recounts it.
VERSION = 4
Where = tuple[str, int]  # (stage, priority rank) where a movie waits or runs


def _waiting(m: Movie | None) -> Where | None:
    stage = m.waiting_stage if m is not None else None
    return (stage.value, m.request.priority.rank) if m is not None and stage else None


def _running(m: Movie | None) -> Where | None:
    stage = m.running_stage if m is not None else None
    return (stage.value, m.request.priority.rank) if m is not None and stage else None


def _bucket(conn: sqlite3.Connection, m: Movie) -> tuple[int, str, str, int]:
    """The bucket whose range holds `m`: (bucket, start arrival, start id, created)."""
    row = conn.execute(
        "SELECT bucket, arrival, id, created FROM bucket_starts WHERE (arrival, id) <= (?, ?)"
        " ORDER BY arrival DESC, id DESC LIMIT 1",
        (arrival_key(m.created_at), m.id),
    ).fetchone()
    assert row is not None, "bucket 0 starts before every key: rebuild() was not run"
    return int(row[0]), str(row[1]), str(row[2]), int(row[3])


def created(conn: sqlite3.Connection, m: Movie) -> None:
    """Count a new movie, in the transaction that inserts it.

    A movie lands in the bucket whose range holds its key, so counts stay exact whatever
    order creates commit in (concurrent API workers read the clock before they queue for
    the write lock, and equal arrivals are ordered by id, not by commit). Only a movie that
    comes after every other in arrival order may open a new bucket, once the last one has
    had BUCKET_SIZE: buckets are sized by count, not by the time the queue spans.
    """
    key = (arrival_key(m.created_at), m.id)
    bucket, *_, filled = _bucket(conn, m)
    (last,) = conn.execute("SELECT MAX(bucket) FROM bucket_starts").fetchone()
    # A new start must be past every movie already counted, or it would split their bucket.
    later = conn.execute("SELECT 1 FROM movies WHERE (arrival, id) > (?, ?) LIMIT 1", key)
    if bucket == last and filled >= BUCKET_SIZE and later.fetchone() is None:
        bucket += 1
        conn.execute("INSERT INTO bucket_starts VALUES (?, ?, ?, 1)", (bucket, *key))
    else:
        conn.execute("UPDATE bucket_starts SET created = created + 1 WHERE bucket = ?", (bucket,))
    _move(conn, bucket, None, m)


def saved(conn: sqlite3.Connection, old: Movie, new: Movie) -> None:
    """Keep the counts in step with one movie's save, in the same transaction."""
    if _waiting(old) != _waiting(new):
        # A movie keeps its arrival, so it stays in one bucket through every stage.
        _move(conn, _bucket(conn, new)[0], old, new)
    elif _running(old) != _running(new):
        _move(conn, None, old, new)


def _move(conn: sqlite3.Connection, bucket: int | None, old: Movie | None, new: Movie) -> None:
    """Apply one movie's change of waiting place and running stage to the counts."""
    deltas: Counter[tuple[Where, str]] = Counter()
    before, after = _waiting(old), _waiting(new)
    if before != after:
        assert bucket is not None
        for where, sign in ((before, -1), (after, 1)):
            if where is None:
                continue
            deltas[where, "waiting"] += sign
            # Rows that reach zero stay until prune(): a delete here was one more
            # statement in every state change (each statement gives the GIL away).
            conn.execute(
                "INSERT INTO bucket_counts VALUES (?, ?, ?, ?)"
                " ON CONFLICT DO UPDATE SET n = n + excluded.n",
                (*where, bucket, sign),
            )
    was, now = _running(old), _running(new)
    if was != now:
        for where, sign in ((was, -1), (now, 1)):
            if where is not None:
                deltas[where, "running"] += sign
    for where in sorted({where for where, _ in deltas}):
        conn.execute(
            "INSERT INTO queue_counts VALUES (?, ?, ?, ?) ON CONFLICT DO UPDATE"
            " SET waiting = waiting + excluded.waiting, running = running + excluded.running",
            (*where, deltas[where, "waiting"], deltas[where, "running"]),
        )


def prune(conn: sqlite3.Connection) -> int:
    """Drop emptied bucket rows, which would only lengthen the sums (run by the sweep)."""
    return conn.execute("DELETE FROM bucket_counts WHERE n <= 0").rowcount


def ahead(conn: sqlite3.Connection, m: Movie) -> int:
    """Movies before `m` in its queue's (priority, arrival, id) order.

    Higher priorities come from their totals, whole buckets of the movie's priority before
    its own from their counts; only its own bucket is counted index entry by entry.
    """
    where = _waiting(m)
    assert where is not None
    stage, prio = where
    bucket, start_arrival, start_id, _ = _bucket(conn, m)
    (n,) = conn.execute(
        "SELECT (SELECT COALESCE(SUM(waiting), 0) FROM queue_counts WHERE stage = :stage"
        " AND prio < :prio)"
        " + (SELECT COALESCE(SUM(n), 0) FROM bucket_counts WHERE stage = :stage"
        " AND prio = :prio AND bucket < :bucket)"
        " + (SELECT COUNT(*) FROM movies WHERE waiting_stage = :stage AND prio = :prio"
        " AND (arrival, id) >= (:start_arrival, :start_id) AND (arrival, id) < (:arrival, :id))",
        {
            "stage": stage,
            "prio": prio,
            "bucket": bucket,
            "start_arrival": start_arrival,
            "start_id": start_id,
            "arrival": arrival_key(m.created_at),
            "id": m.id,
        },
    ).fetchone()
    return int(n)


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


def rebuild(conn: sqlite3.Connection) -> None:
    """Recount from the movies: a database from before this bucketing, or a new one."""
    conn.execute("DROP TABLE IF EXISTS queue_buckets")  # VERSION 3's per-second buckets
    for table in ("bucket_starts", "bucket_counts", "queue_counts"):
        conn.execute(f"DELETE FROM {table}")
    # Every BUCKET_SIZE movies in arrival order start a bucket; bucket 0 starts before all.
    conn.execute(
        "WITH ranked AS (SELECT arrival, id, ROW_NUMBER() OVER (ORDER BY arrival, id) - 1 AS rn,"
        " COUNT(*) OVER () AS total FROM movies)"
        " INSERT INTO bucket_starts SELECT rn / :size, IIF(rn = 0, '', arrival),"
        " IIF(rn = 0, '', id), MIN(:size, total - rn) FROM ranked WHERE rn % :size = 0",
        {"size": BUCKET_SIZE},
    )
    conn.execute("INSERT OR IGNORE INTO bucket_starts VALUES (0, '', '', 0)")
    conn.execute(
        "WITH ranked AS (SELECT waiting_stage, prio,"
        " (ROW_NUMBER() OVER (ORDER BY arrival, id) - 1) / ? AS bucket FROM movies)"
        " INSERT INTO bucket_counts SELECT waiting_stage, prio, bucket, COUNT(*) FROM ranked"
        " WHERE waiting_stage IS NOT NULL GROUP BY 1, 2, 3",
        (BUCKET_SIZE,),
    )
    conn.execute(
        "INSERT INTO queue_counts SELECT stage, prio, SUM(w), SUM(r) FROM ("
        " SELECT waiting_stage AS stage, prio, 1 AS w, 0 AS r FROM movies"
        " WHERE waiting_stage IS NOT NULL UNION ALL"
        " SELECT running_stage, prio, 0, 1 FROM movies WHERE running_stage IS NOT NULL"
        ") GROUP BY stage, prio"
    )
