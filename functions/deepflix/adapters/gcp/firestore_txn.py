"""One optimistic Firestore transaction: lock-free reads, then one guarded batch (ADR 0005)."""

from __future__ import annotations

from collections import Counter
from typing import Any

from google.api_core import exceptions as gexc
from google.cloud import firestore

from deepflix.adapters.gcp import eta_durations
from deepflix.adapters.gcp.firestore_docs import MOVIES, Doc, slots_ref, stats_ref, to_document
from deepflix.adapters.gcp.queue_counts import CounterDoc, by_document, deltas, increment
from deepflix.metering import METER
from deepflix.pipeline.journal import stage_changes
from deepflix.pipeline.models import STAGES, Movie, Stage
from deepflix.pipeline.policy import running_mean

JOURNAL = "journal"
# A commit whose preconditions failed lost a race: read again and retry.
CONFLICTS = (gexc.FailedPrecondition, gexc.AlreadyExists, gexc.NotFound, gexc.Aborted)


class Txn:
    """One optimistic transaction: lock-free reads, then one atomic batch of writes whose
    preconditions fail if any document read has changed (or appeared) since.

    Firestore's client SDKs run transactions this way. Server-side (locking) ones deadlock
    when two read and then write the same document, as claims do with their slot document;
    the emulator breaks that only by a lock timeout (8 parallel dispatchers took minutes).
    """

    def __init__(self, db: Any, *, rpc: dict[str, Any], shards: int) -> None:
        self.db = db  # the Firestore client
        self.rpc = rpc  # retry and timeout of every call
        self.shards = shards  # copies of each queue counter
        self.batch = db.batch()
        self.versions: dict[str, Any] = {}  # path -> update_time; None if absent when read
        self.writes = 0
        self.taken: dict[Stage, list[str]] = {}
        self.freed: dict[Stage, list[str]] = {}
        self.counters: Counter[tuple[CounterDoc, str]] = Counter()

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

    def count(self, old: Movie | None, new: Movie) -> None:
        """Move the movie in the queue counters, in this commit (written once per document)."""
        self.counters.update(deltas(old, new, self.shards))

    def save(self, old_doc: Doc, old: Movie, new: Movie) -> None:
        ref = self.db.collection(MOVIES).document(new.id)
        journal, durations = stage_changes(old, new)
        seq = int(old_doc.get("journal_seq") or 0)
        for entry in journal:
            seq += 1
            self.create(ref.collection(JOURNAL).document(f"{seq:010d}"), entry.document())
        for stage, seconds in durations:
            self._observe(stage, seconds)
            self.writes += eta_durations.record(
                self.batch, self.db, stage, new.request.scene_count, seconds
            )
        if old.running_stage is not new.running_stage:
            if old.running_stage is not None:
                self.freed.setdefault(old.running_stage, []).append(new.id)
            if new.running_stage is not None:
                self.taken.setdefault(new.running_stage, []).append(new.id)
        self.replace(ref, to_document(new, journal_seq=seq))
        self.count(old, new)

    def _observe(self, stage: Stage, seconds: float) -> None:
        ref = stats_ref(self.db, stage)
        # The first sample starts the running mean at itself.
        prev = self.get(ref).to_dict() or {"mean_s": seconds, "samples": 0}
        mean = running_mean(float(prev["mean_s"]), [seconds])
        samples = int(prev.get("samples", 0)) + 1
        self.replace(ref, {"stage": stage.value, "mean_s": mean, "samples": samples})

    def commit(self, *, slots: dict[Stage, list[str]] | None = None) -> None:
        """Commit; `slots` are the running lists a claim read, guarded by their versions."""
        for st in STAGES:
            ref = slots_ref(self.db, st)
            if slots is not None and st in slots and self.taken.get(st):
                self.replace(ref, {"stage": st.value, "running": slots[st] + self.taken[st]})
                continue
            # Array transforms need no read, so freeing a slot contends with nothing, yet a
            # claim that read this document sees the change as a failed precondition.
            for ids, transform in (
                (self.taken, firestore.ArrayUnion),
                (self.freed, firestore.ArrayRemove),
            ):
                if ids.get(st):
                    self.batch.set(ref, {"running": transform(ids[st])}, merge=True)
                    self.writes += 1
        self.writes += increment(self.batch, self.db, by_document(self.counters))
        if self.writes:
            self.batch.commit(**self.rpc)
            METER.add("firestore.writes", self.writes)
