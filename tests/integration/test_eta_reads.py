"""The ETA's reads: later stages' counts reused for a short time, then read again."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from deepflix.adapters.local.store import SqliteMovieStore
from deepflix.pipeline.eta_reads import EtaReads
from deepflix.pipeline.models import Movie, Stage
from tests.factories import CONFIG, T0, movie

pytestmark = pytest.mark.integration


class Counting:
    """The store, counting its position and count reads."""

    def __init__(self, store: SqliteMovieStore) -> None:
        self.store = store
        self.reads = 0

    def position(self, m: Movie, stage: Stage) -> tuple[int, int, int]:
        self.reads += 1
        return self.store.position(m, stage)

    def ahead(self, m: Movie, stage: Stage) -> int:
        self.reads += 1
        return self.store.ahead(m, stage)

    def running_counts(self) -> Any:
        self.reads += 1
        return self.store.running_counts()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.store, name)


def test_later_stage_counts_are_read_once_per_ttl_and_priority(tmp_path: Path) -> None:
    store = Counting(SqliteMovieStore(tmp_path / "movies.db"))
    clock = [0.0]
    reads = EtaReads(
        store=store,
        config=CONFIG,
        clock=lambda: T0,
        ttl_s=0.5,
        monotonic=lambda: clock[0],
    )
    normal, low = movie(), movie(priority="low")
    reads.estimate(normal, Stage.story, running=False, ahead=0)
    first = store.reads  # images and video positions, and the counts
    assert first == 3
    reads.estimate(movie(), Stage.story, running=False, ahead=0)
    assert store.reads == first  # same priority, within the TTL: nothing read
    reads.estimate(low, Stage.story, running=False, ahead=0)
    assert store.reads == first + 2  # another priority: its own positions
    clock[0] = 0.5
    reads.estimate(normal, Stage.story, running=False, ahead=0)
    assert store.reads == first + 2 + 3  # past the TTL: all read again
