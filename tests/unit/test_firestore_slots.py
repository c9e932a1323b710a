"""A claim's choice of slot shards and ready movies (firestore_slots.py), without Firestore."""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from deepflix.adapters.gcp.firestore_claim import RACE_MEMORY_S, ClaimReads
from deepflix.adapters.gcp.firestore_slots import ClaimTurns, SlotFinder, spread
from deepflix.adapters.gcp.firestore_txn import Txn
from deepflix.pipeline.models import Stage

pytestmark = pytest.mark.unit


@dataclass
class Ref:
    path: str


@dataclass
class Snap:
    id: str
    data: dict[str, Any] = field(default_factory=dict)
    update_time: int = 0
    exists: bool = True

    @property
    def reference(self) -> Ref:
        return Ref(f"queues/{self.id}")

    def get(self, name: str) -> Any:
        return self.data.get(name)


class Db:
    def batch(self) -> object:
        return object()


def test_a_shard_read_again_full_is_dropped_not_kept_with_its_older_list() -> None:
    """A shard seen with room and then, in the same claim, full: keeping the first list
    with the second version would let the claim's guarded write pass over a slot taken
    in between (over-admission)."""
    finder = SlotFinder(db=Db, rpc={}, max_probes=2)
    tx = Txn(Db(), rpc={}, shards=1)
    caps = [1, 1]
    room: dict[int, list[str]] = {}
    finder._keep(tx, Stage.story, [Snap("story-0", {"running": []}, 1)], caps, room)
    assert room == {0: []}
    finder._keep(tx, Stage.story, [Snap("story-0", {"running": ["m9"]}, 2)], caps, room)
    assert room == {}
    assert tx.versions["queues/story-0"] == 2


def test_the_least_used_shards_come_first_and_each_free_slot_once() -> None:
    finder = SlotFinder(db=Db, rpc={}, max_probes=8)
    tx = Txn(Db(), rpc={}, shards=1)
    caps = [2, 2, 2, 2, 2, 3]
    room: dict[int, list[str]] = {}
    snaps = [
        Snap("story-1", {"running": [], "claims": 7}),
        Snap("story-3", {"running": ["a"], "claims": 2}),
        Snap("story-5", {"running": ["b", "c"], "claims": 4}),
    ]
    finder._keep(tx, Stage.story, snaps, caps, room)
    assert finder.order(Stage.story, room, caps, racing=False) == [3, 5, 1, 1]
    # After a lost race, at random: other processes read the same least used shard.
    random.seed(3)
    firsts = {finder.order(Stage.story, room, caps, racing=True)[0] for _ in range(30)}
    assert firsts == {1, 3, 5}
    assert sorted(finder.order(Stage.story, room, caps, racing=True)) == [1, 1, 3, 5]


def test_equally_used_shards_are_taken_in_random_order() -> None:
    finder = SlotFinder(db=Db, rpc={}, max_probes=8)
    room: dict[int, list[str]] = {k: [] for k in range(6)}
    random.seed(5)
    firsts = {finder.order(Stage.story, room, [1] * 6, racing=False)[0] for _ in range(40)}
    assert len(firsts) > 3  # parallel claims of other processes seldom meet


def test_spread_never_passes_over_a_priority_and_keeps_queue_order() -> None:
    random.seed(4)
    ready = [Snap(f"m{i}", {"prio": p}) for i, p in enumerate([0, 0, 1, 1, 1, 1, 2])]
    for _ in range(50):
        got = spread(ready, 3)
        ids = [s.id for s in got]
        assert ids[:2] == ["m0", "m1"]  # the higher priority first, whole
        assert ids[2] in {"m2", "m3", "m4", "m5"}  # then one of the next priority
    assert {spread(ready, 3)[2].id for _ in range(50)} != {"m2"}  # spread, not the head
    assert spread(ready, 9) == ready


