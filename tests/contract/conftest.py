"""Adapters under contract: each port's suite runs against every implementation available."""

from __future__ import annotations

from pathlib import Path

import pytest

from deepflix.adapters.local.store import SqliteMovieStore
from deepflix.pipeline.ports import MovieStore


@pytest.fixture(params=["sqlite"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> MovieStore:
    if request.param == "sqlite":
        return SqliteMovieStore(tmp_path / "movies.db")
    raise AssertionError(request.param)
