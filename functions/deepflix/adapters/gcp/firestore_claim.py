"""What a claim reads: the scarcer of free slots and ready movies first; a spread after races."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from deepflix.adapters.gcp.firestore_slots import Running, SlotFinder
from deepflix.adapters.gcp.firestore_txn import Txn
from deepflix.pipeline.models import Stage

Snapshots = list[Any]
# How long after a claim of a stage lost a race in this process its claims keep spreading
# over the head and over the shards with room.
RACE_MEMORY_S = 60.0


def free_slots(room: Running, caps: Sequence[int]) -> int:
    return sum(caps[k] - len(r) for k, r in room.items())


class ClaimReads:
    """Reads, inside a claim's transaction, the ready movies and the slot shards with room
    it chooses among, each billed per document returned (at least one per query).

    Whichever ran short at this process's last claim of the stage is read first, and the
    other only as far as it can be used: while the stage is full (its queue held more than
    the claim read), the shards with room first (one billed read when there is none), then
    as many ready movies as they have free slots; while the queue runs dry, the ready
    movies first (one billed read when none waits), then as many shards as they need.
    Either way a claim takes what the former reads took: every free slot it finds, up to
    the ready movies it finds, at most `max_probes` shards and `most` movies.

    Parallel claims of one process take turns (ClaimTurns), so only other processes race
    for the same head movie or least recently claimed shard; a lost race is a retry of the
    whole claim. Only after a claim of the stage lost one (within RACE_MEMORY_S) does a
    claim read `spread` more movies, as many as it has free slots up to `claim_spread`,
    and as many more shards as it needs, and choose among each at random.
    """

    def __init__(
        self,
        *,
        slots: SlotFinder,
        ready: Callable[[Stage, datetime, int], Snapshots],
        claim_spread: int,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.slots = slots
        self.ready = ready
        self.claim_spread = claim_spread
        self.clock = clock
        self.slots_first: dict[Stage, bool] = {}
        self._raced: dict[Stage, float] = {}

    def lost_race(self, stage: Stage) -> None:
        self._raced[stage] = self.clock()

    def racing(self, stage: Stage) -> bool:
        at = self._raced.get(stage)
        return at is not None and self.clock() - at < RACE_MEMORY_S

    def spread(self, stage: Stage, free: int) -> int:
        """Ready movies read beyond the free slots, to choose among at random."""
        return min(self.claim_spread, free) if self.racing(stage) else 0

    def read(
        self, tx: Txn, stage: Stage, caps: Sequence[int], most: int, now: datetime
    ) -> tuple[Snapshots, Running]:
        """The ready movies (queue order) and the shards with room (their running lists)."""
        complete = self.slots.complete(stage, len(caps))
        if self.slots_first.get(stage):
            # Few shards have room, those just freed (one query).
            room = self.slots.with_room(tx, stage, caps, most)
            free = free_slots(room, caps)
            if not free and complete:
                return [], room  # full: one billed read
            # With no free slot seen yet the shards are not all known: one movie tells
            # whether listing them is worth it.
            asked = min(most, max(free, 1) + self.spread(stage, free))
            ready = self.ready(stage, now, asked)
        else:
            asked = most
            ready = self.ready(stage, now, asked)
            if not ready:
                return [], {}  # nothing waits: one billed read
            # Many shards have room: as many as it needs, the least recently claimed (one
            # query), and as many more to choose among after a race.
            room = self.slots.with_room(
                tx, stage, caps, len(ready) + self.spread(stage, len(ready))
            )
        if ready and free_slots(room, caps) < len(ready) and not complete:
            # Shards not all seen to exist yet (absent ones are empty): list them once.
            room = self.slots.every(tx, stage, caps, room)
            free = free_slots(room, caps)
            if len(ready) >= asked < most and free > len(ready):
                asked = min(most, free + self.spread(stage, free))
                ready = self.ready(stage, now, asked)
        # The slots ran short, or the queue held more than was read: slots first next time.
        self.slots_first[stage] = free_slots(room, caps) < len(ready) or len(ready) >= asked
        return ready, room
