"""Firestore queue counters, the pure part: what each change adds, the ranges a position sums."""

from __future__ import annotations

import random
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest

from deepflix.adapters.gcp import queue_counts as qc
from deepflix.adapters.gcp.queue_counts import CounterDoc
from deepflix.pipeline.events import (
    CancelRequested,
    Claimed,
    RetryRequested,
    StageFailed,
    StageSucceeded,
)
from deepflix.pipeline.models import Movie, Priority, Stage, arrival_key
from deepflix.pipeline.transitions import apply
from tests.factories import CONFIG, T0, movie

pytestmark = pytest.mark.unit
LATER = T0 + timedelta(hours=1)


def fields(changes: Counter[tuple[CounterDoc, str]]) -> dict[tuple[str, str], int]:
    """The changes as (document id, field) -> increment."""
    return {(doc.id, name): n for (doc, name), n in changes.items()}


def test_bucket_starts_are_exact_at_a_boundary() -> None:
    edge = datetime(2026, 11, 29, 12, 0, 10, tzinfo=UTC)
    # A float timestamp would round this microsecond up onto the boundary.
    assert qc.bucket_start(edge - timedelta(microseconds=1), 10) == edge.timestamp() - 10
    assert qc.bucket_start(edge, 10) == edge.timestamp()
    assert qc.bucket_start(edge, 100_000) % 100_000 == 0


def test_a_movie_moves_through_the_counters_and_leaves_nothing_behind() -> None:
    m = movie(priority="low")
    created = fields(qc.deltas(None, m, old_shard=None, new_shard=3))
    assert all(f == "n" for _, f in created)  # no per-stage count: the widest buckets sum it
    assert sorted(n for (doc, f), n in created.items() if f == "n") == [1, 1, 1]
    assert all(doc.startswith("story-") for doc, _ in created)
    claimed = apply(m, Claimed(Stage.story, LATER), CONFIG).movie
    step = fields(qc.deltas(m, claimed, old_shard=3, new_shard=None))
    assert all(f != "running" for _, f in step)  # running movies are counted from the index
    assert sorted(n for (_, f), n in step.items() if f == "n") == [-1, -1, -1]
    done = apply(claimed, StageSucceeded(Stage.story, 1, (), LATER), CONFIG).movie
    step = fields(qc.deltas(claimed, done, old_shard=None, new_shard=5))
    assert sorted(step.values()) == [1, 1, 1]
    assert all(doc.startswith("images-") for doc, _ in step)  # freeing story writes nothing
    assert {doc.split("-")[0] for (doc, f) in step if f == "n"} == {"images"}
    total = qc.deltas(None, m, old_shard=None, new_shard=3)
    for old, new, a, b in ((m, claimed, 3, None), (claimed, done, None, 5), (done, None, 5, None)):
        total.update(qc.deltas(old, new, old_shard=a, new_shard=b))
    assert not +total and not -total  # every increment undone


def test_failure_retry_cancel_and_a_priority_change_move_the_counts() -> None:
    m = movie()
    running = apply(m, Claimed(Stage.story, LATER), CONFIG).movie
    failed = apply(running, StageFailed(Stage.story, 1, "boom", "x", False, LATER), CONFIG).movie
    assert failed.waiting_stage is None and failed.running_stage is None
    retried = apply(failed, RetryRequested(LATER), CONFIG).movie
    assert retried.waiting_stage is Stage.story
    shard = 2
    back_in = fields(qc.deltas(failed, retried, old_shard=None, new_shard=shard))
    assert sorted(back_in.values()) == [1, 1, 1]
    assert all(doc.startswith("story-") and doc.endswith(f"-{shard}") for doc, _ in back_in)
    cancelled = apply(retried, CancelRequested(LATER), CONFIG).movie
    assert qc.deltas(cancelled, None, old_shard=None, new_shard=None) == Counter()
    back = qc.deltas(retried, cancelled, old_shard=shard, new_shard=None)
    assert back == Counter({k: -v for k, v in qc.counted(retried, shard).items()})
    # A new priority moves the movie's buckets (their keys start with the priority).
    raised = m.request.model_copy(update={"priority": Priority.high})
    high = m.model_copy(update={"request": raised})
    moved = fields(qc.deltas(m, high, old_shard=1, new_shard=1))
    assert sorted(moved.values()) == [-1, -1, -1, 1, 1, 1]
    assert qc.deltas(m, m, old_shard=1, new_shard=1) == Counter()
    # A movie waiting uncounted (its queue was shallow when it entered) moves no counter.
    assert qc.deltas(m, high, old_shard=None, new_shard=None) == Counter()
    assert qc.counted(m, None) == Counter()


def test_a_document_is_written_once_with_every_field_it_counts() -> None:
    a, b = movie(), movie()
    changes = qc.deltas(None, a, old_shard=None, new_shard=0) + qc.deltas(
        None, b, old_shard=None, new_shard=0
    )
    docs = qc.by_document(changes)
    assert len(docs) == len(qc.WIDTHS)  # one bucket per width, shared by both
    assert all(v == {"n": 2} for d, v in docs.items() if d.collection == qc.BUCKETS)


def test_the_ranges_and_the_own_bucket_count_every_movie_ahead_once() -> None:
    """The position's decomposition against a sort, on arrivals spread over the widths."""
    rng = random.Random(7)
    base = datetime(2026, 11, 27, 23, 59, 0, tzinfo=UTC)
    ms: list[Movie] = []
    for _ in range(400):
        # Clustered on boundaries of every width, with equal arrivals now and then.
        at = base + timedelta(seconds=rng.choice([0, 9.99, 10, 999, 1000, 99_999.5, 100_000]))
        at += timedelta(microseconds=rng.choice([0, 0, 1, 500_000, 3_000_000]))
        prio = rng.choice(list(Priority))
        ms.append(movie(at=at, priority=prio))
    counters: Counter[tuple[CounterDoc, str]] = Counter()
    for m in ms:
        counters.update(qc.counted(m, qc.shard_of(m.id, 3)))
    order = sorted(ms, key=lambda m: m.sort_key)
    for expected, m in enumerate(order):
        ahead = 0
        for width, since, before in qc.bucket_ranges(m):
            ahead += sum(
                n
                for (doc, name), n in counters.items()
                if name == "n"
                and dict(doc.labels)["width"] == width
                and (since is None or int(str(dict(doc.labels)["key"])) >= since)
                and int(str(dict(doc.labels)["key"])) < before
            )
        own_start = qc.own_bucket_arrival(m)
        ahead += sum(
            1
            for x in ms
            if x.request.priority is m.request.priority
            and own_start <= arrival_key(x.created_at)
            and (arrival_key(x.created_at), x.id) < (arrival_key(m.created_at), m.id)
        )
        assert ahead == expected, m.id
