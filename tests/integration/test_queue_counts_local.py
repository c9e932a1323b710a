"""The counted queue buckets agree with a brute-force count, through every kind of change."""

from __future__ import annotations

import random
import sqlite3
import uuid
from collections import Counter
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from deepflix.adapters.local import queue_counts
from deepflix.adapters.local.store import SqliteMovieStore
from deepflix.pipeline.events import (
    CancelRequested,
    Claimed,
    Event,
    RetryRequested,
    StageFailed,
    StageSucceeded,
)
from deepflix.pipeline.models import STAGES, Movie, Stage
from deepflix.pipeline.transitions import apply
from tests.factories import CONFIG, T0, movie
from tests.queue_checks import assert_positions_exact

pytestmark = pytest.mark.integration


def everyone(store: SqliteMovieStore) -> list[Movie]:
    rows = store.db.conn().execute("SELECT doc FROM movies").fetchall()
    return [Movie.model_validate_json(doc) for (doc,) in rows]


def brute_force(store: SqliteMovieStore, m_id: str, stage: Stage) -> tuple[int, int]:
    waiting = sorted(
        (x for x in everyone(store) if x.waiting_stage is stage), key=lambda x: x.sort_key
    )
    ids = [x.id for x in waiting]
    return ids.index(m_id), len(ids)


def assert_exact(store: SqliteMovieStore) -> None:
    assert_positions_exact(store, everyone(store))


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
        Stage.story, 30, later, lambda x: apply(x, Claimed(Stage.story, later), CONFIG)
    )
    done = StageSucceeded(Stage.story, 1, (), later)
    for t in claimed[:10]:
        store.mutate(t.movie.id, lambda x: apply(x, done, CONFIG))
    for m in rng.sample(ms, 15):
        store.mutate(m.id, lambda x: apply(x, CancelRequested(later), CONFIG))
    for m in ms:
        current = store.get(m.id)
        assert current is not None
        stage = current.waiting_stage
        if stage is None:
            continue
        ahead, total, _ = store.position(current, stage)
        assert (ahead, total) == brute_force(store, m.id, stage)


def _random_event(rng: random.Random, m: Movie, at: datetime) -> Event | None:
    running = m.running_stage
    if running is not None:
        attempt = m.stages[running].attempts
        events: list[Event] = [
            StageSucceeded(running, attempt, (), at),
            StageFailed(running, attempt, "boom", "retryable", True, at),
            StageFailed(running, attempt, "bad", "permanent", False, at),
            CancelRequested(at),
        ]
        return rng.choice(events)
    return rng.choice([CancelRequested(at), RetryRequested(at), None])


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_counts_never_drift_through_random_traffic(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, seed: int
) -> None:
    """Creates out of arrival order and on equal clocks, claims, successes, retryable and
    permanent failures, cancels and retries, with buckets of 3 so most changes cross one."""
    monkeypatch.setattr(queue_counts, "BUCKET_SIZE", 3)
    rng = random.Random(seed)
    store = SqliteMovieStore(tmp_path / "m.db")
    ids: list[str] = []
    pruned: list[int] = []
    clock = T0
    for step in range(400):
        clock += timedelta(seconds=1)
        op = rng.random()
        if op < 0.45 or not ids:
            # Arrivals up to 5 s in the past, often on the same instant: the clock each
            # create read need not follow the order the creates commit in.
            m = movie(
                at=clock,
                seconds=-rng.choice([0, 0, 1, 2, 5]),
                priority=rng.choice(["low", "normal", "normal", "high"]),
            )
            m = m.model_copy(update={"id": uuid.UUID(int=rng.getrandbits(128)).hex})
            store.create(m, idempotency_key=None, fingerprint=m.id)
            ids.append(m.id)
        elif op < 0.65:
            stage = rng.choice(STAGES)
            # Claim at a time past every backoff now and then, so retries come back.
            at = clock + timedelta(hours=rng.choice([0, 1]))
            store.claim(
                stage,
                rng.randint(1, 10),
                at,
                lambda x, s=stage, a=at: apply(x, Claimed(s, a), CONFIG),  # type: ignore[misc]
            )
        else:
            # Mostly a running movie, so the walk gets past the first stage.
            busy = store.db.conn().execute("SELECT id FROM movies WHERE running_stage IS NOT NULL")
            running = [r[0] for r in busy]
            pick = rng.choice(running if running and rng.random() < 0.8 else ids)
            target = store.get(pick)
            assert target is not None
            event = _random_event(rng, target, clock)
            if event is not None:
                store.mutate(target.id, lambda x, e=event: apply(x, e, CONFIG))  # type: ignore[misc]
        if step % 50 == 49:
            assert_exact(store)
        if step % 100 == 99:  # the sweep's housekeeping changes no answer
            pruned.append(store.prune())
            assert_exact(store)
    assert_exact(store)
    assert sum(pruned) > 0  # emptied rows stay until the sweep prunes them
    statuses = Counter(m.status.value for m in everyone(store))
    # The walk must have reached every kind of state for the check above to mean much.
    assert {"queued", "story", "images", "cancelled", "failed"} <= statuses.keys(), statuses

    # The count tables themselves, not only the answers read from them, match a recount.
    kept = {k: v for k, v in queue_counts.stage_counts(store.db.conn()).items() if any(v)}
    movies = everyone(store)
    recounted = {
        s.value: (
            sum(m.waiting_stage is s for m in movies),
            sum(m.running_stage is s for m in movies),
        )
        for s in STAGES
    }
    assert kept == {k: v for k, v in recounted.items() if any(v)}


def test_equal_arrivals_across_a_bucket_boundary(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Equal clocks are ordered by id: a later create with a smaller id is ahead."""
    monkeypatch.setattr(queue_counts, "BUCKET_SIZE", 2)
    store = SqliteMovieStore(tmp_path / "m.db")
    ms = [movie().model_copy(update={"id": f"{9 - i:032x}"}) for i in range(7)]
    for m in ms:
        store.create(m, idempotency_key=None, fingerprint=m.id)
    assert [store.position(m, Stage.story)[0] for m in ms] == [6, 5, 4, 3, 2, 1, 0]


def test_creates_committed_out_of_arrival_order(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two API workers read the clock, then the later one commits first."""
    monkeypatch.setattr(queue_counts, "BUCKET_SIZE", 2)
    store = SqliteMovieStore(tmp_path / "m.db")
    order = [0, 1, 3, 2, 5, 4, 8, 6, 7, -1]
    for s in order:
        m = movie(seconds=s)
        store.create(m, idempotency_key=None, fingerprint=m.id)
    assert_exact(store)


def test_a_repeated_create_counts_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(queue_counts, "BUCKET_SIZE", 2)
    store = SqliteMovieStore(tmp_path / "m.db")
    first = movie()
    for i in range(3):
        m = first if i == 0 else movie(seconds=i)
        # The same key again returns the first movie and must put nothing in a bucket.
        store.create(m, idempotency_key="same", fingerprint="f")
    with pytest.raises(sqlite3.IntegrityError):
        store.create(first, idempotency_key=None, fingerprint="f")
    conn = store.db.conn()
    (created,) = conn.execute("SELECT SUM(created) FROM bucket_starts").fetchone()
    assert created == 1
    assert store.position(first, Stage.story) == (0, 1, 0)
