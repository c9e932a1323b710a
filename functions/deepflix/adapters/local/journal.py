"""The journal, stage means and ETA runs per window: rows a batch writes once, at its end."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime

import orjson

from deepflix.adapters.local.db import Database, json_rows, json_table
from deepflix.pipeline.eta import WINDOWS_KEPT, WindowedRuns, duration_bin, window_of
from deepflix.pipeline.journal import stage_changes
from deepflix.pipeline.models import Movie, Stage
from deepflix.pipeline.policy import EWMA_WEIGHT, running_mean

_STATS = json_table(("stage", "first", "n", "keep", "plus"), "NEW.stage_stats")
# Written at each batch's end (a Buffer): journal rows as they are; per stage, its samples
# folded into the mean it has (UPDATE), or starting it (INSERT, for a stage with none yet).
STATEMENTS = {
    "journal": "INSERT INTO journal (movie_id, stage, attempt, before, after, at) "
    + json_rows(6, "NEW.journal"),
    "stage_stats": f"UPDATE stage_stats SET mean_s = mean_s * v.keep + v.plus,"  # nosec B608 # constant names; values are bound parameters
    f" samples = samples + v.n FROM {_STATS} AS v WHERE stage_stats.stage = v.stage;\n"
    f"INSERT INTO stage_stats SELECT stage, first, n FROM {_STATS} WHERE true"
    " ON CONFLICT (stage) DO NOTHING",
    # The duration histograms behind ETAs (pipeline/eta.py): one count per run, window and bin.
    "eta_runs": "INSERT INTO eta_runs (stage, scenes, window, bin, runs) "  # nosec B608 # constant names; values are bound parameters
    + json_rows(5, "NEW.eta_runs")
    + " ON CONFLICT (stage, scenes, window, bin) DO UPDATE SET runs = runs + excluded.runs",  # nosec B608 # constant names; values are bound parameters
}


class History:
    """A Buffer of the Database: the journal and stage means a batch's saves changed,
    written at its end, not a statement per change (each gives the GIL away and waits to
    take it back)."""

    statements = STATEMENTS

    def __init__(self, db: Database) -> None:
        self.db = db
        self._journal: list[tuple[str, str, int, str, str, str]] = []
        self._durations: dict[str, list[float]] = {}
        self._bins: dict[tuple[str, int, int, int], int] = {}
        db.buffer(self)

    def saved(self, old: Movie, new: Movie) -> None:
        """Note the journal entries and duration samples of one save (stage_changes)."""
        journal, durations = stage_changes(old, new)
        if not journal:
            return
        self.db.staged()
        for e in journal:
            self._journal.append(
                (new.id, e.stage.value, e.attempt, e.before.value, e.after.value, e.at.isoformat())
            )
        window = window_of(new.updated_at)  # when the runs ended
        for stage, seconds in durations:
            self._durations.setdefault(stage.value, []).append(seconds)
            key = (stage.value, new.request.scene_count, window, duration_bin(seconds))
            self._bins[key] = self._bins.get(key, 0) + 1

    def rows(self) -> dict[str, str]:
        out: dict[str, str] = {}
        if self._journal:
            out["journal"] = orjson.dumps(self._journal).decode()
        if self._durations:
            # Folding the samples into a mean m gives m * keep + running_mean(0, samples); a
            # stage's first samples start its mean (the INSERT's value).
            out["stage_stats"] = orjson.dumps(
                [
                    (
                        stage,
                        running_mean(samples[0], samples[1:]),
                        len(samples),
                        (1 - EWMA_WEIGHT) ** len(samples),
                        running_mean(0.0, samples),
                    )
                    for stage, samples in self._durations.items()
                ]
            ).decode()
        if self._bins:
            out["eta_runs"] = orjson.dumps([(*k, n) for k, n in self._bins.items()]).decode()
        self.discard()
        return out

    def discard(self) -> None:
        self._journal.clear()
        self._durations.clear()
        self._bins.clear()


# A stage's windows older than the ETA reads (pipeline/eta.recent), from its newest.
PRUNE_ETA_RUNS = """
DELETE FROM eta_runs WHERE window <= (
    SELECT MAX(e.window) FROM eta_runs AS e WHERE e.stage = eta_runs.stage
) - ?
"""


def windowed_runs(conn: sqlite3.Connection) -> None:
    """A file from before the windows: its runs count as of now, then its table goes."""
    if conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'eta_durations'").fetchone():
        window = window_of(datetime.now(UTC))
        conn.execute(
            "INSERT OR IGNORE INTO eta_runs SELECT stage, scenes, ?, bin, runs FROM eta_durations",
            (window,),
        )
        conn.execute("DROP TABLE eta_durations")


def eta_runs(conn: sqlite3.Connection) -> WindowedRuns:
    """The ETA's histograms as stored: runs per (stage, scene count, window) and bin."""
    out: dict[tuple[Stage, int, int], dict[int, int]] = {}
    for stage, scenes, window, b, runs in conn.execute(
        "SELECT stage, scenes, window, bin, runs FROM eta_runs"
    ):
        out.setdefault((Stage(stage), scenes, window), {})[b] = runs
    return out


def prune_eta_runs(conn: sqlite3.Connection) -> int:
    return int(conn.execute(PRUNE_ETA_RUNS, (WINDOWS_KEPT,)).rowcount)
