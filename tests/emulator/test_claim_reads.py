"""What a Firestore claim reads (billed documents), on the emulator: no more than it can use."""

from __future__ import annotations

import functools
import random
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest

from deepflix.adapters.gcp.firestore_docs import from_document
from deepflix.adapters.gcp.firestore_store import FirestoreMovieStore
from deepflix.metering import METER
from deepflix.pipeline.events import Claimed, StageSucceeded
from deepflix.pipeline.models import STAGES, Movie, Stage, StageStatus
from deepflix.pipeline.service import Pipeline
from deepflix.pipeline.transitions import Decision, apply
from tests.factories import CONFIG, T0, movie
from tests.pipeline_fakes import Recorder

pytestmark = pytest.mark.emulator
LATER = T0 + timedelta(hours=1)
LIMIT = 20  # twenty slot shards of one slot (the default target rate needs 300)


def claimed(m: Movie) -> Decision:
    return apply(m, Claimed(Stage.story, LATER), CONFIG)


def reads_of(work: Callable[[], Any]) -> tuple[Any, int]:
    before = METER.snapshot().get("firestore.reads", 0)
    out = work()
    return out, METER.snapshot().get("firestore.reads", 0) - before


def claim(store: FirestoreMovieStore, fn: Callable[[Movie], Decision] = claimed) -> list[Decision]:
    return store.claim(Stage.story, LIMIT, LATER, fn)


def free_one(store: FirestoreMovieStore, n: int) -> None:
    victim = store.running(Stage.story)[0]
    done = LATER + timedelta(seconds=n + 1)
    store.mutate(victim.id, lambda m: apply(m, StageSucceeded(Stage.story, 1, (), done), CONFIG))


@pytest.fixture
def full(empty_firestore: Any) -> FirestoreMovieStore:
    """A stage whose 20 slots are taken, 30 movies still waiting, seen full once."""
    store = FirestoreMovieStore(client=empty_firestore)
    for i in range(LIMIT + 30):
        m = movie(seconds=i)
        store.create(m, idempotency_key=None, fingerprint=m.id)
    assert len(claim(store)) == LIMIT
    assert claim(store) == []  # lists the shards once: this process knows them all now
    return store


def test_a_claim_of_a_full_stage_reads_one_document(full: FirestoreMovieStore) -> None:
    got, reads = reads_of(lambda: claim(full))
    assert got == []
    assert reads == 1  # the empty query of shards with room, no head of the queue


def test_a_refill_reads_the_freed_shard_and_the_one_movie_it_takes(
    full: FirestoreMovieStore,
) -> None:
    for n in range(3):
        free_one(full, n)
        got, reads = reads_of(lambda: claim(full))
        assert len(got) == 1
        assert reads == 2, f"refill {n}: {reads} billed reads for one free slot"
    assert len(full.running(Stage.story)) == LIMIT


def test_two_free_slots_read_two_shards_and_two_movies(full: FirestoreMovieStore) -> None:
    free_one(full, 0)
    free_one(full, 1)
    got, reads = reads_of(lambda: claim(full))
    assert len(got) == 2
    assert reads == 4


def test_after_a_lost_race_claims_spread_over_more_of_the_head(
    full: FirestoreMovieStore, empty_firestore: Any
) -> None:
    """A claim whose commit fails because another process changed what it read retries;
    from then on this process's claims read as many more ready movies as they have free
    slots and take them at random, so parallel claims seldom meet on one movie."""
    free_one(full, 0)
    free_one(full, 1)
    calls: list[str] = []

    def racing(m: Movie) -> Decision:
        if not calls:  # another process writes the movie between the read and the commit
            doc = empty_firestore.collection("movies").document(m.id)
            doc.update({"touched_by": "another process"})
        calls.append(m.id)
        return claimed(m)

    got, _ = reads_of(lambda: claim(full, racing))
    assert len(got) == 2
    assert len(calls) > 2  # the first try lost, the retry claimed both
    random.seed(17)  # the random choices below, not the Firestore reads, are what vary
    picks = []
    for n in range(8):
        free_one(full, 2 + n)
        head = [m.id for m in waiting(full)[:2]]
        got, reads = reads_of(lambda: claim(full))
        (d,) = got
        assert d.movie.id in head  # one of the two movies read, never one further back
        picks.append(d.movie.id == head[0])
        # The freed shard (the one shard with room: one query), two ready movies.
        assert reads == 3
    assert not all(picks)  # not always the head: parallel claims would all take it


def waiting(store: FirestoreMovieStore) -> list[Movie]:
    q = store._queue_order(store._waiting(Stage.story)).limit(5)
    return [from_document(s.to_dict()) for s in q.stream()]


def test_a_dispatch_reads_the_pauses_only_when_it_has_a_movie_to_claim(
    empty_firestore: Any,
) -> None:
    store = FirestoreMovieStore(client=empty_firestore)
    rec = Recorder()
    pipeline = Pipeline(store=store, tasks=rec, events=rec, jobs=rec, config=CONFIG)
    for stage in STAGES:
        got, reads = reads_of(functools.partial(pipeline.dispatch, stage))
        assert got == 0 and reads == 1  # the empty head of its queue: no pause document

    pipeline.pause_admission()
    store.set_stage_paused(Stage.images, True)
    m = movie()
    store.create(m, idempotency_key=None, fingerprint=m.id)
    assert pipeline.dispatch(Stage.story) == 0  # paused admission holds it
    pipeline.resume_admission()  # ...which dispatches it
    assert pipeline.get(m.id).stages[Stage.story].status is StageStatus.running
    done = StageSucceeded(Stage.story, 1, (), LATER + timedelta(seconds=1))
    pipeline.report(m.id, done)  # its images request waits: that queue is paused
    assert pipeline.get(m.id).stages[Stage.images].status is StageStatus.waiting
