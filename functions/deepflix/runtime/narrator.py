"""At a terminal, `deepflix serve` says what happens to movies in a person's words."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import datetime

from deepflix import logs
from deepflix.adapters.local import journal_feed
from deepflix.adapters.local.db import Database
from deepflix.adapters.local.journal_feed import Change
from deepflix.pipeline.models import Movie, Stage, StageStatus

log = logs.get("narrator")
INTERVAL_S = 0.5
NAME_CHARS = 48


def _name(movie: Movie) -> str:
    text = movie.request.title or movie.request.prompt
    return f'"{text if len(text) <= NAME_CHARS else text[: NAME_CHARS - 1] + "…"}"'


def _took(seconds: float | None) -> str:
    return f" in {seconds:.1f}s" if seconds is not None else ""


def created(movie: Movie) -> str:
    r = movie.request
    return (
        f"movie {movie.id[:8]} created: {_name(movie)}"
        f" ({r.style}, {r.scene_count} scenes, {r.priority.value} priority)"
    )


def changed(change: Change) -> str | None:
    """The line for one stage change; None for the ones not worth a line (a claim)."""
    m, stage, after = change.movie, change.stage, change.after
    sid = m.id[:8]
    st = m.stages[stage]
    error = st.last_error
    if after is StageStatus.succeeded:
        if stage is Stage.video:
            return f"movie {sid} finished{_took(_total(m))}: {_name(m)} is ready"
        return f"movie {sid} {stage.value} succeeded{_took(st.duration_s)}"
    if after is StageStatus.failed:
        reason = f": {error.message} ({error.code})" if error else ""
        return f"movie {sid} FAILED in {stage.value} after attempt {change.attempt}{reason}"
    if after is StageStatus.cancelled:
        return f"movie {sid} cancelled in {stage.value}"
    if change.before is StageStatus.running and after is StageStatus.waiting and error:
        return (
            f"movie {sid} {stage.value} attempt {error.attempt} failed, will retry:"
            f" {error.message} ({error.code})"
        )
    return None


def _total(m: Movie) -> float | None:
    end: datetime | None = m.finished_at or m.updated_at
    return (end - m.created_at).total_seconds() if end else None


class Narrator:
    """Reads what changed every INTERVAL_S (a thread of its own, reading the database as
    any reader does: stage outcomes are recorded by job processes too) and says it."""

    def __init__(self, db: Database, out: Callable[[str], None]) -> None:
        self.db = db
        self.out = out
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        conn = self.db.conn()
        at, paused = journal_feed.mark(conn), journal_feed.admission_paused(conn)
        if paused:
            self.out("admission is paused: new movies wait (resume: deepflix resume)")
        self._thread = threading.Thread(
            target=self._run, args=(at, paused), name="narrator", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _run(self, at: journal_feed.Mark, paused: bool) -> None:
        while not self._stop.wait(INTERVAL_S):
            try:
                at, paused = self.tell(at, paused)
            except Exception as e:  # the next interval tries again; the service goes on
                log.warning("the narrator could not read what changed: %s", e)

    def tell(self, at: journal_feed.Mark, paused: bool) -> tuple[journal_feed.Mark, bool]:
        conn = self.db.conn()
        new, stage_changes, at = journal_feed.since(conn, at)
        for movie in new:
            self.out(created(movie))
        said: set[tuple[str, StageStatus]] = set()
        for change in stage_changes:
            line = changed(change)
            # A cancel ends every stage at once: one line for the movie.
            key = (change.movie.id, change.after)
            if line is None or (change.after is StageStatus.cancelled and key in said):
                continue
            said.add(key)
            self.out(line)
        now = journal_feed.admission_paused(conn)
        if now != paused:
            self.out(
                "admission paused: new movies wait until it is resumed"
                if now
                else "admission resumed"
            )
        return at, now
