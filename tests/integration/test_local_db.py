"""The embedded database's writer thread: group commit, rollbacks, buffered rows, callbacks."""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import pytest

from deepflix.adapters.local.db import Database, json_rows

pytestmark = pytest.mark.integration


@pytest.fixture
def db(tmp_path: Path) -> Database:
    db = Database(tmp_path / "t.db")
    db.conn().execute("CREATE TABLE t (n INTEGER PRIMARY KEY)")
    return db


def rows(db: Database) -> list[int]:
    return [n for (n,) in db.conn().execute("SELECT n FROM t ORDER BY n")]


Write = Callable[[sqlite3.Connection], object]


def batched(db: Database, writes: list[Write]) -> list[str]:
    """Run `writes` in one batch; 'ok' or the error's class name for each."""
    holding, gate = threading.Event(), threading.Event()

    def hold(conn: sqlite3.Connection) -> None:  # the next writes queue up behind it
        holding.set()
        gate.wait(5)

    db.write_later(hold)
    assert holding.wait(5)
    outcomes = [""] * len(writes)

    def run(i: int) -> None:
        try:
            db.write(writes[i])
            outcomes[i] = "ok"
        except Exception as e:
            outcomes[i] = type(e).__name__

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(writes))]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 5
    while len(db._queue) < len(writes) and time.monotonic() < deadline:
        time.sleep(0.001)
    assert len(db._queue) == len(writes), "every write waits for the one batch"
    gate.set()
    for t in threads:
        t.join(10)
    assert not any(t.is_alive() for t in threads), "the writer stopped answering"
    return outcomes


