"""The counted queue buckets agree with a brute-force count, through every kind of change."""

from __future__ import annotations

import random
import sqlite3
from datetime import timedelta
from pathlib import Path

import pytest

from deepflix.adapters.local import queue_index
from deepflix.adapters.local.store import SqliteMovieStore
from deepflix.pipeline.models import Stage
from deepflix.pipeline.policy import DEFAULT_CONFIG
from deepflix.pipeline.transitions import CancelRequested, Claimed, StageSucceeded, apply
from tests.factories import T0, movie

pytestmark = pytest.mark.unit


def brute_force(store: SqliteMovieStore, m_id: str, stage: Stage) -> tuple[int, int]:
    everyone = [store.get(r[0]) for r in store.db.conn().execute("SELECT id FROM movies")]
    waiting = sorted(
        (x for x in everyone if x and x.waiting_stage is stage), key=lambda x: x.sort_key
    )
    ids = [x.id for x in waiting]
    return ids.index(m_id), len(ids)


def test_positions_match_brute_force_through_claims_successes_and_cancels(tmp_path: Path) -> None:
    rng = random.Random(7)
    store = SqliteMovieStore(tmp_path / "m.db")
    ms = [
        movie(
            seconds=rng.choice([0, 0, 0.5, 1, 2.25, 3]) + i * 1e-6,
            priority=rng.choice(["low", "normal", "high"]),
        )
        for i in range(120)
    ]
    for m in ms:
        store.create(m, idempotency_key=None, fingerprint=m.id)
    later = T0 + timedelta(hours=1)
    claimed = store.claim(
        Stage.story, 30, later, lambda x: apply(x, Claimed(Stage.story, later), DEFAULT_CONFIG)
    )
    done = StageSucceeded(Stage.story, 1, (), later)
    for t in claimed[:10]:
        store.mutate(t.movie.id, lambda x: apply(x, done, DEFAULT_CONFIG))
    for m in rng.sample(ms, 15):
        store.mutate(m.id, lambda x: apply(x, CancelRequested(later), DEFAULT_CONFIG))
    for m in ms:
        current = store.get(m.id)
        assert current is not None
        stage = current.waiting_stage
        if stage is None:
            continue
        ahead, total, _ = store.position(current, stage)
        assert (ahead, total) == brute_force(store, m.id, stage)


def test_an_old_database_is_recounted_on_open(tmp_path: Path) -> None:
    store = SqliteMovieStore(tmp_path / "m.db")
    ms = [movie(seconds=i) for i in range(5)]
    for m in ms:
        store.create(m, idempotency_key=None, fingerprint=m.id)
    conn = sqlite3.connect(tmp_path / "m.db", isolation_level=None)
    conn.execute("DELETE FROM queue_buckets")
    conn.execute("PRAGMA user_version = 0")
    conn.close()
    reopened = SqliteMovieStore(tmp_path / "m.db")
    assert reopened.position(ms[3], Stage.story) == (3, 5, 0)
    assert queue_index.total(reopened.db.conn(), "story") == 5
