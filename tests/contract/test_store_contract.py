"""MovieStore contract: documents, idempotency, transactions, atomic claims, position, listing."""

from __future__ import annotations

import base64
import threading
from datetime import datetime, timedelta

import pytest

from deepflix.pipeline.errors import BadRequest
from deepflix.pipeline.eta import (
    HALF_LIFE_WINDOWS,
    WINDOW_S,
    Durations,
    duration_bin,
    recent,
    window_of,
)
from deepflix.pipeline.events import Claimed, StageSucceeded
from deepflix.pipeline.models import Movie, MovieStatus, Stage, StageStatus, arrival_key
from deepflix.pipeline.ports import IdempotencyConflict, MovieStore, QueueCounts
from deepflix.pipeline.transitions import Decision, apply
from tests.factories import CONFIG, T0, movie

# Tier marks: on the adapter parameters (conftest.py), `contract` or `emulator`.
LATER = T0 + timedelta(hours=1)


def claim(store: MovieStore, stage: Stage, limit: int) -> list[Decision]:
    return store.claim(stage, limit, LATER, lambda m: apply(m, Claimed(stage, LATER), CONFIG))


def test_create_and_get(store: MovieStore) -> None:
    m = movie()
    assert store.create(m, idempotency_key=None, fingerprint="f") == m
    assert store.get(m.id) == m
    assert store.get("missing") is None


def test_idempotency_key_returns_the_first_movie_or_conflicts(store: MovieStore) -> None:
    first, second = movie(), movie()
    assert store.create(first, idempotency_key="k1", fingerprint="a").id == first.id
    assert store.create(second, idempotency_key="k1", fingerprint="a").id == first.id
    assert store.get(second.id) is None
    with pytest.raises(IdempotencyConflict) as info:
        store.create(second, idempotency_key="k1", fingerprint="b")
    assert info.value.movie_id == first.id


def test_idempotency_keys_are_each_owners_own(store: MovieStore) -> None:
    """Another owner's same key (and body) makes their own movie: it never returns, nor
    (by a conflict) names, the first owner's."""
    alice = movie().model_copy(update={"owner": "alice"})
    bob, bob_again = (movie().model_copy(update={"owner": "bob"}) for _ in range(2))
    assert store.create(alice, idempotency_key="shared", fingerprint="a").id == alice.id
    assert store.create(bob, idempotency_key="shared", fingerprint="a").id == bob.id
    assert store.get(bob.id) == bob
    # Bob's key now names Bob's movie; a new body conflicts with it, not with Alice's.
    with pytest.raises(IdempotencyConflict) as info:
        store.create(bob_again, idempotency_key="shared", fingerprint="b")
    assert info.value.movie_id == bob.id
    assert store.create(bob_again, idempotency_key="shared", fingerprint="a").id == bob.id


def test_mutate_saves_only_applied_transitions(store: MovieStore) -> None:
    m = movie()
    store.create(m, idempotency_key=None, fingerprint="f")
    t = store.mutate(m.id, lambda x: apply(x, Claimed(Stage.story, LATER), CONFIG))
    assert t is not None and t.applied
    stored = store.get(m.id)
    assert stored is not None and stored.stages[Stage.story].status is StageStatus.running
    again = store.mutate(m.id, lambda x: apply(x, Claimed(Stage.story, LATER), CONFIG))
    assert again is not None and not again.applied
    assert store.mutate("missing", lambda x: Decision(x)) is None


def test_claim_follows_priority_then_arrival_and_respects_the_limit(store: MovieStore) -> None:
    low = movie(seconds=0, priority="low")
    normal = movie(seconds=1)
    high_late = movie(seconds=3, priority="high")
    high = movie(seconds=2, priority="high")
    for m in (low, normal, high_late, high):
        store.create(m, idempotency_key=None, fingerprint=m.id)
    assert [t.movie.id for t in claim(store, Stage.story, 2)] == [high.id, high_late.id]
    assert claim(store, Stage.story, 2) == []  # both slots busy
    assert [t.movie.id for t in claim(store, Stage.story, 4)] == [normal.id, low.id]


def test_waiting_heads_are_each_prioritys_first_arrival(store: MovieStore) -> None:
    first_low, low = movie(seconds=0, priority="low"), movie(seconds=1, priority="low")
    high, high_late = movie(seconds=3, priority="high"), movie(seconds=4, priority="high")
    for m in (low, high_late, first_low, high):
        store.create(m, idempotency_key=None, fingerprint=m.id)
    heads = store.waiting_heads(Stage.story)
    assert sorted(h.id for h in heads) == sorted([first_low.id, high.id])
    assert store.waiting_heads(Stage.images) == []


def test_claim_skips_movies_still_backing_off(store: MovieStore) -> None:
    m = movie()
    store.create(m, idempotency_key=None, fingerprint="f")
    assert store.claim(Stage.story, 1, T0 - timedelta(seconds=1), lambda x: Decision(x)) == []


def test_parallel_claims_never_over_admit(store: MovieStore) -> None:
    for i in range(40):
        m = movie(seconds=i)
        store.create(m, idempotency_key=None, fingerprint=m.id)
    claimed: list[str] = []
    lock = threading.Lock()
    barrier = threading.Barrier(8)

    def worker() -> None:
        barrier.wait()
        for _ in range(5):
            got = claim(store, Stage.story, 3)
            with lock:
                claimed.extend(t.movie.id for t in got)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(claimed) == len(set(claimed)) == 3
    assert store.counts()[Stage.story].running == 3


