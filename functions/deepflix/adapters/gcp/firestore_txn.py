"""One optimistic Firestore transaction: lock-free reads, then one guarded batch (ADR 0005)."""

from __future__ import annotations

import itertools
import random
from collections import Counter
from collections.abc import Callable
from typing import Any

from google.api_core import exceptions as gexc
from google.cloud import firestore

from deepflix.adapters.gcp.eta_durations import RECENT, STATS_UPDATED, stale_windows
from deepflix.adapters.gcp.firestore_docs import MOVIES, Doc, slots_ref, to_document
from deepflix.adapters.gcp.queue_counts import (
    COUNT_SHARD,
    CounterDoc,
    by_document,
    deltas,
    increment,
)
from deepflix.metering import METER
from deepflix.pipeline.eta import duration_bin, window_of
from deepflix.pipeline.journal import stage_changes
from deepflix.pipeline.models import Movie, Outgoing, Stage

JOURNAL = "journal"  # the movie document's field holding its journal
ROOM = "room"  # a slot shard's field: whether it has a free slot (firestore_slots.py)
# A slot shard's field: how many slots claims have taken in it. Claims take the shards with
# room least used first, so each shard is written about as often (firestore_slots.py).
CLAIMS = "claims"
# A commit whose preconditions failed lost a race: read again and retry.
CONFLICTS = (gexc.FailedPrecondition, gexc.AlreadyExists, gexc.NotFound, gexc.Aborted)
_turns: dict[tuple[str, Stage | None], itertools.count[int]] = {}


def next_shard(kind: str, stage: Stage | None, shards: int) -> int:
    """The next of `shards` documents in turn, per kind and stage, from a random start.

    In turn rather than by a hash of the movie id: each process then writes every shard
    equally often, where a hash leaves the busiest of K shards well above its mean share
    in any finite stretch (Poisson), and the busiest document is the stage's ceiling.
    """
    turn = _turns.get((kind, stage))
    if turn is None:
        start = random.randrange(1 << 20)  # nosec B311 # spreads processes, not a secret
        turn = _turns.setdefault((kind, stage), itertools.count(start))
    return next(turn) % shards


