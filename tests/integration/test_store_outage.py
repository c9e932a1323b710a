"""The embedded database says whether it takes writes, and a write that finds it unwritable
(locked by another process past the busy timeout, full) fails as unavailable."""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from deepflix.adapters.local.db import Database
from deepflix.pipeline.errors import Unavailable

pytestmark = pytest.mark.integration


@contextlib.contextmanager
def locked(path: Path) -> Iterator[None]:
    """Hold the database's write lock from another connection, as a backup tool would."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield
    finally:
        conn.execute("ROLLBACK")
        conn.close()


def test_the_store_says_it_takes_no_writes_while_locked_and_again_once_free(
    tmp_path: Path,
) -> None:
    db = Database(tmp_path / "t.db", busy_timeout_ms=100)
    db.probe()
    assert db.health().writable
    with locked(tmp_path / "t.db"):
        with pytest.raises(Unavailable):
            db.probe()
        health = db.health()
        assert not health.writable and "locked" in (health.error or "")
    db.probe()
    assert db.health().writable


def test_a_full_database_fails_writes_as_unavailable_and_recovers(tmp_path: Path) -> None:
    db = Database(tmp_path / "t.db")
    db.conn().execute("CREATE TABLE t (blob BLOB)")
    (pages,) = db.conn().execute("PRAGMA page_count").fetchone()
    # A full disk, for the writer's connection only: no page beyond those there now.
    db.write(lambda c: c.execute(f"PRAGMA max_page_count = {pages + 2}"))

    def fill(conn: sqlite3.Connection) -> None:
        conn.execute("INSERT INTO t VALUES (zeroblob(100000))")

    with pytest.raises(Unavailable, match="full"):
        db.write(fill)
    assert not db.health().writable
    db.write(lambda c: c.execute("PRAGMA max_page_count = 1000000"))
    db.write(fill)  # the writer thread lives on
    assert db.health().writable
