"""Movie documents in SQLite, with the queue columns indexed beside the JSON document."""

from __future__ import annotations

import math
import sqlite3
import time
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

import orjson

from deepflix.adapters.local import journal, queue_counts
from deepflix.adapters.local.db import Database, json_rows, json_table
from deepflix.adapters.local.journal import History
from deepflix.adapters.local.movie_cache import MovieCache, new_version
from deepflix.adapters.local.operator_rows import OperatorRows
from deepflix.adapters.local.owner_usage import owner_usage
from deepflix.pipeline.eta import WindowedRuns
from deepflix.pipeline.journal import JournalEntry
from deepflix.pipeline.models import (
    STAGES,
    Movie,
    Outgoing,
    Priority,
    Stage,
)
from deepflix.pipeline.ports import IdempotencyConflict, Mutation, QueueCounts
from deepflix.pipeline.quotas import OwnerUsage
from deepflix.pipeline.transitions import Decision

SCHEMA = """
CREATE TABLE IF NOT EXISTS movies (
    id TEXT PRIMARY KEY,
    doc TEXT NOT NULL,
    owner TEXT NOT NULL,
    arrival TEXT NOT NULL,
    prio INTEGER NOT NULL,
    waiting_stage TEXT,
    ready_at REAL,
    running_stage TEXT,
    deadline REAL,
    outbox_since REAL,
    version INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS movies_queue ON movies (waiting_stage, prio, arrival, id)
    WHERE waiting_stage IS NOT NULL;
CREATE INDEX IF NOT EXISTS movies_running ON movies (running_stage, deadline)
    WHERE running_stage IS NOT NULL;
CREATE INDEX IF NOT EXISTS movies_outbox ON movies (outbox_since)
    WHERE outbox_since IS NOT NULL;
CREATE INDEX IF NOT EXISTS movies_newest ON movies (arrival, id);
CREATE INDEX IF NOT EXISTS movies_owner ON movies (owner, arrival, id);
-- Each owner's Idempotency-Keys are their own (ADR 0017): another owner's same key is
-- another row, so it can neither return nor reveal their movie. (The table `idempotency`
-- of databases from before owners held keys of the one anonymous owner: left unread.)
CREATE TABLE IF NOT EXISTS owner_idempotency (
    owner TEXT NOT NULL, key TEXT NOT NULL, movie_id TEXT NOT NULL, fingerprint TEXT NOT NULL,
    PRIMARY KEY (owner, key)
);
CREATE TABLE IF NOT EXISTS flags (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
-- Every change of a stage's status, in order: the audit trail of what was applied.
CREATE TABLE IF NOT EXISTS journal (
    seq INTEGER PRIMARY KEY, movie_id TEXT NOT NULL, stage TEXT NOT NULL, attempt INTEGER NOT NULL,
    before TEXT NOT NULL, after TEXT NOT NULL, at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS journal_movie ON journal (movie_id, seq);
CREATE TABLE IF NOT EXISTS stage_stats (
    stage TEXT PRIMARY KEY, mean_s REAL NOT NULL, samples INTEGER NOT NULL
);
-- Successful stage runs per (stage, scene count, window of their end, duration bin): the
-- ETA's histograms, recent windows weighing more (pipeline/eta.py).
CREATE TABLE IF NOT EXISTS eta_runs (
    stage TEXT NOT NULL, scenes INTEGER NOT NULL, window INTEGER NOT NULL, bin INTEGER NOT NULL,
    runs INTEGER NOT NULL, PRIMARY KEY (stage, scenes, window, bin)
) WITHOUT ROWID;
"""
# How long the stage means behind ETAs are reused before they are read again.
MEANS_TTL_S = 1.0
COLUMNS = (
    "doc", "owner", "arrival", "prio", "waiting_stage", "ready_at", "running_stage", "deadline",
    "outbox_since", "version", "id",
)  # fmt: skip
# A batch's new and saved rows are written at its end by one statement for all (the
# Database's batch-end trigger), not an UPDATE per save: each SQLite statement gives the GIL
# away and waits to take it back, and a movie is often saved twice in one batch (ADR 0007).
STATEMENTS = {
    "movies_new": f"INSERT INTO movies ({', '.join(COLUMNS)}) "
    + json_rows(len(COLUMNS), "NEW.movies_new"),
    "movies_saved": f"UPDATE movies SET {', '.join(f'{c} = v.{c}' for c in COLUMNS[:-1])} FROM "  # nosec B608 # constant names; values are bound parameters
    + json_table(COLUMNS, "NEW.movies_saved")
    + " AS v WHERE movies.id = v.id",
}


