"""Parsed movies by row version, so a load parses a movie's JSON document only once."""

from __future__ import annotations

import random
import threading

from deepflix.adapters.local.db import Database
from deepflix.pipeline.models import Movie

# Parsed movies kept: enough for every movie in flight, bounded for a long-running service.
CACHE_SIZE = 20_000


def new_version() -> int:
    """A version no other save will write, so a cached parse can never be confused with a
    rolled-back one that reused a number."""
    return random.getrandbits(62)


class MovieCache:
    """The movies the store parsed or saved, by id: each with its row's version and the
    database generation the writer thread read or wrote it in (-1 when another thread
    parsed it).

    Every mutate, claim and status read loads a movie, and parsing its JSON document is the
    dearest part of that. Movies are never changed in place — a transition returns a copy —
    so a parsed one can be handed out again while its row keeps its version.
    """

    def __init__(self, db: Database) -> None:
        self.db = db
        self._movies: dict[str, tuple[int, Movie, int]] = {}
        self._lock = threading.Lock()

    def current(self, movie_id: str) -> Movie | None:
        """For the writer thread: the movie as its row is now, if the writer read or wrote it
        in this generation (no other connection has committed since); else None."""
        hit = self._movies.get(movie_id)
        if hit is not None and hit[2] == self.db.generation:
            return hit[1]
        return None

    def parse(self, row: tuple[str, int, str]) -> Movie:
        """The movie behind a row (id, version, doc), parsed once per version."""
        movie_id, version, doc = row
        hit = self._movies.get(movie_id)
        if hit is not None and hit[0] == version:
            if self.db.is_writer() and hit[2] != self.db.generation:
                self.remember(hit[1], version)
            return hit[1]
        movie = Movie.model_validate_json(doc)
        self.remember(movie, version)
        return movie

    def remember(self, movie: Movie, version: int) -> None:
        """Keep `movie` as the parse of its row at `version` (the oldest goes when full)."""
        generation = self.db.generation if self.db.is_writer() else -1
        with self._lock:
            if len(self._movies) >= CACHE_SIZE:
                self._movies.pop(next(iter(self._movies)))
            self._movies[movie.id] = (version, movie, generation)

    def forget(self, movie_id: str) -> None:
        """The movie's row is gone (deleted)."""
        with self._lock:
            self._movies.pop(movie_id, None)

    def clear(self) -> None:
        with self._lock:
            self._movies.clear()
