"""A claim's slot shards and movies: free shards least used first, the head taken spread out."""

from __future__ import annotations

import random
import threading
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from typing import Any, TypeVar

from deepflix.adapters.gcp.firestore_docs import DOC_ID, QUEUES, eq, slots_ref
from deepflix.adapters.gcp.firestore_txn import CLAIMS, ROOM, Txn
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


def field(snap: Any, name: str) -> Any:
    """A field of a shard, None where absent (a snapshot's get raises KeyError): shards
    written by an older version have no claim count."""
    try:
        return snap.get(name)
    except KeyError:
        return None


class SlotFinder:
    """Where a claim finds free slots, read inside its transaction.

    One query of the stage's shards with room, least used first (each shard counts the
    slots claims took in it), finds what any process freed, at one billed read when there
    is none. Claims so use the shards by turns, whichever process runs them: every shard
    is written within about one claim of the mean, where starting at a random shard (or
    the first) wrote some twice the mean, and the busiest shard is the stage's ceiling.
    Shards come into being when first claimed, so until this process has seen all K of a stage
    exist, a claim that finds fewer free slots than it has ready movies lists every shard
    once more (absent ones are empty): then no slot stays unused for want of a probe.
    """

    def __init__(self, *, db: Callable[[], Any], rpc: dict[str, Any], max_probes: int) -> None:
        self.db = db
        self.rpc = rpc
        self.max_probes = max_probes
        # (stage, K) whose K shards this process has seen exist: they are never deleted.
        self._complete: set[tuple[Stage, int]] = set()
        # Claim counts of the shards this process's claims of a stage last read (one claim
        # of a stage at a time: ClaimTurns).
        self.claims: dict[tuple[Stage, int], int] = {}
        # Per (stage, K), the shards this process's last listing found absent and no claim
        # of it has created since.
        self.absent: dict[tuple[Stage, int], set[int]] = {}
        self._floor: dict[tuple[Stage, int], int] = {}  # the least claim count it saw

    def complete(self, stage: Stage, shards: int) -> bool:
        return (stage, shards) in self._complete

    def _stream(self, query: Any) -> list[Any]:
        snaps = list(query.stream(**self.rpc))
        METER.add("firestore.reads", max(1, len(snaps)))
        return snaps

    def _keep(
        self, tx: Txn, stage: Stage, snaps: Sequence[Any], caps: Sequence[int], out: Running
    ) -> set[int]:
        seen = set()
        for snap in snaps:
            k = shard_index(snap)
            if k >= len(caps):
                continue  # a shard of a former, larger limit: never claimed in again
            seen.add(k)
            tx.saw(snap)  # the version the claim's write of it is guarded by
            running = list(field(snap, "running") or [])
            self.claims[(stage, k)] = int(field(snap, CLAIMS) or 0)
            if caps[k] > len(running):
                out[k] = running
            else:
                out.pop(k, None)  # full since an earlier read: its older list must not be kept
        return seen

    def with_room(self, tx: Txn, stage: Stage, caps: Sequence[int], wanted: int) -> Running:
        """Shards of `stage` marked with room, least used first, enough for `wanted` slots
        if there are (at most `max_probes`: each one returned is a billed read), and the
        shards this process last listed absent (they read nothing)."""
        most = max(1, min(self.max_probes, wanted))
        q = self.db().collection(QUEUES).where(filter=eq("stage", stage.value))
        q = q.where(filter=eq(ROOM, True)).order_by(CLAIMS).order_by(DOC_ID)
        out: Running = {}
        self._keep(tx, stage, self._stream(q.limit(most)), caps, out)
        self._offer_absent(tx, stage, caps, out)
        return out

    def every(self, tx: Txn, stage: Stage, caps: Sequence[int], out: Running) -> Running:
        """Add every shard of `stage` with room to `out`, absent ones (empty) included."""
        q = self.db().collection(QUEUES).where(filter=eq("stage", stage.value))
        snaps = self._stream(q)
        seen = self._keep(tx, stage, snaps, caps, out)
        self.absent[(stage, len(caps))] = set(range(len(caps))) - seen
        self._floor[(stage, len(caps))] = min((self.claims[(stage, k)] for k in seen), default=0)
        self._offer_absent(tx, stage, caps, out)
        # A shard with room written before claim counts is invisible to the room query
        # until a claim or free gives it one: list the shards again until none is left.
        uncounted = any(field(s, CLAIMS) is None and shard_index(s) in out for s in snaps)
        if len(seen) == len(caps) and not uncounted:
            self._complete.add((stage, len(caps)))
        return out

    def _offer_absent(self, tx: Txn, stage: Stage, caps: Sequence[int], out: Running) -> None:
        """Offer the shards last listed absent, empty, created by the claim that takes a slot
        in one: the room query finds only shards that exist, so without this a stage's
        claims would share only the shards that were once all busy at one time. Each
        counts from the least used shard the listing saw, so that it is not the only one
        claimed in until it has caught up (a limit that grew adds shards)."""
        absent = self.absent.get((stage, len(caps)), set())
        floor = self._floor.get((stage, len(caps)), 0)
        for k in sorted(absent - set(out)):
            path = slots_ref(self.db(), stage, k).path
            tx.versions[path] = None  # created by the claim (a lost race if it exists now)
            tx.claims_from[path] = self.claims[(stage, k)] = floor
            out[k] = []

    def created(self, stage: Stage, shards: int, taken: Iterable[int]) -> None:
        """A claim's commit created the absent shards it took slots in."""
        self.absent.get((stage, shards), set()).difference_update(taken)

    def forget_absent(self, stage: Stage) -> None:
        """After a lost race: another process may have created them (listed again when short)."""
        for key in [key for key in self.absent if key[0] is stage]:
            del self.absent[key]

    def order(self, stage: Stage, room: Running, caps: Sequence[int], *, racing: bool) -> list[int]:
        """One entry per free slot, shard by shard: least used first (equals at random),
        so this stage's shards are written by turns. After a lost race (`racing`), at
        random: claims of other processes read the same least used shards."""
        ks = random.sample(sorted(room), len(room))  # nosec B311 # spreads claims, not a secret
        if not racing:
            ks.sort(key=lambda k: self.claims.get((stage, k), 0))  # stable: ties stay random
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
