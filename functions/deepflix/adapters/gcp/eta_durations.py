"""The ETA's duration histograms on Firestore, read from the stage statistics' shards.

A success counts its run into a bin of `recent.{window}.{scene count}` in the stats shard it
already adds its duration to (firestore_txn.Txn._observe): no write of its own and no document
every movie writes; the same write deletes the windows the ETA no longer reads. Reading sums
the bins of every shard of every stage per window (pipeline/eta.py weighs the windows).
"""

from __future__ import annotations

import threading
import time
from typing import Any

from deepflix.adapters.gcp.firestore_docs import STATS
from deepflix.metering import METER
from deepflix.pipeline.eta import WINDOWS_KEPT, WindowedRuns
from deepflix.pipeline.models import Stage

# How long an instance reuses the histograms it read: one query per this many seconds.
TTL_S = 10.0
# The map of windows in a stats shard (`bins`, without windows, is no longer read).
RECENT = "recent"
# Windows a write deletes beyond those read: a shard written at least once in this many
# windows keeps no stale one; one left by a longer gap is only ignored by readers.
STALE_SWEPT = 3


def stale_windows(window: int) -> list[str]:
    """The windows a write in `window` deletes: just past those the ETA reads."""
    return [str(window - WINDOWS_KEPT - k) for k in range(STALE_SWEPT)]


def runs_of(docs: list[dict[str, Any]]) -> WindowedRuns:
    """Runs per (stage, scene count, window) and bin, summed over the stats shards."""
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
    """Reads of the histograms, cached per instance for TTL_S."""

    def __init__(self, *, db: Any, rpc: dict[str, Any]) -> None:
        self.db = db  # () -> the Firestore client
        self.rpc = rpc
        self._lock = threading.Lock()
        self._cached: tuple[float, WindowedRuns] = (-TTL_S, {})

    def read(self) -> WindowedRuns:
        at, history = self._cached
        if time.monotonic() - at < TTL_S:
            return history
        snaps = list(self.db().collection(STATS).stream(**self.rpc))
        METER.add("firestore.reads", max(1, len(snaps)))
        out = runs_of([s.to_dict() or {} for s in snaps])
        with self._lock:
            self._cached = (time.monotonic(), out)
        return out
