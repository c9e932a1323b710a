"""What the terminal tells: new movies, journal entries and pauses since a point (embedded)."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass

from deepflix.pipeline.models import Movie, Stage, StageStatus


@dataclass(frozen=True)
class Mark:
    """How far a reader has read: the last movie row and journal entry it saw."""

    movie_row: int
    journal_seq: int


@dataclass(frozen=True)
class Change:
    """One change of a stage's status, with the movie as it is now."""

    movie: Movie
    stage: Stage
    attempt: int
    before: StageStatus
    after: StageStatus


def mark(conn: sqlite3.Connection) -> Mark:
    """The present: what a reader starting now has seen."""
    row = conn.execute("SELECT coalesce(max(rowid), 0) FROM movies").fetchone()
    seq = conn.execute("SELECT coalesce(max(seq), 0) FROM journal").fetchone()
    return Mark(int(row[0]), int(seq[0]))


def since(conn: sqlite3.Connection, at: Mark) -> tuple[list[Movie], list[Change], Mark]:
    """Movies created and stage changes applied after `at` (each in order), and the new mark.
    A movie created and changed in one interval is in both."""
    created = conn.execute(
        "SELECT rowid, doc FROM movies WHERE rowid > ? ORDER BY rowid", (at.movie_row,)
    ).fetchall()
    entries = conn.execute(
        "SELECT j.seq, j.stage, j.attempt, j.before, j.after, m.doc FROM journal j"
        " JOIN movies m ON m.id = j.movie_id WHERE j.seq > ? ORDER BY j.seq",
        (at.journal_seq,),
    ).fetchall()
    movies: dict[str, Movie] = {}

    def parse(doc: str) -> Movie:
        movie = Movie.model_validate_json(doc)
        return movies.setdefault(movie.id, movie)

    new = [parse(doc) for _, doc in created]
    changes = [
        Change(parse(doc), Stage(stage), int(attempt), StageStatus(before), StageStatus(after))
        for _, stage, attempt, before, after, doc in entries
    ]
    return (
        new,
        changes,
        Mark(
            max([at.movie_row, *(r for r, _ in created)]),
            max([at.journal_seq, *(e[0] for e in entries)]),
        ),
    )


def admission_paused(conn: sqlite3.Connection) -> bool:
    row = conn.execute("SELECT value FROM flags WHERE name = 'paused'").fetchone()
    return bool(row and row[0])
