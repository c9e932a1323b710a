"""The ETA's duration histograms on Firestore, read from the stages' slot shards.

A success counts its run into a bin of `recent.{window}.{scene count}` of the slot shard whose
slot it frees, in the write that frees it (firestore_txn.Txn._observe, ADR 0031): no write of
its own and no document every movie writes; the same write deletes the windows the ETA no
longer reads and stamps the shard `stats_updated`. Reading sums the bins of every shard of
every stage per window (pipeline/eta.py weighs the windows); an instance reads every shard
with statistics once, then only those whose statistics changed since.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from google.cloud import firestore

from deepflix.adapters.gcp.firestore_docs import EPOCH, QUEUES
from deepflix.metering import METER
from deepflix.pipeline.eta import WINDOWS_KEPT, WindowedRuns
from deepflix.pipeline.models import Stage

# How long an instance reuses the histograms it read: one query per this many seconds.
TTL_S = 10.0
# The map of windows in a slot shard (`bins`, without windows, is no longer read).
RECENT = "recent"
# The commit time of a slot shard's last change of statistics (a server timestamp), set only
# by a write that adds durations: a reader asks only for the shards changed since its last
# read, and the claims that write the shard too do not make it read them again. A shard
# without it has no statistics, and a first read skips it.
STATS_UPDATED = "stats_updated"
# How far before the newest `updated` it saw a reader asks again: a strong query sees every
# commit up to its read time, so this only covers clocks that are not Firestore's (the
# emulator's). A shard read twice is merely read twice.
OVERLAP = timedelta(seconds=1)
# Windows a write deletes beyond those read: a shard written at least once in this many
# windows keeps no stale one; one left by a longer gap is only ignored by readers.
STALE_SWEPT = 3


def stale_windows(window: int) -> list[str]:
    """The windows a write in `window` deletes: just past those the ETA reads."""
    return [str(window - WINDOWS_KEPT - k) for k in range(STALE_SWEPT)]


def runs_of(docs: list[dict[str, Any]]) -> WindowedRuns:
    """Runs per (stage, scene count, window) and bin, summed over the slot shards."""
    out: dict[tuple[Stage, int, int], dict[int, int]] = {}
    for doc in docs:
        if doc.get("stage") not in Stage.__members__:
            continue
        stage = Stage(doc["stage"])
        for window, by_scenes in (doc.get(RECENT) or {}).items():
            for scenes, bins in (by_scenes or {}).items():
                counts = out.setdefault((stage, int(scenes), int(window)), {})
                for b, n in bins.items():
                    counts[int(b)] = counts.get(int(b), 0) + int(n)
    return out


class DurationHistograms:
    """Reads of the histograms, cached per instance for `ttl_s`; each read after the first
    asks only for the slot shards whose statistics changed since the newest change it has
    (billed one read per shard returned, at least one), where reading every shard each time
    cost every shard of every stage a refresh, whatever the rate of runs. Shards of a
    former, larger limit are read like any other: their runs still count."""

    def __init__(
        self,
        *,
        db: Any,
        rpc: dict[str, Any],
        ttl_s: float = TTL_S,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.db = db  # () -> the Firestore client
        self.rpc = rpc
        self.ttl_s = ttl_s
        self.monotonic = monotonic
        self.overlap = OVERLAP
        self._lock = threading.Lock()
        self._cached: tuple[float, WindowedRuns] | None = None
        self._docs: dict[str, dict[str, Any]] = {}  # the shards as last read, by document id
        self._newest: datetime | None = None  # the newest STATS_UPDATED among them

    def read(self) -> WindowedRuns:
        cached = self._cached
        if cached is not None and self.monotonic() - cached[0] < self.ttl_s:
            return cached[1]
        with self._lock:  # one refresh at a time: they would read the same shards
            cached = self._cached
            if cached is not None and self.monotonic() - cached[0] < self.ttl_s:
                return cached[1]
            # A range on the stamp alone: its single-field index answers it.
            since = EPOCH if self._newest is None else self._newest - self.overlap
            query = self.db().collection(QUEUES)
            query = query.where(filter=firestore.FieldFilter(STATS_UPDATED, ">", since))
            snaps = list(query.stream(**self.rpc))
            METER.add("firestore.reads", max(1, len(snaps)))
            for snap in snaps:
                doc = snap.to_dict() or {}
                self._docs[snap.id] = doc
                updated = doc.get(STATS_UPDATED)
                if updated is not None and (self._newest is None or updated > self._newest):
                    self._newest = updated
            out = runs_of(list(self._docs.values()))
            self._cached = (self.monotonic(), out)
            return out
