"""The movie store's operator side in SQLite: filtered lists, deletes, per-queue pauses."""

from __future__ import annotations

import sqlite3
from typing import Any

from deepflix.adapters.local.db import Database
from deepflix.adapters.local.movie_cache import MovieCache
from deepflix.pipeline.errors import Conflict
from deepflix.pipeline.models import STAGES, Movie, Stage, decode_cursor, encode_cursor
from deepflix.pipeline.operator import MIN_ID_PREFIX, MovieFilter
from deepflix.pipeline.ports import Page

# A paused stage is a row of the flags table that admission's flag lives in.
PAUSE = "pause:"
# The stage a failed or cancelled movie stopped in is the one whose own status says so; no
# stage of a movie that goes on has either (a retry makes the stopped stage wait again).
_STOPPED_IN = "json_extract(doc, '$.stages.' || ? || '.status') IN ('failed', 'cancelled')"


def _like_prefix(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return escaped + "%"


def filter_sql(where: MovieFilter) -> tuple[list[str], list[Any]]:
    """SQL conditions (and their arguments) picking what operator.matches() picks. The
    prompt is compared lower-cased by SQLite's lower(), which folds ASCII letters only."""
    conditions: list[str] = []
    args: list[Any] = []
    if where.status is not None:
        conditions.append("json_extract(doc, '$.status') = ?")
        args.append(where.status.value)
    if where.stage is not None:
        conditions.append(f"(waiting_stage = ? OR running_stage = ? OR {_STOPPED_IN})")
        args += [where.stage.value] * 3
    if where.text:
        needle = where.text.lower()
        prompt = "instr(lower(json_extract(doc, '$.request.prompt')), ?) > 0"
        if len(needle) >= MIN_ID_PREFIX:
            conditions.append(f"(id LIKE ? ESCAPE '\\' OR {prompt})")
            args += [_like_prefix(needle), needle]
        else:
            conditions.append(prompt)
            args.append(needle)
    return conditions, args


class OperatorRows:
    """What SqliteMovieStore does for the operator (a part of it, kept in its own file)."""

    db: Database
    _cache: MovieCache
    # (generation, paused stages), as the writer last read or wrote them
    _stage_pauses: tuple[int, frozenset[Stage]] = (-1, frozenset())

    def _current(self) -> sqlite3.Connection:
        raise NotImplementedError  # the store's

    def _load(self, conn: sqlite3.Connection, movie_id: str) -> Movie | None:
        raise NotImplementedError  # the store's

    def list(
        self,
        *,
        owner: str | None,
        limit: int,
        cursor: str | None,
        where: MovieFilter | None = None,
    ) -> Page:
        conditions, args = filter_sql(where) if where is not None else ([], [])
        if owner is not None:
            conditions.append("owner = ?")
            args.append(owner)
        if cursor is not None:
            arrival, movie_id = decode_cursor(cursor)
            conditions.append("(arrival, id) < (?, ?)")
            args += [arrival, movie_id]
        sql = "SELECT id, version, doc FROM movies"
        if conditions:
            sql += " WHERE " + " AND ".join(conditions)
        sql += " ORDER BY arrival DESC, id DESC LIMIT ?"
        rows = self._current().execute(sql, (*args, limit + 1)).fetchall()
        movies = [self._cache.parse(row) for row in rows[:limit]]
        return Page(movies, encode_cursor(movies[-1]) if len(rows) > limit else None)

    def delete(self, movie_id: str) -> bool:
        def write(conn: sqlite3.Connection) -> bool:
            movie = self._load(conn, movie_id)  # as this batch left it
            if movie is None:
                return False
            if movie.waiting_stage is not None or movie.running_stage is not None:
                raise Conflict(
                    "only a finished movie can be removed", details={"status": movie.status.value}
                )
            # This batch's saves first (refused before any change, so a refusal undoes no
            # other write of the batch): a save of the movie written after its delete would
            # find no row, but its journal rows would stay behind.
            self.db.flush(conn)
            for sql in (
                "DELETE FROM movies WHERE id = ?",
                "DELETE FROM journal WHERE movie_id = ?",
                "DELETE FROM idempotency WHERE movie_id = ?",
            ):
                conn.execute(sql, (movie_id,))
            self._cache.forget(movie_id)
            return True

        return self.db.write(write)

    def paused_stages(self) -> frozenset[Stage]:
        # Asked by every dispatch, which runs on the writer thread: read once a generation.
        generation, paused = self._stage_pauses
        if self.db.is_writer() and generation == self.db.generation:
            return paused
        rows = self.db.conn().execute(
            "SELECT name FROM flags WHERE name LIKE 'pause:%' AND value = 1"
        )
        names = {name.removeprefix(PAUSE) for (name,) in rows}
        paused = frozenset(s for s in STAGES if s.value in names)
        if self.db.is_writer():
            self._stage_pauses = (self.db.generation, paused)
        return paused

    def set_stage_paused(self, stage: Stage, paused: bool) -> None:
        def write(conn: sqlite3.Connection) -> None:
            conn.execute(
                "INSERT INTO flags VALUES (?, ?) ON CONFLICT DO UPDATE SET value = excluded.value",
                (PAUSE + stage.value, int(paused)),
            )
            # Read again at the next ask: this write may still roll back with its batch.
            self._stage_pauses = (-1, frozenset())

        self.db.write(write)
