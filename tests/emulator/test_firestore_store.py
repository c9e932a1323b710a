"""FirestoreMovieStore on the emulator: documents, contention, and outages."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import pytest
from google.auth.credentials import AnonymousCredentials
from google.cloud.firestore import FieldFilter

from deepflix.adapters.gcp.firestore_docs import index_fields
from deepflix.adapters.gcp.firestore_store import FirestoreMovieStore
from deepflix.metering import METER
from deepflix.pipeline.errors import Unavailable
from deepflix.pipeline.eta import duration_bin, window_of
from deepflix.pipeline.events import Claimed, StageSucceeded
from deepflix.pipeline.models import Movie, Stage, StageStatus
from deepflix.pipeline.transitions import Decision, apply
from devtools import emulators as servers
from devtools.emulators import PROJECT, Emulator
from tests.factories import CONFIG, T0, movie

pytestmark = pytest.mark.emulator
LATER = T0 + timedelta(hours=1)


def claim_fn(stage: Stage) -> Callable[[Movie], Decision]:
    return lambda m: apply(m, Claimed(stage, LATER), CONFIG)


def succeed_fn(stage: Stage, at: datetime) -> Callable[[Movie], Decision]:
    return lambda m: apply(m, StageSucceeded(stage, 1, (), at), CONFIG)


def new_client(address: str) -> Any:
    from google.cloud import firestore

    with servers.env("FIRESTORE_EMULATOR_HOST", address):
        return firestore.Client(project=PROJECT, credentials=AnonymousCredentials())


def test_the_document_is_the_movie_as_json_plus_its_index_fields(empty_firestore: Any) -> None:
    store = FirestoreMovieStore(client=empty_firestore)
    m = movie(priority="high")
    store.create(m, idempotency_key="key-1", fingerprint="f")
    doc = empty_firestore.collection("movies").document(m.id).get().to_dict()
    assert {k: doc[k] for k in m.model_dump(mode="json")} == m.model_dump(mode="json")
    assert {k: doc[k] for k in index_fields(m)} == index_fields(m)
    assert doc["prio"] == 0 and doc["waiting_stage"] == "story" and doc["running_stage"] is None
    keys = [d.to_dict() for d in empty_firestore.collection("idempotency").stream()]
    assert keys == [{"movie_id": m.id, "fingerprint": "f"}]  # keyed by hash, not the key


def test_journal_slots_stats_and_admission_live_in_their_documents(empty_firestore: Any) -> None:
    store = FirestoreMovieStore(client=empty_firestore)
    m = movie()
    store.create(m, idempotency_key=None, fingerprint="f")
    assert len(store.claim(Stage.story, 2, LATER, claim_fn(Stage.story))) == 1
    shard = empty_firestore.collection("movies").document(m.id).get().get("slot_shard")
    assert shard in (0, 1)  # a limit of 2 is two shards of one slot
    queue = empty_firestore.collection("queues").document(f"story-{shard}")
    assert queue.get().get("running") == [m.id]
    claimed = queue.get().to_dict()
    writes = METER.snapshot().get("firestore.writes", 0)
    store.mutate(m.id, succeed_fn(Stage.story, LATER + timedelta(seconds=3)))
    # The movie and its slot shard, whose free carries the durations: no write of their own.
    assert METER.snapshot().get("firestore.writes", 0) - writes == 2
    shard_doc = queue.get().to_dict()
    # The success's durations ride on the write that frees its slot (ADR 0031): the slot
    # shard is the stage's stats shard, and no document of its own is written.
    assert list(empty_firestore.collection("stats").stream()) == []
    # The ETA's histogram: in the window of its end, 3 scenes, one 3 s run; the windows
    # past those read are deleted by the same write, so none shows.
    window = str(window_of(LATER + timedelta(seconds=3)))
    recent = {window: {"3": {str(duration_bin(3.0)): 1}}}
    # Stamped with its commit, so readers ask only for shards whose statistics changed; the
    # claim's write did not stamp it.
    assert "stats_updated" not in claimed and shard_doc.pop("stats_updated") is not None
    assert shard_doc == {
        "stage": "story",
        "running": [],
        "room": True,
        "claims": 1,  # the slots ever claimed here: claims take the least used first
        "sum_s": pytest.approx(3.0),
        "n": 1,
        "recent": recent,
    }
    assert store.mean_durations() == {Stage.story: pytest.approx(3.0)}
    assert [(e["stage"], e["before"], e["after"]) for e in store.journal(m.id)] == [
        ("story", "waiting", "running"),
        ("story", "running", "succeeded"),
        ("images", "pending", "waiting"),
    ]
    doc = empty_firestore.collection("movies").document(m.id).get().to_dict()
    assert len(doc["journal"]) == doc["journal_seq"] == 3  # in the movie's own document
    assert store.admission_paused() is False
    store.set_admission_paused(True)
    assert empty_firestore.collection("control").document("admission").get().get("paused")
    assert store.admission_paused() is True


def test_admission_pause_is_read_once_a_second_and_again_after_this_process_sets_it(
    empty_firestore: Any,
) -> None:
    store = FirestoreMovieStore(client=empty_firestore)
    other = FirestoreMovieStore(client=empty_firestore)  # another process's instance
    clock = [0.0]
    for s in (store, other):
        s.monotonic_pauses = lambda: clock[0]  # type: ignore[method-assign]

    def reads_of(ask: Callable[[], bool]) -> tuple[int, bool]:
        before = METER.snapshot().get("firestore.reads", 0)
        answer = ask()
        return METER.snapshot().get("firestore.reads", 0) - before, answer

    assert reads_of(store.admission_paused) == (1, False)
    assert reads_of(store.admission_paused) == (0, False)  # every create asks: one read
    store.set_admission_paused(True)
    assert reads_of(store.admission_paused) == (1, True)  # its own change at once
    assert reads_of(other.admission_paused) == (1, True)
    other.set_admission_paused(False)
    assert reads_of(store.admission_paused) == (0, True)  # another's within the second
    clock[0] += 1.0
    assert reads_of(store.admission_paused) == (1, False)


def test_parallel_mutations_lose_no_update(empty_firestore: Any) -> None:
    store = FirestoreMovieStore(client=empty_firestore)
    m = movie()
    store.create(m, idempotency_key=None, fingerprint="f")
    barrier = threading.Barrier(8)

    def add(i: int) -> None:
        barrier.wait()
        store.mutate(
            m.id,
            lambda x: Decision(
                x.model_copy(update={"artifacts": {**x.artifacts, f"a{i}": f"p{i}"}})
            ),
        )

    threads = [threading.Thread(target=add, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    stored = store.get(m.id)
    assert stored is not None
    assert stored.artifacts == {f"a{i}": f"p{i}" for i in range(8)}


def test_dispatchers_with_their_own_clients_never_over_admit(
    firestore_emulator: Emulator, empty_firestore: Any
) -> None:
    """Four instances, each with its own connection, claim while slots are being freed."""
    stores = [FirestoreMovieStore(client=new_client(firestore_emulator.address)) for _ in range(4)]
    for i in range(24):
        m = movie(seconds=i)
        stores[0].create(m, idempotency_key=None, fingerprint=m.id)
    limit = 3
    claimed: list[str] = []
    lock = threading.Lock()

    def dispatcher(store: FirestoreMovieStore, rounds: int) -> None:
        for _ in range(rounds):
            got = store.claim(Stage.story, limit, LATER, claim_fn(Stage.story))
            with lock:
                claimed.extend(t.movie.id for t in got)

    def run_all(rounds: int) -> None:
        threads = [threading.Thread(target=dispatcher, args=(s, rounds)) for s in stores]
        for t in threads:
            t.start()
        for t in threads:
            t.join()

    run_all(3)
    assert len(claimed) == limit
    for round_ in range(3):
        # Free two slots while the dispatchers race for them.
        finishing = [m.id for m in stores[0].running(Stage.story)][:2]
        done = LATER + timedelta(seconds=round_ + 1)
        succeed = succeed_fn(Stage.story, done)
        finish = [threading.Thread(target=stores[1].mutate, args=(i, succeed)) for i in finishing]
        for t in finish:
            t.start()
        for t in finish:
            t.join()
        run_all(1)  # one claim each, no second round: the first claims fill both slots
        running = stores[2].running(Stage.story)
        assert len(running) == limit, f"round {round_}: {len(running)} running"
        eq = FieldFilter("stage", "==", "story")
        shards = empty_firestore.collection("queues").where(filter=eq).stream()
        slots = [i for shard in shards for i in shard.get("running")]
        assert sorted(slots) == sorted(m.id for m in running)
    assert len(claimed) == len(set(claimed)) == limit + 3 * 2


def test_a_slot_another_instance_frees_is_taken_by_the_next_claim(
    firestore_emulator: Emulator, empty_firestore: Any
) -> None:
    """More slot shards than a claim reads at random: the room another instance frees is
    found by its shard's free count, so this instance's very next claim takes it."""
    a, b = (
        FirestoreMovieStore(client=new_client(firestore_emulator.address), max_probes=1)
        for _ in range(2)
    )
    limit = 8  # eight shards of one slot
    for i in range(limit + 4):
        m = movie(seconds=i)
        a.create(m, idempotency_key=None, fingerprint=m.id)
    assert len(a.claim(Stage.story, limit, LATER, claim_fn(Stage.story))) == limit
    assert a.claim(Stage.story, limit, LATER, claim_fn(Stage.story)) == []
    for round_ in range(3):
        (victim, *_) = b.running(Stage.story)
        b.mutate(victim.id, succeed_fn(Stage.story, LATER + timedelta(seconds=round_ + 1)))
        got = a.claim(Stage.story, limit, LATER, claim_fn(Stage.story))
        assert len(got) == 1, f"round {round_}: the freed slot was not found"
        assert len(b.running(Stage.story)) == limit


def test_an_unreachable_firestore_is_unavailable_not_an_error(tmp_path: Any) -> None:
    store = FirestoreMovieStore(
        client=new_client(f"127.0.0.1:{servers.free_port()}"), rpc_timeout_s=1
    )
    started = time.monotonic()
    with pytest.raises(Unavailable):
        store.get("m1")
    with pytest.raises(Unavailable):
        store.create(movie(), idempotency_key="k", fingerprint="f")
    with pytest.raises(Unavailable):
        store.claim(Stage.story, 1, LATER, claim_fn(Stage.story))
    assert time.monotonic() - started < 15


def test_a_waiting_movie_backing_off_is_skipped_not_blocking(empty_firestore: Any) -> None:
    store = FirestoreMovieStore(client=empty_firestore, scan_page=2)
    early = [movie(seconds=i) for i in range(5)]
    late = movie(seconds=10)
    for m in early:
        # A retry backing off: still first in the queue order, not ready until later.
        stages = dict(m.stages)
        stages[Stage.story] = stages[Stage.story].model_copy(
            update={"ready_at": LATER + timedelta(minutes=5)}
        )
        store.create(m.model_copy(update={"stages": stages}), idempotency_key=None, fingerprint="f")
    store.create(late, idempotency_key=None, fingerprint="f")
    (t,) = store.claim(Stage.story, 1, LATER, claim_fn(Stage.story))
    assert t.movie.id == late.id
    assert t.movie.stages[Stage.story].status is StageStatus.running


def test_duration_histograms_are_read_whole_once_then_only_the_shards_updated(
    empty_firestore: Any,
) -> None:
    store = FirestoreMovieStore(client=empty_firestore)
    histograms = store.eta_durations
    histograms.ttl_s, histograms.overlap = 0.0, timedelta(0)  # every read asks again
    limit = 3  # three slot shards of one slot

    def claim(n: int) -> list[str]:
        for m in [movie(seconds=i) for i in range(n)]:
            store.create(m, idempotency_key=None, fingerprint=m.id)
        return [d.movie.id for d in store.claim(Stage.story, limit, LATER, claim_fn(Stage.story))]

    def succeed(ids: list[str], seconds: float) -> None:
        for i in ids:
            store.mutate(i, succeed_fn(Stage.story, LATER + timedelta(seconds=seconds)))

    def reads_of_history() -> tuple[int, Any]:
        before = METER.snapshot().get("firestore.reads", 0)
        history = store.duration_history()
        return METER.snapshot().get("firestore.reads", 0) - before, history

    first = claim(3)
    assert len(first) == 3
    assert reads_of_history() == (1, {})  # claimed shards hold no statistics: not read
    succeed(first, 4.0)  # each frees its own shard, and its duration rides on that write
    assert reads_of_history()[0] == 3
    assert reads_of_history()[0] == 1  # nothing updated: the least a query is billed
    again = claim(3)
    assert len(again) == 3
    assert reads_of_history()[0] == 1  # claims write the shards without waking the readers
    succeed(again[:1], 8.0)
    reads, history = reads_of_history()
    assert reads == 1  # the one shard whose statistics changed since
    fresh = FirestoreMovieStore(client=empty_firestore).duration_history()
    assert history == fresh
    (bins,) = history.values()
    assert bins == {duration_bin(4.0): 3, duration_bin(8.0): 1}
    assert store.mean_durations() == {Stage.story: pytest.approx(5.0)}


def test_runs_in_the_shards_of_a_former_larger_limit_still_count(empty_firestore: Any) -> None:
    """Shards past a lowered limit are never claimed in again, but the runs that free them
    (and those that did before) count in the means and the histograms."""
    store = FirestoreMovieStore(client=empty_firestore)
    for i in range(4):
        m = movie(seconds=i)
        store.create(m, idempotency_key=None, fingerprint=m.id)
    ids = [d.movie.id for d in store.claim(Stage.story, 3, LATER, claim_fn(Stage.story))]
    assert len(ids) == 3
    by_shard = {
        empty_firestore.collection("movies").document(i).get().get("slot_shard"): i for i in ids
    }
    assert set(by_shard) == {0, 1, 2}
    store.mutate(by_shard[0], succeed_fn(Stage.story, LATER + timedelta(seconds=2)))
    (last,) = store.claim(Stage.story, 1, LATER, claim_fn(Stage.story))  # limit now 1: shard 0
    # Shards 1 and 2 are past the limit now; the runs still in them finish there.
    for seconds, k in ((3, 1), (4, 2)):
        store.mutate(by_shard[k], succeed_fn(Stage.story, LATER + timedelta(seconds=seconds)))
    store.mutate(last.movie.id, succeed_fn(Stage.story, LATER + timedelta(seconds=9)))
    fresh = FirestoreMovieStore(client=empty_firestore)
    assert fresh.mean_durations() == {Stage.story: pytest.approx((2 + 3 + 4 + 9) / 4)}
    (bins,) = fresh.duration_history().values()
    assert sum(bins.values()) == 4