def test_sixteen_parallel_claimers_fill_every_slot_without_a_sweep(store: MovieStore) -> None:
    """16 claimers at once, each claiming once and then once after every movie it finishes
    (a completion's refill), with no other dispatch: the running count, sampled after every
    claim, never exceeds the limit, and the refills alone admit every movie exactly once, so
    no freed slot was left unused while movies waited. The Firestore store here probes
    fewer slot shards than the limit has (conftest), so its claims must find freed room."""
    limit, n = 12, 48
    for i in range(n):
        m = movie(seconds=i)
        store.create(m, idempotency_key=None, fingerprint=m.id)
    claimed: list[str] = []
    samples: list[int] = []
    errors: list[BaseException] = []
    lock = threading.Lock()
    barrier = threading.Barrier(16)
    done = LATER + timedelta(seconds=2)

    def succeed(m: Movie) -> Decision:
        return apply(m, StageSucceeded(Stage.story, 1, (), done), CONFIG)

    def take() -> list[Decision]:
        got = claim(store, Stage.story, limit)
        running = len(store.running(Stage.story))
        with lock:
            claimed.extend(t.movie.id for t in got)
            samples.append(running)
        return got

    def worker() -> None:
        try:
            barrier.wait()
            held = take()
            while held:  # finish each movie held, then refill once: its slot is free again
                t = held.pop()
                store.mutate(t.movie.id, succeed)
                held += take()
        except BaseException as e:  # pragma: no cover - surfaced below
            errors.append(e)

    threads = [threading.Thread(target=worker) for _ in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert max(samples) <= limit
    assert len(claimed) == len(set(claimed)) == n
    assert store.counts()[Stage.story] == QueueCounts(0, 0)


def test_position_counts_only_those_ahead_in_the_same_queue(store: MovieStore) -> None:
    ms = [movie(seconds=i, priority=p) for i, p in enumerate(["normal", "low", "high", "normal"])]
    for m in ms:
        store.create(m, idempotency_key=None, fingerprint=m.id)
    assert store.position(ms[2], Stage.story) == (0, 4, 0)
    assert store.position(ms[0], Stage.story) == (1, 4, 0)
    assert store.position(ms[3], Stage.story) == (2, 4, 0)
    assert store.position(ms[1], Stage.story) == (3, 4, 0)
    claim(store, Stage.story, 1)
    assert store.position(ms[1], Stage.story) == (2, 3, 1)
    assert store.counts()[Stage.story].waiting == 3


def test_running_overdue_and_observed_durations(store: MovieStore) -> None:
    m = movie()
    store.create(m, idempotency_key=None, fingerprint="f")
    (t,) = claim(store, Stage.story, 1)
    assert [x.id for x in store.running(Stage.story)] == [m.id]
    deadline = t.movie.stages[Stage.story].deadline
    assert deadline is not None
    assert store.overdue(deadline - timedelta(seconds=1)) == []
    assert [x.id for x in store.overdue(deadline + timedelta(seconds=1))] == [m.id]
    done = LATER + timedelta(seconds=4)
    store.mutate(m.id, lambda x: apply(x, StageSucceeded(Stage.story, 1, (), done), CONFIG))
    assert store.mean_durations() == {Stage.story: pytest.approx(4.0)}
    scenes = m.request.scene_count
    window = window_of(done)
    assert store.duration_history() == {(Stage.story, scenes, window): {duration_bin(4.0): 1}}
    stored = store.get(m.id)
    assert stored is not None and stored.status is MovieStatus.images
    assert store.counts()[Stage.images].waiting == 1 and store.running(Stage.story) == []


def test_list_is_newest_first_and_pages(store: MovieStore) -> None:
    ms = [movie(seconds=i) for i in range(5)]
    for m in ms:
        store.create(m, idempotency_key=None, fingerprint=m.id)
    first = store.list(owner=None, limit=2, cursor=None)
    assert [m.id for m in first.movies] == [ms[4].id, ms[3].id] and first.next_cursor
    second = store.list(owner=None, limit=2, cursor=first.next_cursor)
    third = store.list(owner=None, limit=2, cursor=second.next_cursor)
    assert [m.id for m in second.movies + third.movies] == [ms[2].id, ms[1].id, ms[0].id]
    assert third.next_cursor is None
    assert store.list(owner="someone-else", limit=10, cursor=None).movies == []


def test_a_cursor_that_names_no_movie_is_refused(store: MovieStore) -> None:
    store.create(movie(), idempotency_key=None, fingerprint="f")
    for raw in (b"no-separator", f"{arrival_key(T0)}|".encode()):
        with pytest.raises(BadRequest):
            store.list(owner=None, limit=10, cursor=base64.urlsafe_b64encode(raw).decode())


def test_recent_runs_outweigh_older_ones_in_the_stored_history(store: MovieStore) -> None:
    # Stage runs of 10 s three half-lives before runs of 1 s: twice as many, they would
    # set the median if the store kept every run alike (pipeline/eta.recent).
    def run(n: int, at: datetime, seconds: float) -> None:
        ms = [movie(seconds=i) for i in range(n)]
        for m in ms:
            store.create(m, idempotency_key=None, fingerprint=m.id)
        claimed = Claimed(Stage.story, at)
        done = StageSucceeded(Stage.story, 1, (), at + timedelta(seconds=seconds))
        for t in store.claim(Stage.story, n, at, lambda m: apply(m, claimed, CONFIG)):
            store.mutate(t.movie.id, lambda x: apply(x, done, CONFIG))

    run(8, LATER, 10.0)
    run(4, LATER + timedelta(seconds=3 * HALF_LIFE_WINDOWS * WINDOW_S), 1.0)
    durations = Durations(recent(store.duration_history()))
    scenes = movie().request.scene_count
    assert durations.own(Stage.story, scenes, 0.5) == pytest.approx(1.0, rel=0.06)