def test_writes_from_many_threads_all_commit_and_return_their_results(db: Database) -> None:
    results: list[int] = []

    def insert(i: int) -> None:
        results.append(db.write(lambda c: c.execute("INSERT INTO t VALUES (?)", (i,)).lastrowid))  # type: ignore[arg-type]

    threads = [threading.Thread(target=insert, args=(i,)) for i in range(1, 101)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == list(range(1, 101))
    assert rows(db) == list(range(1, 101))


def test_a_failing_write_rolls_back_alone_even_inside_a_batch(db: Database) -> None:
    def insert(i: int) -> Write:
        def write(c: sqlite3.Connection) -> None:
            c.execute("INSERT INTO t VALUES (?)", (i,))
            if i % 2:
                raise ValueError(f"odd {i}")

        return write

    assert batched(db, [insert(i) for i in range(1, 7)]) == ["ValueError", "ok"] * 3
    assert rows(db) == [2, 4, 6]


def test_after_commit_runs_after_the_commit_and_never_after_a_rollback(db: Database) -> None:
    seen: list[tuple[str, list[int]]] = []

    def write(c: sqlite3.Connection, fail: bool) -> None:
        c.execute("INSERT INTO t VALUES (?)", (len(seen) + 10,))
        # A reader on another connection must already see the row when the callback runs.
        db.after_commit(lambda: seen.append(("called", rows_elsewhere())))
        if fail:
            raise RuntimeError("rolled back")

    def rows_elsewhere() -> list[int]:
        with sqlite3.connect(db.path) as other:
            return [n for (n,) in other.execute("SELECT n FROM t")]

    db.write(lambda c: write(c, False))
    with pytest.raises(RuntimeError):
        db.write(lambda c: write(c, True))
    assert seen == [("called", [10])]
    db.after_commit(lambda: seen.append(("outside", [])))  # outside a write: at once
    assert seen[-1] == ("outside", [])


def test_a_write_inside_a_write_joins_its_transaction(db: Database) -> None:
    def outer(c: sqlite3.Connection) -> None:
        db.write(lambda inner: inner.execute("INSERT INTO t VALUES (1)"))
        raise RuntimeError("the outer write fails")

    with pytest.raises(RuntimeError):
        db.write(outer)
    assert rows(db) == []  # the inner insert went with the outer transaction


def test_a_locked_database_fails_the_batch_with_unavailable(tmp_path: Path) -> None:
    from deepflix.pipeline.errors import Unavailable

    db = Database(tmp_path / "t.db", busy_timeout_ms=10)
    db.conn().execute("CREATE TABLE t (n INTEGER)")
    other = sqlite3.connect(tmp_path / "t.db", isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    try:
        with pytest.raises(Unavailable):
            db.write(lambda c: c.execute("INSERT INTO t VALUES (1)"))
    finally:
        other.execute("ROLLBACK")
    db.write(lambda c: c.execute("INSERT INTO t VALUES (1)"))
    assert rows(db) == [1]


def test_a_write_failing_before_any_change_leaves_its_batch_alone(db: Database) -> None:
    def insert(i: int) -> Write:
        def write(c: sqlite3.Connection) -> None:
            if i == 3:
                raise LookupError("refused before writing")  # like a 404 or a 409
            c.execute("INSERT INTO t VALUES (?)", (i,))

        return write

    outcomes = batched(db, [insert(i) for i in range(1, 6)])
    assert outcomes == ["ok", "ok", "LookupError", "ok", "ok"] and rows(db) == [1, 2, 4, 5]


def test_a_read_only_database_reads_what_the_writer_commits_and_refuses_writes(
    db: Database,
) -> None:
    reader = Database(db.path, read_only=True)
    db.write(lambda c: c.execute("INSERT INTO t VALUES (1)"))
    assert rows(reader) == [1]
    with pytest.raises(RuntimeError, match="read-only"):
        reader.write(lambda c: c.execute("INSERT INTO t VALUES (2)"))
    with pytest.raises(sqlite3.OperationalError, match="readonly"):
        reader.conn().execute("INSERT INTO t VALUES (3)")
    db.write(lambda c: c.execute("INSERT INTO t VALUES (4)"))
    assert rows(reader) == rows(db) == [1, 4]


class Gathered:
    """A Buffer of numbers for table t, written at each batch's end: two names, so a
    statement per name would show."""

    statements = {
        name: "INSERT INTO t " + json_rows(1, f"NEW.{name}") for name in ("small", "large")
    }

    def __init__(self, db: Database) -> None:
        self.db = db
        self.pending: dict[str, list[list[int]]] = {"small": [], "large": []}
        db.buffer(self)

    def add(self, n: int) -> None:
        self.pending["small" if n <= 3 else "large"].append([n])
        self.db.staged()

    def rows(self) -> dict[str, str]:
        out = {name: json.dumps(ns) for name, ns in self.pending.items() if ns}
        self.discard()
        return out

    def discard(self) -> None:
        for ns in self.pending.values():
            ns.clear()


def adding(gathered: Gathered, numbers: Iterable[int]) -> list[Write]:
    return [lambda c, n=n: gathered.add(n) for n in numbers]  # type: ignore[misc]


def test_buffered_rows_are_written_by_one_statement_at_the_batch_end(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    statements: list[str] = []

    class Counted(sqlite3.Connection):
        def execute(self, sql: str, *args: Any) -> sqlite3.Cursor:
            statements.append(sql.split()[0])
            return super().execute(sql, *args)

    connect = sqlite3.connect
    monkeypatch.setattr(sqlite3, "connect", lambda *a, **k: connect(*a, factory=Counted, **k))
    db = Database(tmp_path / "t.db")
    db.write(lambda c: c.execute("CREATE TABLE t (n INTEGER PRIMARY KEY)"))
    gathered = Gathered(db)
    statements.clear()
    assert batched(db, adding(gathered, range(1, 6))) == ["ok"] * 5
    assert rows(db) == [1, 2, 3, 4, 5]
    assert statements.count("INSERT") == 1  # the five writes' rows, under both names
    # The view and its trigger are the writer connection's, never the file's.
    (kinds,) = connect(db.path).execute("SELECT COUNT(*) FROM sqlite_master WHERE type != 'table'")
    assert kinds == (0,)


def test_rows_failing_at_the_batch_end_fail_only_the_write_that_gathered_them(
    db: Database,
) -> None:
    gathered = Gathered(db)
    db.write(lambda c: c.execute("INSERT INTO t VALUES (3)"))
    outcomes = batched(db, adding(gathered, range(1, 6)))
    assert outcomes == ["ok", "ok", "IntegrityError", "ok", "ok"]
    assert rows(db) == [1, 2, 3, 4, 5]


def test_a_buffer_that_raises_fails_its_batch_and_the_writer_lives_on(db: Database) -> None:
    gathered = Gathered(db)
    broken = gathered.rows
    gathered.rows = lambda: {"small": broken()["small"], "large": 1 / 0}  # type: ignore[method-assign, dict-item]
    assert batched(db, adding(gathered, [1, 5])) == ["Unavailable", "Unavailable"]
    gathered.rows = broken  # type: ignore[method-assign]
    assert batched(db, adding(gathered, [2, 6])) == ["ok", "ok"]
    assert rows(db) == [2, 6]
