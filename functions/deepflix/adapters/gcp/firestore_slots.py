"""A claim's slot shards and movies: free shards found by a query, the head taken spread out."""

from __future__ import annotations

import random
import threading
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, TypeVar

from deepflix.adapters.gcp.firestore_docs import DOC_ID, QUEUES, eq, slots_ref
from deepflix.adapters.gcp.firestore_txn import ROOM, Txn
from deepflix.metering import METER
from deepflix.pipeline.models import Stage

# ROOM, whether a slot shard has a free slot: a claim writes it with the running list, and
# a free sets it (blindly: a shard just freed has room), so one query finds the shards
# with room.
Running = dict[int, list[str]]  # slot shard -> the ids running there
R = TypeVar("R")


class ClaimTurns:
    """One claim of a stage at a time in a process, and one for all that asked while it
    waited: a claim whose turn comes after another began since it asked returns at once,
    since that one read the slots and the queue later (parallel claims here would only race
    for the same head). It runs with the latest time any of them asked at, so a movie whose
    backoff ended by then is not left for a dispatch that will not come."""

    def __init__(self) -> None:
        self._claiming = {s: threading.Lock() for s in Stage}
        self._asked = dict.fromkeys(Stage, 0)
        self._served = dict.fromkeys(Stage, 0)
        self._latest: dict[Stage, datetime] = {}
        self._tickets = threading.Lock()

    def run(self, stage: Stage, now: datetime, claim: Callable[[datetime], list[R]]) -> list[R]:
        with self._tickets:
            self._asked[stage] += 1
            ticket = self._asked[stage]
            self._latest[stage] = max(self._latest.get(stage, now), now)
        with self._claiming[stage]:
            if self._served[stage] >= ticket:
                return []
            with self._tickets:
                self._served[stage] = self._asked[stage]
                now = max(now, self._latest[stage])
            return claim(now)


def shard_index(snap: Any) -> int:
    return int(snap.id.rsplit("-", 1)[1])


class SlotFinder:
    """Where a claim finds free slots, read inside its transaction.

    One query of the stage's shards with room finds what any process freed, at one billed
    read when there is none (two where it starts at a random shard and wraps around, so
    that claims spread their writes and parallel ones mostly see different shards). Shards
    come into being when first claimed, so until this process has seen all K of a stage
    exist, a claim that finds fewer free slots than it has ready movies lists every shard
    once more (absent ones are empty): then no slot stays unused for want of a probe.
    """

    def __init__(self, *, db: Callable[[], Any], rpc: dict[str, Any], max_probes: int) -> None:
        self.db = db
        self.rpc = rpc
        self.max_probes = max_probes
        # (stage, K) whose K shards this process has seen exist: they are never deleted.
        self._complete: set[tuple[Stage, int]] = set()
        # Per stage, the slot shard a commit of this process last freed a slot in: a claim
        # here takes it first, so that parallel refills each take their own shard. Kept
        # until a claim commits with it (a claim that lost a race tries it again).
        self.freed_hint: dict[Stage, int] = {}

    def complete(self, stage: Stage, shards: int) -> bool:
        return (stage, shards) in self._complete

    def _stream(self, query: Any) -> list[Any]:
        snaps = list(query.stream(**self.rpc))
        METER.add("firestore.reads", max(1, len(snaps)))
        return snaps

    def _keep(self, tx: Txn, snaps: Sequence[Any], caps: Sequence[int], out: Running) -> set[int]:
        seen = set()
        for snap in snaps:
            k = shard_index(snap)
            if k >= len(caps):
                continue  # a shard of a former, larger limit: never claimed in again
            seen.add(k)
            tx.saw(snap)  # the version the claim's write of it is guarded by
            running = list(snap.get("running") or [])
            if caps[k] > len(running):
                out[k] = running
            else:
                out.pop(k, None)  # full since an earlier read: its older list must not be kept
        return seen

    def with_room(
        self, tx: Txn, stage: Stage, caps: Sequence[int], wanted: int, *, scatter: bool = True
    ) -> Running:
        """Shards of `stage` marked with room, enough for `wanted` slots if there are (at
        most `max_probes`: each one returned is a billed read). `scatter`: start at a random
        shard, so that claims spread their writes over the shards and parallel ones see
        different shards (a second query when the page wraps around); else at the first."""
        most = max(1, min(self.max_probes, wanted))
        q = self.db().collection(QUEUES).where(filter=eq("stage", stage.value))
        q = q.where(filter=eq(ROOM, True)).order_by(DOC_ID)
        out: Running = {}
        if len(caps) <= most or not scatter:  # one page from the first shard
            self._keep(tx, self._stream(q.limit(most)), caps, out)
            return out
        start = {"__name__": slots_ref(self.db(), stage, random.randrange(len(caps))).id}  # nosec B311 # spreads claims
        snaps = self._stream(q.start_at(start).limit(most))
        if len(snaps) < most:  # wrap around to the shards before the start
            snaps += self._stream(q.end_before(start).limit(most - len(snaps)))
        self._keep(tx, snaps, caps, out)
        return out

    def every(self, tx: Txn, stage: Stage, caps: Sequence[int], out: Running) -> Running:
        """Add every shard of `stage` with room to `out`, absent ones (empty) included."""
        q = self.db().collection(QUEUES).where(filter=eq("stage", stage.value))
        seen = self._keep(tx, self._stream(q), caps, out)
        for k in range(len(caps)):
            if k not in seen:
                tx.versions[slots_ref(self.db(), stage, k).path] = None  # created by the claim
                out[k] = []
        if len(seen) == len(caps):
            self._complete.add((stage, len(caps)))
        return out

    def order(self, stage: Stage, room: Running, caps: Sequence[int]) -> list[int]:
        """One entry per free slot, shard by shard: this process's freed shard first, then
        the others at random, so parallel claims seldom pick the same shard."""
        ks = random.sample(sorted(room), len(room))  # nosec B311 # spreads claims, not a secret
        hint = self.freed_hint.get(stage)
        if hint in room:
            ks.remove(hint)
            ks.insert(0, hint)
        return [k for k in ks for _ in range(caps[k] - len(room[k]))]


def spread(ready: Sequence[Any], n: int) -> list[Any]:
    """`n` of the ready movies (in queue order): whole priority groups from the head, and in
    the first group that does not fit, `n` at random. Parallel claims that each read the
    same head then seldom take the same movie (a lost race is a retry); a priority is never
    passed over, and within one a movie waits behind at most the ones read with it."""
    if n >= len(ready):
        return list(ready)
    out: list[Any] = []
    i = 0
    while len(out) < n:
        prio = ready[i].get("prio")
        group = [s for s in ready[i:] if s.get("prio") == prio]
        i += len(group)
        room = n - len(out)
        if len(group) > room:
            keep = set(random.sample(range(len(group)), room))  # nosec B311 # spreads claims
            group = [s for j, s in enumerate(group) if j in keep]
        out.extend(group)
    return out
