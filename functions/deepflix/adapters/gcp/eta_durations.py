"""The ETA's duration histograms on Firestore, read from the stage statistics' shards.

A success counts its run into a bin of `bins.{scene count}` in the stats shard it already adds
its duration to (firestore_txn.Txn._observe): no write of its own and no document every movie
writes. Reading sums the bins of every shard of every stage (pipeline/eta.py).
"""

from __future__ import annotations

import threading
import time
from typing import Any

from deepflix.adapters.gcp.firestore_docs import STATS
from deepflix.metering import METER
from deepflix.pipeline.eta import History
from deepflix.pipeline.models import Stage

# How long an instance reuses the histograms it read: one query per this many seconds.
TTL_S = 10.0


class DurationHistograms:
    """Reads of the histograms, cached per instance for TTL_S."""

    def __init__(self, *, db: Any, rpc: dict[str, Any]) -> None:
        self.db = db  # () -> the Firestore client
        self.rpc = rpc
        self._lock = threading.Lock()
        self._cached: tuple[float, History] = (-TTL_S, {})

    def read(self) -> History:
        at, history = self._cached
        if time.monotonic() - at < TTL_S:
            return history
        snaps = list(self.db().collection(STATS).stream(**self.rpc))
        METER.add("firestore.reads", max(1, len(snaps)))
        out: dict[tuple[Stage, int], dict[int, int]] = {}
        for s in snaps:
            doc = s.to_dict() or {}
            if doc.get("stage") not in Stage.__members__:
                continue
            stage = Stage(doc["stage"])
            for scenes, bins in (doc.get("bins") or {}).items():
                counts = out.setdefault((stage, int(scenes)), {})
                for b, n in bins.items():
                    counts[int(b)] = counts.get(int(b), 0) + int(n)
        with self._lock:
            self._cached = (time.monotonic(), out)
        return out
