"""The journal and the stage means: rows a batch gathers and writes once, before its commit."""

from __future__ import annotations

import sqlite3

import orjson

from deepflix.adapters.local.db import Database, json_rows
from deepflix.pipeline.models import STAGES, Movie, StageStatus
from deepflix.pipeline.policy import EWMA_WEIGHT, running_mean


class History:
    """A Buffer of the Database: one statement per batch for each table, not one per change
    (every statement gives the GIL away and waits to take it back)."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self._journal: list[tuple[str, str, int, str, str, str]] = []
        self._durations: dict[str, list[float]] = {}
        db.buffer(self)

    def saved(self, old: Movie, new: Movie) -> None:
        """Note each stage whose status changed, and the duration of each that succeeded."""
        for stage in STAGES:
            before, after = old.stages[stage], new.stages[stage]
            if before.status is after.status:
                continue
            self.db.staged()
            at = new.updated_at.isoformat()
            row = (new.id, stage.value, after.attempts, before.status.value, after.status.value, at)
            self._journal.append(row)
            if after.status is StageStatus.succeeded and before.status is StageStatus.running:
                self._durations.setdefault(stage.value, []).append(after.duration_s or 0.0)

    def flush(self, conn: sqlite3.Connection) -> None:
        if self._journal:
            conn.execute(
                "INSERT INTO journal (movie_id, stage, attempt, before, after, at) " + json_rows(6),
                (orjson.dumps(self._journal).decode(),),
            )
        for stage, samples in self._durations.items():
            # Folding the samples into a mean m gives m * keep + running_mean(0, samples); a
            # stage's first sample starts its mean (the INSERT's value).
            keep = (1 - EWMA_WEIGHT) ** len(samples)
            conn.execute(
                "INSERT INTO stage_stats VALUES (?, ?, ?) ON CONFLICT (stage) DO UPDATE"
                " SET mean_s = mean_s * ? + ?, samples = samples + excluded.samples",
                (
                    stage,
                    running_mean(samples[0], samples[1:]),
                    len(samples),
                    keep,
                    running_mean(0.0, samples),
                ),
            )
        self.discard()

    def discard(self) -> None:
        self._journal.clear()
        self._durations.clear()
