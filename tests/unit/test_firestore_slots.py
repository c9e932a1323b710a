"""A claim's choice of slot shards and ready movies (firestore_slots.py), without Firestore."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

import pytest

from deepflix.adapters.gcp.firestore_slots import SlotFinder, spread
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
    finder._keep(tx, [Snap("story-0", {"running": []}, 1)], caps, room)
    assert room == {0: []}
    finder._keep(tx, [Snap("story-0", {"running": ["m9"]}, 2)], caps, room)
    assert room == {}
    assert tx.versions["queues/story-0"] == 2


def test_the_freed_shard_comes_first_and_each_free_slot_once() -> None:
    finder = SlotFinder(db=Db, rpc={}, max_probes=8)
    finder.freed_hint[Stage.story] = 3
    order = finder.order(Stage.story, {1: [], 3: ["a"], 5: ["b", "c"]}, [2, 2, 2, 2, 2, 3])
    assert order[0] == 3
    assert sorted(order) == [1, 1, 3, 5]


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