def test_claims_asked_for_while_one_runs_are_served_by_one_run_at_the_latest_time() -> None:
    turns = ClaimTurns()
    t0 = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)
    inside, release = threading.Event(), threading.Event()
    runs: list[tuple[str, datetime]] = []
    got: dict[str, list[str]] = {}

    def first(at: datetime) -> list[str]:
        runs.append(("a", at))
        inside.set()
        release.wait(5)
        return ["a"]

    def later(name: str) -> Callable[[datetime], list[str]]:
        def claim(at: datetime) -> list[str]:
            runs.append((name, at))
            return [name]

        return claim

    def ask(name: str, at: datetime, claim: Callable[[datetime], list[str]]) -> None:
        got[name] = turns.run(Stage.story, at, claim)

    a = threading.Thread(target=ask, args=("a", t0, first))
    a.start()
    inside.wait(5)
    waiting = [
        threading.Thread(target=ask, args=(n, t0 + timedelta(seconds=s), later(n)))
        for n, s in (("b", 1), ("c", 2))
    ]
    for t in waiting:
        t.start()
    while sum(1 for t in waiting if t.is_alive()) < 2 or turns._asked[Stage.story] < 3:
        time.sleep(0.01)  # both have asked (they wait for the lock)
    release.set()
    for t in (a, *waiting):
        t.join(5)
    assert got["a"] == ["a"]
    assert len(runs) == 2  # a, then one run for both b and c
    assert runs[1][1] == t0 + timedelta(seconds=2)  # at the latest time asked
    assert sorted(len(got[n]) for n in ("b", "c")) == [0, 1]
    assert turns.run(Stage.images, t0, later("d")) == ["d"]  # other stages: their own turns


def test_a_claim_spreads_only_for_a_while_after_a_lost_race() -> None:
    now = [1000.0]
    reads = ClaimReads(
        slots=SlotFinder(db=Db, rpc={}, max_probes=8),
        ready=lambda stage, at, wanted: [],
        claim_spread=8,
        clock=lambda: now[0],
    )
    assert reads.spread(Stage.story, 3) == 0  # no race seen: read only what it can take
    reads.lost_race(Stage.story)
    assert reads.spread(Stage.story, 3) == 3  # as many more as it has free slots
    assert reads.spread(Stage.story, 20) == 8  # up to claim_spread
    assert reads.spread(Stage.images, 3) == 0  # a race of another stage
    now[0] += RACE_MEMORY_S + 1
    assert reads.spread(Stage.story, 3) == 0


class Listing:
    """A Firestore client whose `queues` query lists the given shard documents."""

    def __init__(self, snaps: list[Snap]) -> None:
        self.snaps = snaps

    def collection(self, name: str) -> Listing:
        return self

    def where(self, **_: Any) -> Listing:
        return self

    def order_by(self, _: Any) -> Listing:
        return self

    def limit(self, _: int) -> Listing:
        return self

    def stream(self, **_: Any) -> list[Snap]:
        return self.snaps

    def document(self, doc_id: str) -> Ref:
        return Ref(f"queues/{doc_id}")

    def batch(self) -> object:
        return object()


def test_shards_a_larger_limit_adds_count_from_the_least_used_one() -> None:
    """Shards 0-2 claimed 9, 7 and 8 times; the limit grew to 5: shards 3 and 4, absent,
    are offered counting from 7, not 0, so they are not the only ones claimed in until they
    catch up, and stay offered (they read nothing) until a claim of this process made them."""
    db = Listing(
        [Snap(f"story-{k}", {"running": ["x"], "claims": n}) for k, n in enumerate((9, 7, 8))]
    )
    finder = SlotFinder(db=lambda: db, rpc={}, max_probes=8)
    tx = Txn(db, rpc={}, shards=1)
    room = finder.every(tx, Stage.story, [1] * 5, {})
    assert room == {3: [], 4: []}
    assert tx.versions["queues/story-3"] is None  # created by the claim's write
    assert tx.claims_from == {"queues/story-3": 7, "queues/story-4": 7}
    assert not finder.complete(Stage.story, 5)
    finder.created(Stage.story, 5, [3])
    db.snaps = []  # the room query: no existing shard has room
    assert finder.with_room(Txn(db, rpc={}, shards=1), Stage.story, [1] * 5, 8) == {4: []}