class Txn:
    """One optimistic transaction: lock-free reads, then one atomic batch of writes whose
    preconditions fail if any document read has changed (or appeared) since.

    Firestore's client SDKs run transactions this way. Server-side (locking) ones deadlock
    when two read and then write the same document, as claims do with their slot document;
    the emulator breaks that only by a lock timeout (8 parallel dispatchers took minutes).
    """

    def __init__(
        self,
        db: Any,
        *,
        rpc: dict[str, Any],
        shards: int,
        deep: Callable[[Stage], bool] = lambda stage: True,
    ) -> None:
        self.db = db  # the Firestore client
        self.rpc = rpc  # retry and timeout of every call
        self.shards = shards  # copies of each queue counter
        self.deep = deep  # whether a movie entering a stage's queue now is counted
        self.batch = db.batch()
        self.versions: dict[str, Any] = {}  # path -> update_time; None if absent when read
        self.writes = 0
        # Slot changes by (stage, slot shard): ids taken and freed.
        self.taken: dict[tuple[Stage, int], list[str]] = {}
        self.freed: dict[tuple[Stage, int], list[str]] = {}
        # The slot shard a claim gives each movie it saves (set by the claim before save).
        self.slot_for: dict[str, int] = {}
        # The claim count a slot shard absent when read starts from (path -> count).
        self.claims_from: dict[str, int] = {}
        self.counters: Counter[tuple[CounterDoc, str]] = Counter()
        # Duration sums and histogram bins by (stage, slot shard, field): see _observe.
        self.durations: dict[tuple[Stage, int, str | tuple[str, str, str, str]], float] = {}
        # The movies saved: the place of each one's write in the batch, and its outbox; once
        # committed, each one's version (update time) and outbox (firestore_outbox.py).
        self._saved: dict[str, tuple[int, tuple[Outgoing, ...]]] = {}
        self.committed: dict[str, tuple[Any, tuple[Outgoing, ...]]] = {}

    def get(self, ref: Any) -> Any:
        snap = ref.get(**self.rpc)
        METER.add("firestore.reads")
        self.saw(snap)
        return snap

    def saw(self, snap: Any) -> None:
        self.versions[snap.reference.path] = snap.update_time if snap.exists else None

    def replace(self, ref: Any, data: Doc) -> None:
        """Write a document read in this transaction, provided it is still as it was read."""
        version = self.versions[ref.path]
        if version is None:
            self.batch.create(ref, data)
        else:
            self.batch.update(ref, data, option=self.db.write_option(last_update_time=version))
        self.writes += 1

    def create(self, ref: Any, data: Doc) -> None:
        self.batch.create(ref, data)
        self.writes += 1

    def count(self, old: Movie | None, new: Movie, old_doc: Doc | None = None) -> int | None:
        """Move the movie in the queue counters, in this commit (written once per document);
        returns the counter shard the movie's document records (None: not waiting, or
        waiting uncounted).

        A movie entering a stage's queue is counted only where the queue is deep (ADR
        0026), in the next shard in turn; it keeps that choice and shard while it waits in
        the stage, so each decrement meets its increment and every counter document holds
        a true count (the sweep deletes those at 0)."""
        old_shard = None
        if old is not None and old.waiting_stage is not None:
            recorded = (old_doc or {}).get(COUNT_SHARD)
            old_shard = None if recorded is None else int(recorded)
        new_shard = None
        stage = new.waiting_stage
        if stage is not None:
            if old is not None and old.waiting_stage is stage:
                new_shard = old_shard
            elif self.deep(stage):
                new_shard = next_shard("counts", stage, self.shards)
        change = deltas(old, new, old_shard=old_shard, new_shard=new_shard)
        self.counters.update(change)
        return new_shard

    def save(self, old_doc: Doc, old: Movie, new: Movie) -> None:
        ref = self.db.collection(MOVIES).document(new.id)
        journal, durations = stage_changes(old, new)
        # The journal lives in the movie's own document, written with it: no write of its
        # own per entry (a movie's journal stays small: a few entries per attempt).
        entries = list(old_doc.get("journal") or []) + [e.document() for e in journal]
        seq = len(entries)
        slot = old_doc.get("slot_shard")
        for stage, seconds in durations:
            # A run that succeeded is the stage that ran: its slot is freed in this commit.
            shard = int(slot or 0) if stage is old.running_stage else 0
            self._observe(stage, shard, seconds, new.request.scene_count, window_of(new.updated_at))
        if old.running_stage is not new.running_stage:
            if old.running_stage is not None:
                freed = int(slot or 0)
                self.freed.setdefault((old.running_stage, freed), []).append(new.id)
            if new.running_stage is not None:
                # A claim names the shard it took a slot in; any other start (none today)
                # takes one unguarded in the movie's own shard.
                slot = self.slot_for.get(new.id, 0)
                self.taken.setdefault((new.running_stage, slot), []).append(new.id)
        count_shard = self.count(old, new, old_doc)
        doc = to_document(new, journal_seq=seq, slot_shard=slot) | {"journal": entries}
        self._saved[new.id] = (self.writes, new.outbox)
        self.replace(ref, doc | {COUNT_SHARD: count_shard})

    def _observe(self, stage: Stage, shard: int, seconds: float, scenes: int, window: int) -> None:
        """Add a duration to its stage's sums and to the ETA's histogram of its scene count
        and window (pipeline/eta.py), in the slot shard the run's success frees: the free
        writes that shard anyway, so the sums ride on its write (ADR 0031). Blind
        increments, which read nothing and so contend with nothing; a mean is the sum over
        the count."""
        bin_ = (RECENT, str(window), str(scenes), str(duration_bin(seconds)))
        for name, v in (("sum_s", seconds), ("n", 1), (bin_, 1)):
            key = (stage, shard, name)
            self.durations[key] = self.durations.get(key, 0) + v

    def _stats_fields(self) -> dict[tuple[Stage, int], dict[str, Any]]:
        """The stats fields each slot shard's write carries, by (stage, shard): increments,
        the windows the ETA no longer reads deleted (blindly: a delete reads nothing
        either), and STATS_UPDATED, the stamp the duration readers ask by, set only here so
        that claims, which write the shard too, do not make readers read it again."""
        docs: dict[tuple[Stage, int], dict[str, Any]] = {}
        for (stage, shard, name), v in self.durations.items():
            doc = docs.setdefault((stage, shard), {STATS_UPDATED: firestore.SERVER_TIMESTAMP})
            if isinstance(name, tuple):  # a histogram bin: nested maps, merged field by field
                _, window, scenes, bin_ = name
                windows = doc.setdefault(RECENT, {})
                windows.setdefault(window, {}).setdefault(scenes, {})[bin_] = firestore.Increment(v)
                for old in stale_windows(int(window)):
                    windows[old] = firestore.DELETE_FIELD
            else:
                doc[name] = firestore.Increment(v)
        return docs

    def _merge(self, ref: Any, stage: Stage, data: Doc) -> None:
        """A blind write of a slot shard's fields (merged into what it holds)."""
        self.batch.set(ref, {"stage": stage.value} | data, merge=True)
        self.writes += 1

    def commit(
        self, *, slots: dict[tuple[Stage, int], tuple[list[str], int]] | None = None
    ) -> None:
        """Commit; `slots` are the running lists and capacities of the slot shards a claim
        read, each written guarded by its version. A success's durations go in the write
        that frees its slot (a merge, so they add up field by field)."""
        stats = self._stats_fields()
        for key in sorted(set(self.taken) | set(self.freed)):
            stage, shard = key
            ref = slots_ref(self.db, stage, shard)
            if slots is not None and key in slots and self.taken.get(key):
                running, cap = slots[key]
                running = running + self.taken[key]
                n = len(self.taken[key])
                base = self.claims_from.get(ref.path)
                used = firestore.Increment(n) if base is None else base + n
                room = {ROOM: cap > len(running), CLAIMS: used}
                self.replace(ref, {"stage": stage.value, "running": running} | room)
                continue
            # Array transforms need no read, so freeing a slot contends with nothing, yet a
            # claim that read this document sees the change as a failed precondition. A
            # shard freed has room; one taken blindly keeps its mark (a claim reads it). A
            # free adds 0 to the claim count: unchanged, yet present on a shard written
            # before counts (the room query, ordered by it, sees only shards that have one).
            taken, freed = self.taken.get(key), self.freed.get(key)
            if taken:
                used = firestore.Increment(len(taken))
                self._merge(ref, stage, {"running": firestore.ArrayUnion(taken), CLAIMS: used})
            if freed:
                free = {"running": firestore.ArrayRemove(freed), ROOM: True}
                free[CLAIMS] = firestore.Increment(0)
                self._merge(ref, stage, free | stats.pop(key, {}))
        # Durations with no free of their shard in this commit (none today: a success
        # frees the slot it ran in) still go to that shard, in a write of their own.
        for (stage, shard), data in stats.items():
            self._merge(slots_ref(self.db, stage, shard), stage, data)
        self.writes += increment(self.batch, self.db, by_document(self.counters))
        if self.writes:
            results = self.batch.commit(**self.rpc)
            METER.add("firestore.writes", self.writes)
            for movie_id, (at, outbox) in self._saved.items():
                self.committed[movie_id] = (results[at].update_time, outbox)
