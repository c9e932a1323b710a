"""The ETA's duration histograms on Firestore: a document per (stage, scene count), its bins
counted up by blind increments in the batch that records a run's success (pipeline/eta.py).

Their own collection, apart from the stage statistics, so a success adds one increment and
reads nothing: bounded at 3 stages x 24 scene counts documents of at most ~200 bins each.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from google.cloud import firestore

from deepflix.metering import METER
from deepflix.pipeline.eta import History, duration_bin
from deepflix.pipeline.models import Stage

ETA_DURATIONS = "eta_durations"
# How long an instance reuses the histograms it read: one query per this many seconds.
TTL_S = 10.0


def record(batch: Any, db: Any, stage: Stage, scenes: int, seconds: float) -> int:
    """Count one run into `batch` (no read, no precondition); returns the writes added."""
    ref = db.collection(ETA_DURATIONS).document(f"{stage.value}-{scenes}")
    data = {
        "stage": stage.value,
        "scenes": scenes,
        "bins": {str(duration_bin(seconds)): firestore.Increment(1)},
    }
    batch.set(ref, data, merge=True)
    return 1


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
        snaps = list(self.db().collection(ETA_DURATIONS).stream(**self.rpc))
        METER.add("firestore.reads", max(1, len(snaps)))
        out: dict[tuple[Stage, int], dict[int, int]] = {}
        for s in snaps:
            doc = s.to_dict() or {}
            if doc.get("stage") not in Stage.__members__:
                continue
            bins = doc.get("bins") or {}
            key = (Stage(doc["stage"]), int(doc["scenes"]))
            out[key] = {int(b): int(n) for b, n in bins.items()}
        with self._lock:
            self._cached = (time.monotonic(), out)
        return out
