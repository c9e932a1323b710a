"""Firestore queue counters on the emulator: positions against a brute-force count."""

from __future__ import annotations

import random
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from deepflix.adapters.gcp.firestore_docs import from_document
from deepflix.adapters.gcp.firestore_store import FirestoreMovieStore
from deepflix.adapters.gcp.queue_counts import WIDTHS
from deepflix.metering import METER
from deepflix.pipeline.events import (
    CancelRequested,
    Claimed,
    Event,
    RetryRequested,
    StageFailed,
    StageSucceeded,
)
from deepflix.pipeline.models import Movie, Priority, Stage
from deepflix.pipeline.transitions import Decision, apply
from tests.factories import CONFIG, T0, movie
from tests.queue_checks import assert_positions_exact

pytestmark = pytest.mark.emulator
NOW = T0 + timedelta(days=3)  # after every arrival below, so every movie is ready
SECONDS = int((T0 - datetime(1970, 1, 1, tzinfo=UTC)).total_seconds())
# The first boundary of the widest buckets after T0: arrivals cluster around it.
EDGE = WIDTHS[-1] - SECONDS % WIDTHS[-1]
OFFSETS = [0, 9.5, 10, EDGE - 1000.5, EDGE - 10, EDGE - 0.000001, EDGE, EDGE, EDGE + 3]


def event_fn(event: Event) -> Callable[[Movie], Decision]:
    return lambda m: apply(m, event, CONFIG)


def everyone(db: Any) -> list[Movie]:
    return [from_document(s.to_dict()) for s in db.collection("movies").stream()]


def story_queue(db: Any) -> list[Movie]:
    waiting = (m for m in everyone(db) if m.waiting_stage is Stage.story)
    return sorted(waiting, key=lambda m: m.sort_key)


def assert_exact(store: FirestoreMovieStore, db: Any) -> int:
    return assert_positions_exact(store, everyone(db))


def in_parallel(fns: list[Callable[[], object]]) -> None:
    barrier = threading.Barrier(len(fns))

    def run(fn: Callable[[], object]) -> None:
        barrier.wait()
        fn()

    threads = [threading.Thread(target=run, args=(fn,)) for fn in fns]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


# Every arrival counted in the buckets (a deep queue), and the first 16 uncounted then the rest
# counted: positions mix the bucket sums with count()s of the uncounted (ADR 0026).
@pytest.mark.parametrize("deep_after", [0, 16])
def test_positions_stay_exact_through_parallel_saves_and_every_kind_of_change(
    empty_firestore: Any, deep_after: int
) -> None:
    store = FirestoreMovieStore(client=empty_firestore, counter_shards=3, deep_after=deep_after)
    rng = random.Random(11)
    ms = [
        movie(seconds=rng.choice(OFFSETS), priority=rng.choice(list(Priority))) for _ in range(48)
    ]
    # Creates from 8 threads at once, half with an idempotency key (a transaction).
    chunks = [ms[i::8] for i in range(8)]
    in_parallel(
        [
            lambda c=c: [  # type: ignore[misc]
                store.create(m, idempotency_key=m.id if i % 2 else None, fingerprint="f")
                for i, m in enumerate(c)
            ]
            for c in chunks
        ]
    )
    assert assert_exact(store, empty_firestore) == 48
    counted = [m for m in everyone(empty_firestore) if shard_of_doc(empty_firestore, m.id)]
    if deep_after:  # each process decides on a count it read, plus what it added since
        assert deep_after <= 48 - len(counted) <= deep_after + 8
    else:
        assert len(counted) == 48
    # Claims racing each other, then finishes, failures, retries and cancels.
    claim = event_fn(Claimed(Stage.story, NOW))
    in_parallel([lambda: store.claim(Stage.story, 12, NOW, claim) for _ in range(4)])
    # A claim that loses every race for a slot shard may leave that slot to the next
    # dispatch (the sweep's here); none ever takes more than the limit.
    assert len(store.running(Stage.story)) <= 12
    store.claim(Stage.story, 12, NOW, claim)
    running = store.running(Stage.story)
    assert len(running) == 12
    done = event_fn(StageSucceeded(Stage.story, 1, (), NOW))
    failed = event_fn(StageFailed(Stage.story, 1, "boom", "no", False, NOW))
    in_parallel([lambda m=m: store.mutate(m.id, done) for m in running[:6]])  # type: ignore[misc]
    for m in running[6:9]:
        store.mutate(m.id, failed)
    store.mutate(running[6].id, event_fn(RetryRequested(NOW)))  # waiting in story again
    store.mutate(running[9].id, event_fn(CancelRequested(NOW)))  # cancelled while running
    waiting = story_queue(empty_firestore)
    store.mutate(waiting[3].id, event_fn(CancelRequested(NOW)))  # cancelled while waiting
    # A priority changed in place: the movie's buckets move with it.
    target = waiting[-1]
    store.mutate(
        target.id,
        lambda m: Decision(
            m.model_copy(
                update={"request": m.request.model_copy(update={"priority": Priority.high})}
            )
        ),
    )
    store.claim(Stage.images, 2, NOW, event_fn(Claimed(Stage.images, NOW)))
    assert assert_exact(store, empty_firestore) >= 36
    assert store.counts()[Stage.images].running == 2


