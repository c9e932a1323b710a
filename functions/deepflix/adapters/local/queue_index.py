"""Counted buckets over the waiting queues, so a position costs about the same at any depth."""

from __future__ import annotations

import sqlite3

from deepflix.pipeline.models import Movie, arrival_key

SCHEMA = """
CREATE TABLE IF NOT EXISTS queue_buckets (
    stage TEXT NOT NULL, prio INTEGER NOT NULL, bucket TEXT NOT NULL, n INTEGER NOT NULL,
    PRIMARY KEY (stage, prio, bucket)
) WITHOUT ROWID;
"""
# Arrival keys look like 2026-11-29T12:00:00.000000Z; movies of the same second share a
# bucket. Measured (bench/RESULTS.md §3): tenths of a second made 100k waiting slower, as
# summing ten times the buckets cost more than the shorter count inside one.
BUCKET_CHARS = 19
# Bumped whenever the bucketing changes: opening an older database recounts it.
VERSION = 3
Key = tuple[str, int, str]


def key_of(m: Movie) -> Key | None:
    """The bucket a movie is counted in while it waits, or None if it waits nowhere."""
    stage = m.waiting_stage
    if stage is None:
        return None
    return (stage.value, m.request.priority.rank, arrival_key(m.created_at)[:BUCKET_CHARS])


def move(conn: sqlite3.Connection, old: Key | None, new: Key | None) -> None:
    """Keep the counts in step with one movie's save, in the same transaction."""
    if old == new:
        return
    if old is not None:
        conn.execute(
            "UPDATE queue_buckets SET n = n - 1 WHERE stage = ? AND prio = ? AND bucket = ?", old
        )
        conn.execute(
            "DELETE FROM queue_buckets WHERE stage = ? AND prio = ? AND bucket = ? AND n <= 0", old
        )
    if new is not None:
        conn.execute(
            "INSERT INTO queue_buckets VALUES (?, ?, ?, 1) ON CONFLICT DO UPDATE SET n = n + 1",
            new,
        )


def ahead_and_total(conn: sqlite3.Connection, m: Movie) -> tuple[int, int]:
    """Movies before `m` in its queue's (priority, arrival, id) order, and all waiting there.

    Whole buckets before the movie's own are summed from their counts; only the movie's own
    bucket (one second of arrivals at its priority) is counted row by row.
    """
    key = key_of(m)
    assert key is not None
    stage, prio, bucket = key
    arrival = arrival_key(m.created_at)
    (before, total) = conn.execute(
        "SELECT COALESCE(SUM(CASE WHEN prio < ? OR (prio = ? AND bucket < ?) THEN n END), 0),"
        " COALESCE(SUM(n), 0) FROM queue_buckets WHERE stage = ?",
        (prio, prio, bucket, stage),
    ).fetchone()
    (inside,) = conn.execute(
        "SELECT COUNT(*) FROM movies WHERE waiting_stage = ? AND prio = ? AND arrival >= ?"
        " AND (arrival, id) < (?, ?)",
        (stage, prio, bucket, arrival, m.id),
    ).fetchone()
    return int(before) + int(inside), int(total)


def total(conn: sqlite3.Connection, stage: str) -> int:
    (n,) = conn.execute(
        "SELECT COALESCE(SUM(n), 0) FROM queue_buckets WHERE stage = ?", (stage,)
    ).fetchone()
    return int(n)


def rebuild(conn: sqlite3.Connection) -> None:
    """Recount from the movies (a database from before the buckets existed)."""
    conn.execute("DELETE FROM queue_buckets")
    conn.execute(
        "INSERT INTO queue_buckets SELECT waiting_stage, prio, substr(arrival, 1, ?), COUNT(*)"
        " FROM movies WHERE waiting_stage IS NOT NULL GROUP BY 1, 2, 3",
        (BUCKET_CHARS,),
    )
