"""The embedded store's ETA runs: windows the sweep prunes, a file from before the windows."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import pytest

from deepflix.adapters.local import journal
from deepflix.adapters.local.store import SqliteMovieStore
from deepflix.pipeline.eta import WINDOWS_KEPT, window_of
from deepflix.pipeline.models import Stage

pytestmark = pytest.mark.integration


def test_the_sweep_prunes_each_stages_windows_past_those_read(tmp_path: Path) -> None:
    store = SqliteMovieStore(tmp_path / "movies.db")
    rows = [
        ("story", 4, 100, 50, 3),
        ("story", 4, 100 - WINDOWS_KEPT + 1, 50, 2),  # the oldest window read: kept
        ("story", 4, 100 - WINDOWS_KEPT, 50, 9),  # past it: pruned
        ("video", 4, 100 - WINDOWS_KEPT, 60, 1),  # video's newest: kept
    ]

    def insert(conn: sqlite3.Connection) -> None:
        conn.executemany("INSERT INTO eta_runs VALUES (?, ?, ?, ?, ?)", rows)

    store.db.write(insert)
    store.prune()
    assert journal.eta_runs(store.db.conn()) == {
        (Stage.story, 4, 100): {50: 3},
        (Stage.story, 4, 100 - WINDOWS_KEPT + 1): {50: 2},
        (Stage.video, 4, 100 - WINDOWS_KEPT): {60: 1},
    }


def test_runs_counted_before_the_windows_count_as_of_the_upgrade(tmp_path: Path) -> None:
    path = tmp_path / "movies.db"
    conn = sqlite3.connect(path)
    conn.execute(
        "CREATE TABLE eta_durations (stage TEXT NOT NULL, scenes INTEGER NOT NULL,"
        " bin INTEGER NOT NULL, runs INTEGER NOT NULL, PRIMARY KEY (stage, scenes, bin))"
    )
    conn.execute("INSERT INTO eta_durations VALUES ('images', 3, 70, 5)")
    conn.commit()
    conn.close()
    before = window_of(datetime.now(UTC))
    history = SqliteMovieStore(path).duration_history()
    ((stage, scenes, window), bins), *rest = history.items()
    assert (stage, scenes, bins, rest) == (Stage.images, 3, {70: 5}, [])
    assert before <= window <= window_of(datetime.now(UTC))
    tables = sqlite3.connect(path).execute("SELECT name FROM sqlite_master").fetchall()
    assert ("eta_durations",) not in tables