def shard_of_doc(db: Any, movie_id: str) -> int | None:
    shard = db.collection("movies").document(movie_id).get().get("count_shard")
    return None if shard is None else int(shard) + 1  # truthy for shard 0 too


def reads_of_position(store: FirestoreMovieStore, m: Movie) -> tuple[int, Any]:
    before = METER.snapshot().get("firestore.reads", 0)
    answer = store.counters.position(m, Stage.story)
    return METER.snapshot().get("firestore.reads", 0) - before, answer


def reads_of_ahead(store: FirestoreMovieStore, m: Movie) -> tuple[int, int]:
    before = METER.snapshot().get("firestore.reads", 0)
    ahead = store.ahead(m, Stage.story)
    return METER.snapshot().get("firestore.reads", 0) - before, ahead


def test_a_shallow_queue_writes_no_counter_and_a_position_is_four_aggregations(
    empty_firestore: Any,
) -> None:
    store = FirestoreMovieStore(client=empty_firestore)
    ms = [movie(seconds=i * 0.5) for i in range(60)]
    for m in ms:
        store.create(m, idempotency_key=None, fingerprint="f")
    assert not list(empty_firestore.collection("queue_buckets").stream())
    for m in (ms[0], ms[-1]):
        reads, answer = reads_of_position(store, m)
        assert reads == answer.billed_reads == 4 and answer.ahead == ms.index(m)
        assert reads_of_ahead(store, m) == (2, ms.index(m))  # without the totals
    before = METER.snapshot().get("firestore.reads", 0)
    running = store.running_counts()  # the ETA's: a count() a stage, not three
    assert METER.snapshot().get("firestore.reads", 0) - before == 3
    assert running == {s: c.running for s, c in store.counts().items()}


def test_a_deep_queue_position_is_eight_aggregations_whatever_the_depth(
    empty_firestore: Any,
) -> None:
    store = FirestoreMovieStore(client=empty_firestore, deep_after=10)
    ms = [movie(seconds=i * 0.5) for i in range(60)]
    for m in ms:
        store.create(m, idempotency_key=None, fingerprint="f")
    assert {shard_of_doc(empty_firestore, m.id) is None for m in ms[:10]} == {True}
    assert {shard_of_doc(empty_firestore, m.id) is None for m in ms[10:]} == {False}
    for m in (ms[0], ms[12], ms[-1]):
        reads, answer = reads_of_position(store, m)
        assert reads == answer.billed_reads == 8 and answer.ahead == ms.index(m)
        assert reads_of_ahead(store, m) == (6, ms.index(m))
        # The 10-second bucket's count matched only its own movies, not the queue.
        assert answer.matched["own_10s"] <= 20
    assert assert_exact(store, empty_firestore) == 60


def test_the_sweep_deletes_emptied_buckets_and_positions_stay_exact(
    empty_firestore: Any,
) -> None:
    store = FirestoreMovieStore(client=empty_firestore, counter_shards=2, deep_after=0)
    for offset in OFFSETS:
        store.create(movie(seconds=offset), idempotency_key=None, fingerprint="f")
    (first, *_) = store.claim(Stage.story, 4, NOW, event_fn(Claimed(Stage.story, NOW)))
    buckets = empty_firestore.collection("queue_buckets")
    emptied = {d.id for d in buckets.stream() if d.get("n") == 0}
    assert emptied  # the first two arrived within one 10-second bucket
    assert store.prune() == len(emptied)
    assert all(d.get("n") > 0 for d in buckets.stream())
    assert store.prune() == 0
    # Waiting again after a failure: its buckets come back as they were deleted.
    store.mutate(first.movie.id, event_fn(StageFailed(Stage.story, 1, "x", "y", False, NOW)))
    store.mutate(first.movie.id, event_fn(RetryRequested(NOW)))
    assert emptied & {d.id for d in buckets.stream()}
    assert assert_exact(store, empty_firestore) == len(OFFSETS) - 3
