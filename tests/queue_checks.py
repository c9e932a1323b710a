"""Queue positions checked against a brute-force count, for any MovieStore."""

from __future__ import annotations

from deepflix.pipeline.models import STAGES, Movie
from deepflix.pipeline.ports import MovieStore


def assert_positions_exact(store: MovieStore, movies: list[Movie]) -> int:
    """Every waiting movie's position, and every stage's counts, as a plain count of
    `movies` (all the store holds) has them; returns the positions checked."""
    checked = 0
    counted = store.counts()
    for stage in STAGES:
        waiting = sorted((x for x in movies if x.waiting_stage is stage), key=lambda x: x.sort_key)
        running = sum(x.running_stage is stage for x in movies)
        for i, m in enumerate(waiting):
            assert store.position(m, stage) == (i, len(waiting), running), (m.id, stage)
            checked += 1
        counts = counted[stage]
        assert (counts.waiting, counts.running) == (len(waiting), running)
        outside = next((x for x in movies if x.waiting_stage is not stage), None)
        if outside is not None:
            assert store.position(outside, stage) == (0, len(waiting), running)
    return checked
