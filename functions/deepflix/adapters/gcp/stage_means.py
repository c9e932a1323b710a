"""Each stage's mean run on Firestore: sums in its slot shards, reused briefly per instance."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from google.cloud.firestore_v1.aggregation import AggregationQuery

from deepflix.adapters.gcp.firestore_docs import QUEUES, eq
from deepflix.metering import METER
from deepflix.pipeline.models import Stage

# How long an instance reuses the means it read. Every position answer reads them (its
# waiting ETA, the create's longest wait), at one aggregation a stage: three billed reads
# an answer, the most of a status read. Reusing them is safe: a mean moves only when a
# stage run succeeds, by one sample among all of that stage's, so a few seconds change an
# estimate by far less than its own error; the ETA's histograms are reused 10 s alike
# (eta_durations.TTL_S), and the embedded store reuses its means 1 s.
TTL_S = 5.0


class StageMeans:
    """The mean duration per stage: one aggregation of the duration sums in the stage's slot
    shards each (a plain mean of every sample, where the running mean it replaces needed a
    read and a guarded write of one document per success), cached per instance for `ttl_s`.
    The shards of a former, larger limit match the stage too: their runs still count."""

    def __init__(
        self,
        *,
        db: Callable[[], Any],
        rpc: dict[str, Any],
        ttl_s: float = TTL_S,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.db = db  # () -> the Firestore client
        self.rpc = rpc
        self.ttl_s = ttl_s
        self.monotonic = monotonic
        self._lock = threading.Lock()
        self._cached: tuple[float, dict[Stage, float]] | None = None

    def read(self) -> dict[Stage, float]:
        cached = self._cached
        if cached is not None and self.monotonic() - cached[0] < self.ttl_s:
            return dict(cached[1])
        out = {}
        for stage in Stage:
            q = self.db().collection(QUEUES).where(filter=eq("stage", stage.value))
            agg = AggregationQuery(q).sum("sum_s", alias="sum_s").sum("n", alias="n")
            (row,) = agg.get(**self.rpc)
            METER.add("firestore.reads")
            got = {r.alias: r.value for r in row}
            if got.get("n"):
                out[stage] = float(got["sum_s"]) / float(got["n"])
        with self._lock:
            self._cached = (self.monotonic(), out)
        return dict(out)
