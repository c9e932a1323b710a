"""The figures behind `/metrics` from the embedded database: the journal read on from where
the last scrape stopped, the queue's oldest ready movie per stage."""

from __future__ import annotations

import threading
import time

from deepflix.adapters.local.db import Database
from deepflix.pipeline.figures import Figures, StageFigures
from deepflix.pipeline.models import STAGES

# Each start, success and failure since `seq`; a success with its run's duration (from the
# start of the same attempt).
_RUNS = """
SELECT s.seq, s.stage, s.after, s.attempt,
  CASE WHEN s.after = 'succeeded' THEN 86400.0 * (julianday(s.at) - julianday((
    SELECT r.at FROM journal r
    WHERE r.movie_id = s.movie_id AND r.stage = s.stage AND r.attempt = s.attempt
      AND r.after = 'running' AND r.seq < s.seq
    ORDER BY r.seq DESC LIMIT 1)))
  END
FROM journal s
WHERE s.seq > ? AND s.after IN ('succeeded', 'failed', 'running')
ORDER BY s.seq
"""


class SqliteFigures:
    """Counters kept in memory and read on from the last journal row seen: a scrape reads
    what changed since the one before, not the whole journal (the first reads it all)."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self._seq = 0
        self._stages = {s.value: StageFigures() for s in STAGES}
        self._lock = threading.Lock()

    def __call__(self) -> Figures:
        with self._lock:
            conn = self.db.conn()
            for seq, stage, after, attempt, seconds in conn.execute(_RUNS, (self._seq,)):
                self._seq = max(self._seq, seq)
                figures = self._stages.setdefault(stage, StageFigures())
                if after == "running":
                    figures.retries += attempt > 1
                elif after == "failed":
                    figures.failed += 1
                else:
                    figures.succeeded += 1
                    if seconds is not None:
                        figures.durations.add(max(seconds, 0.0))
            now = time.time()
            oldest = dict(
                conn.execute(
                    "SELECT waiting_stage, min(ready_at) FROM movies"
                    " WHERE waiting_stage IS NOT NULL AND ready_at <= ? GROUP BY waiting_stage",
                    (now,),
                ).fetchall()
            )
            for stage, figures in self._stages.items():
                ready = oldest.get(stage)
                figures.oldest_waiting_s = now - ready if ready is not None else None
            return {k: _copy(v) for k, v in self._stages.items()}


def _copy(f: StageFigures) -> StageFigures:
    d = f.durations
    durations = type(d)(list(d.buckets), d.total_s, d.count)
    return StageFigures(f.oldest_waiting_s, f.succeeded, f.failed, f.retries, durations)