def _ts(at: datetime | None) -> float | None:
    return at.timestamp() if at is not None else None


def _columns(m: Movie) -> tuple[object, ...]:
    """The row of a movie but its version and id: the document and its queue fields."""
    owner, arrival, prio, waiting, ready_at, running, deadline, outbox_since = m.queue_fields()
    return (
        m.model_dump_json(),
        owner,
        arrival,
        prio,
        waiting,
        _ts(ready_at),
        running,
        _ts(deadline),
        _ts(outbox_since),
    )


def _ready(m: Movie, stage: Stage, now: datetime) -> bool:
    """What the claim's SELECT asks of a row, asked of a movie."""
    ready_at = m.stages[stage].ready_at
    return m.waiting_stage is stage and ready_at is not None and ready_at <= now


class SqliteMovieStore(OperatorRows):
    """`MovieStore` on the embedded database: owns the movie rows (the JSON document with
    its queue fields as indexed columns), the idempotency keys, the admission flag, and the
    queue counts and journal it keeps in step with every save (queue_counts.Counts, History).

    Its writes run on the Database's writer thread. A batch's saves stay in memory
    (`_saved`) and are written by one statement at the batch's end (a Buffer); parsed
    movies are cached by row version so a load rarely parses.
    """

    statements = STATEMENTS

    def __init__(self, where: Path | Database) -> None:
        self._means: tuple[float, dict[Stage, float]] = (-MEANS_TTL_S, {})
        self._history: tuple[float, WindowedRuns] = (-MEANS_TTL_S, {})
        self._paused = (-1, False)  # (generation, flag), as the writer last read or wrote it
        self.db = where if isinstance(where, Database) else Database(where)
        self._cache = MovieCache(self.db)
        self.index = queue_counts.Counts(self.db)
        self.history = History(self.db)
        # Movies created or saved by the batch running now, by id: (the row's version, the
        # movie); `_new` are the created ones. Their rows are written at the batch's end
        # (rows()), so a movie saved twice in a batch (a stage's success, then the next
        # stage's claim) is dumped once; until then the writer's reads of movies look here
        # first (_load, claim) or flush first (_current).
        self._saved: dict[str, tuple[int, Movie]] = {}
        self._new: set[str] = set()
        self.db.buffer(self)
        self.db.conn().executescript(SCHEMA + queue_counts.SCHEMA)
        if not self.db.read_only:  # a reader's writer has set the file up already
            self.db.write(queue_counts.first_bucket)
            self.db.write(journal.windowed_runs)

    def create(self, movie: Movie, *, idempotency_key: str | None, fingerprint: str) -> Movie:
        def write(conn: sqlite3.Connection) -> Movie:
            if idempotency_key is not None:
                row = conn.execute(
                    "SELECT movie_id, fingerprint FROM owner_idempotency"
                    " WHERE owner = ? AND key = ?",
                    (movie.owner, idempotency_key),
                ).fetchone()
                if row is not None:
                    if row[1] != fingerprint:
                        raise IdempotencyConflict(row[0])
                    existing = self._load(conn, row[0])
                    assert existing is not None  # nosec B101 # an invariant, not a check of input
                    return existing
                conn.execute(
                    "INSERT INTO owner_idempotency VALUES (?, ?, ?, ?)",
                    (movie.owner, idempotency_key, movie.id, fingerprint),
                )
            version = new_version()
            self.index.created(conn, movie)
            self._saved[movie.id] = (version, movie)
            self._new.add(movie.id)
            self.db.staged()  # a failing write after this undoes its batch, row included
            self._cache.remember(movie, version)
            return movie

        return self.db.write(write)

    def get(self, movie_id: str) -> Movie | None:
        return self._load(self.db.conn(), movie_id)

    def mutate(self, movie_id: str, fn: Mutation) -> Decision | None:
        def write(conn: sqlite3.Connection) -> Decision | None:
            movie = self._load(conn, movie_id)
            if movie is None:
                return None
            decision = fn(movie)
            if decision.applied:
                self._save(conn, movie, decision.movie)
            return decision

        return self.db.write(write)

    def claim(self, stage: Stage, limit: int, now: datetime, fn: Mutation) -> list[Decision]:
        def write(conn: sqlite3.Connection) -> list[Decision]:
            waiting, running = self.index.of(conn, stage.value)
            free = limit - running
            if free <= 0 or not waiting:  # no statement: each one waits to retake the GIL
                return []
            # Rows this batch saved are read from memory: their rows in the file are older.
            saved = self._saved
            rows = conn.execute(
                "SELECT id, version, doc FROM movies WHERE waiting_stage = ? AND ready_at <= ?"
                " ORDER BY prio, arrival, id LIMIT ?",
                (stage.value, now.timestamp(), free + len(saved)),
            ).fetchall()
            movies = [self._cache.parse(row) for row in rows if row[0] not in saved]
            if saved:
                movies += [m for _, m in saved.values() if _ready(m, stage, now)]
                movies.sort(key=lambda m: m.sort_key)  # the SELECT's order
            out = []
            for movie in movies[:free]:
                decision = fn(movie)
                if decision.applied:
                    self._save(conn, movie, decision.movie)
                    out.append(decision)
            return out

        return self.db.write(write)

    def position(self, movie: Movie, stage: Stage) -> tuple[int, int, int]:
        return queue_counts.position(self.db.conn(), movie, stage.value)

    def ahead(self, movie: Movie, stage: Stage) -> int:
        return self.position(movie, stage)[0]  # one statement either way

    def running_counts(self) -> dict[Stage, int]:
        return {s: c.running for s, c in self.counts().items()}  # one statement either way

    def counts(self) -> dict[Stage, QueueCounts]:
        known = queue_counts.stage_counts(self.db.conn())
        out = {}
        for s in STAGES:
            waiting, running = known.get(s.value, (0, 0))
            out[s] = QueueCounts(waiting=waiting, running=running)
        return out

    def running(self, stage: Stage) -> list[Movie]:
        rows = self._current().execute(
            "SELECT id, version, doc FROM movies WHERE running_stage = ?", (stage.value,)
        )
        return [self._cache.parse(row) for row in rows]

    def waiting_heads(self, stage: Stage) -> list[Movie]:
        heads = []
        for rank in sorted({p.rank for p in Priority}):
            row = (
                self._current()
                .execute(
                    "SELECT id, version, doc FROM movies WHERE waiting_stage = ? AND prio = ?"
                    " ORDER BY arrival, id LIMIT 1",
                    (stage.value, rank),
                )
                .fetchone()
            )
            if row is not None:
                heads.append(self._cache.parse(row))
        return heads

    def overdue(self, now: datetime) -> list[Movie]:
        rows = self._current().execute(
            "SELECT id, version, doc FROM movies WHERE running_stage IS NOT NULL AND deadline < ?",
            (now.timestamp(),),
        )
        return [self._cache.parse(row) for row in rows]

    def sent(self, movie_id: str, messages: Sequence[Outgoing]) -> None:
        def write(conn: sqlite3.Connection) -> None:
            saved = self._saved.get(movie_id)
            movie = saved[1] if saved is not None else self._load(conn, movie_id)
            if movie is None:
                return
            rest = tuple(o for o in movie.outbox if o not in messages)
            if len(rest) == len(movie.outbox):
                return
            new = movie.model_copy(update={"outbox": rest})
            if saved is None:
                self._save(conn, movie, new)
                return
            # Saved in this batch (as a change and its messages are, in one operation): its
            # row is not written yet, and only the outbox changes, which neither the counts
            # nor the journal see.
            self._saved[movie_id] = (saved[0], new)
            self.db.staged()
            self._cache.remember(new, saved[0])

        self.db.write(write)

    def unsent(self, limit: int, before: datetime | None = None) -> list[Movie]:
        rows = self._current().execute(
            "SELECT id, version, doc FROM movies WHERE outbox_since IS NOT NULL"
            " AND outbox_since < ? ORDER BY outbox_since LIMIT ?",
            (math.inf if before is None else before.timestamp(), limit),
        )
        return [self._cache.parse(row) for row in rows]

    def mean_durations(self) -> dict[Stage, float]:
        # Read for every position answer; an ETA does not need fresher means than this.
        at, means = self._means
        if time.monotonic() - at >= MEANS_TTL_S:
            rows = self.db.conn().execute("SELECT stage, mean_s FROM stage_stats").fetchall()
            means = {Stage(stage): float(mean) for stage, mean in rows}
            self._means = (time.monotonic(), means)
        return means

    def duration_history(self) -> WindowedRuns:
        at, history = self._history
        if time.monotonic() - at >= MEANS_TTL_S:
            history = journal.eta_runs(self.db.conn())
            self._history = (time.monotonic(), history)
        return history

    def prune(self) -> int:
        """Housekeeping for the sweep: emptied queue-count rows, and the ETA's windows that
        have fallen out of those it reads."""

        def write(conn: sqlite3.Connection) -> int:
            return queue_counts.prune(conn) + journal.prune_eta_runs(conn)

        return self.db.write(write)

    def admission_paused(self) -> bool:
        # Asked by every dispatch of the story stage, which runs on the writer thread.
        generation, paused = self._paused
        if self.db.is_writer() and generation == self.db.generation:
            return paused
        row = self.db.conn().execute("SELECT value FROM flags WHERE name = 'paused'").fetchone()
        paused = bool(row and row[0])
        if self.db.is_writer():
            self._paused = (self.db.generation, paused)
        return paused

    def set_admission_paused(self, paused: bool) -> None:
        def write(conn: sqlite3.Connection) -> None:
            conn.execute(
                "INSERT INTO flags VALUES ('paused', ?) ON CONFLICT DO UPDATE SET value = ?",
                (int(paused), int(paused)),
            )
            self._paused = (self.db.generation, paused)

        self.db.write(write)

    def journal(self, movie_id: str) -> list[dict[str, object]]:
        rows = self.db.conn().execute(
            "SELECT stage, attempt, before, after, at FROM journal WHERE movie_id = ? ORDER BY seq",
            (movie_id,),
        )
        return [dict(zip(JournalEntry._fields, row, strict=True)) for row in rows]

    def owner_usage(self, owner: str, since: datetime) -> OwnerUsage:
        return owner_usage(self._current(), owner, since)

    def rows(self) -> dict[str, str]:
        """The rows of the movies this batch created and saved (the Database's flush)."""
        rows: dict[str, list[tuple[object, ...]]] = {}
        for version, m in self._saved.values():
            name = "movies_new" if m.id in self._new else "movies_saved"
            rows.setdefault(name, []).append((*_columns(m), version, m.id))
        self.discard()
        return {name: orjson.dumps(r).decode() for name, r in rows.items()}

    def discard(self) -> None:
        self._saved.clear()
        self._new.clear()

    def _current(self) -> sqlite3.Connection:
        """A connection whose reads of movies are current: on the writer, with this
        batch's saves written out first."""
        conn = self.db.conn()
        if self.db.is_writer():
            self.db.flush(conn)
        return conn

    def _load(self, conn: sqlite3.Connection, movie_id: str) -> Movie | None:
        if self.db.is_writer():
            saved = self._saved.get(movie_id)
            if saved is not None:
                return saved[1]
            # What the writer read or wrote in this generation is the row as it is now: no
            # other connection has committed since (Database.generation), so no read.
            current = self._cache.current(movie_id)
            if current is not None:
                return current
        row = conn.execute(
            "SELECT id, version, doc FROM movies WHERE id = ?", (movie_id,)
        ).fetchone()
        return self._cache.parse(row) if row else None

    def _save(self, conn: sqlite3.Connection, old: Movie, new: Movie) -> None:
        self.index.saved(conn, old, new)
        version = new_version()
        self._saved[new.id] = (version, new)
        self.db.staged()  # a failing write after this undoes its batch, row included
        self._cache.remember(new, version)
        self.history.saved(old, new)
