"""The embedded database's writer thread: group commit, savepoints, after-commit callbacks."""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path

import pytest

from deepflix.adapters.local.db import Database

pytestmark = pytest.mark.unit


@pytest.fixture
def db(tmp_path: Path) -> Database:
    db = Database(tmp_path / "t.db")
    db.conn().execute("CREATE TABLE t (n INTEGER PRIMARY KEY)")
    return db


def rows(db: Database) -> list[int]:
    return [n for (n,) in db.conn().execute("SELECT n FROM t ORDER BY n")]


def test_writes_from_many_threads_all_commit_and_return_their_results(db: Database) -> None:
    results: list[int] = []

    def insert(i: int) -> None:
        results.append(db.write(lambda c: c.execute("INSERT INTO t VALUES (?)", (i,)).lastrowid))

    threads = [threading.Thread(target=insert, args=(i,)) for i in range(1, 101)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == list(range(1, 101))
    assert rows(db) == list(range(1, 101))


def test_a_failing_write_rolls_back_alone_even_inside_a_batch(db: Database) -> None:
    gate = threading.Event()
    db.write_later(lambda c: gate.wait(5))  # holds the writer so the next writes batch up
    outcomes: dict[int, str] = {}

    def insert(i: int) -> None:
        def write(c: sqlite3.Connection) -> None:
            c.execute("INSERT INTO t VALUES (?)", (i,))
            if i % 2:
                raise ValueError(f"odd {i}")

        try:
            db.write(write)
            outcomes[i] = "ok"
        except ValueError:
            outcomes[i] = "failed"

    threads = [threading.Thread(target=insert, args=(i,)) for i in range(1, 7)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 5
    while len(db._queue) < 6 and time.monotonic() < deadline:  # all six in one batch
        time.sleep(0.001)
    gate.set()
    for t in threads:
        t.join()
    assert outcomes == {i: "failed" if i % 2 else "ok" for i in range(1, 7)}
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
    gate = threading.Event()
    db.write_later(lambda c: gate.wait(5))
    errors: list[str] = []

    def insert(i: int) -> None:
        def write(c: sqlite3.Connection) -> None:
            if i == 3:
                raise LookupError("refused before writing")  # like a 404 or a 409
            c.execute("INSERT INTO t VALUES (?)", (i,))

        try:
            db.write(write)
        except LookupError as e:
            errors.append(str(e))

    threads = [threading.Thread(target=insert, args=(i,)) for i in range(1, 6)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 5
    while len(db._queue) < 5 and time.monotonic() < deadline:
        time.sleep(0.001)
    gate.set()
    for t in threads:
        t.join()
    assert errors == ["refused before writing"] and rows(db) == [1, 2, 4, 5]


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
