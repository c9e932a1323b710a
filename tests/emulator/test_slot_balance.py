"""Claims spread their writes evenly over a stage's slot shards (Firestore, on the emulator)."""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta
from typing import Any

import pytest
from google.cloud.firestore import FieldFilter

from deepflix.adapters.gcp.firestore_docs import slot_shards
from deepflix.adapters.gcp.firestore_store import FirestoreMovieStore
from deepflix.pipeline.events import Claimed, StageSucceeded
from deepflix.pipeline.models import Movie, Stage
from deepflix.pipeline.transitions import Decision, apply
from tests.factories import CONFIG, T0, movie

pytestmark = pytest.mark.emulator
LATER = T0 + timedelta(hours=1)
LIMIT = 10  # ten slot shards of one slot each


def claimed(m: Movie) -> Decision:
    return apply(m, Claimed(Stage.story, LATER), CONFIG)


def shard_of(client: Any, movie_id: str) -> int:
    return int(client.collection("movies").document(movie_id).get().get("slot_shard"))


def run_serially(
    store: FirestoreMovieStore, client: Any, movies: int, held: int = 0
) -> Counter[int]:
    """`held` movies claimed and kept running, then `movies` each created, claimed alone and
    finished before the next: the slot shard each of those took, counted."""
    for i in range(held):
        m = movie(seconds=i)
        store.create(m, idempotency_key=None, fingerprint=m.id)
    assert len(store.claim(Stage.story, LIMIT, LATER, claimed)) == held
    took: Counter[int] = Counter()
    for i in range(movies):
        m = movie(seconds=held + i)
        store.create(m, idempotency_key=None, fingerprint=m.id)
        (d,) = store.claim(Stage.story, LIMIT, LATER, claimed)
        took[shard_of(client, d.movie.id)] += 1
        finish(store, m.id, LATER + timedelta(seconds=i + 1))
    return took


def finish(store: FirestoreMovieStore, movie_id: str, at: datetime) -> None:
    """The movie's story stage succeeds at `at`: its slot is freed."""
    store.mutate(movie_id, lambda x: apply(x, StageSucceeded(Stage.story, 1, (), at), CONFIG))


def test_serial_claims_use_every_shard_within_one_of_the_mean(empty_firestore: Any) -> None:
    """Each claim takes a least used shard with room: 43 claims over 10 shards leave each
    with 4 or 5. A claim that took the first shard with room, or the first after a random
    start, wrote some shards twice the mean, and the busiest shard is the stage's ceiling."""
    assert len(slot_shards(LIMIT, 100.0)) == LIMIT
    store = FirestoreMovieStore(client=empty_firestore)
    took = run_serially(store, empty_firestore, 43)
    assert sorted(took) == list(range(LIMIT))
    assert set(took.values()) <= {4, 5}


def test_busy_shards_leave_the_others_evenly_used(empty_firestore: Any) -> None:
    """Three slots held by long jobs: the other seven shards share the claims evenly, and a
    claim after a free still finds the one freed slot's shard among them."""
    store = FirestoreMovieStore(client=empty_firestore)
    took = run_serially(store, empty_firestore, 28, held=3)
    busy = {shard_of(empty_firestore, m.id) for m in store.running(Stage.story)}
    assert len(busy) == 3 and not busy & set(took)
    assert sorted(took.values()) == [4] * 7


def test_a_shard_written_before_claim_counts_is_still_offered(empty_firestore: Any) -> None:
    """A slot shard without a claim count (written by an older version) is invisible to the
    room query, which orders by it; its next free gives it one (an increment of 0)."""
    store = FirestoreMovieStore(client=empty_firestore)
    taken = run_serially(store, empty_firestore, 1, held=LIMIT - 1)
    assert sum(taken.values()) == 1
    ref = empty_firestore.collection("queues")
    for snap in ref.where(filter=FieldFilter("stage", "==", "story")).stream():
        data = snap.to_dict()
        data.pop("claims")
        ref.document(snap.id).set(data)  # as an older version left them
    (victim, *_) = store.running(Stage.story)
    finish(store, victim.id, LATER + timedelta(seconds=99))
    fresh = FirestoreMovieStore(client=empty_firestore)
    fresh.slots._complete.update(store.slots._complete)  # no listing: only the room query
    m = movie(seconds=500)
    fresh.create(m, idempotency_key=None, fingerprint=m.id)
    (d,) = fresh.claim(Stage.story, LIMIT, LATER, claimed)
    assert d.movie.id == m.id


def test_an_instance_that_lists_shards_written_before_claim_counts_claims_in_them(
    empty_firestore: Any,
) -> None:
    """A new instance lists every shard once; those an older version wrote have no count
    and must read as 0, not fail the claim (a deploy over running shards)."""
    store = FirestoreMovieStore(client=empty_firestore)
    assert sum(run_serially(store, empty_firestore, 1, held=LIMIT - 1).values()) == 1
    ref = empty_firestore.collection("queues")
    for snap in ref.where(filter=FieldFilter("stage", "==", "story")).stream():
        data = snap.to_dict()
        data.pop("claims")
        ref.document(snap.id).set(data)  # as an older version left them
    fresh = FirestoreMovieStore(client=empty_firestore)  # has listed nothing yet
    m = movie(seconds=500)
    fresh.create(m, idempotency_key=None, fingerprint=m.id)
    (d,) = fresh.claim(Stage.story, LIMIT, LATER, claimed)
    assert d.movie.id == m.id
    assert len(fresh.running(Stage.story)) == LIMIT  # the limit holds
