"""A job keeps its work through a store outage, and an attempt lost to an outage costs nothing."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from deepflix.adapters.local.store import SqliteMovieStore
from deepflix.pipeline.errors import Unavailable
from deepflix.pipeline.models import MovieStatus, Stage, StageStatus
from deepflix.runtime.compose import build_embedded
from tests.factories import request

pytestmark = pytest.mark.integration


def embedded_images_running(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, **settings: str
) -> str:
    """A movie whose images attempt 1 runs, with the job's environment set as run_job sets it."""
    from deepflix.settings import get_settings

    monkeypatch.setenv("DEEPFLIX_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("DEEPFLIX_GENERATORS", "instant")
    for key, value in settings.items():
        monkeypatch.setenv(f"DEEPFLIX_{key.upper()}", value)
    get_settings.cache_clear()
    runtime = build_embedded(get_settings())
    movie = runtime.pipeline.create(request(scene_count=1), owner="u", idempotency_key=None)
    runtime.pipeline.dispatch(Stage.story)
    runtime.runner.execute(movie.id, Stage.story, 1)
    assert runtime.pipeline.get(movie.id).stages[Stage.images].status is StageStatus.running
    monkeypatch.setenv("DEEPFLIX_JOB_MOVIE_ID", movie.id)
    monkeypatch.setenv("DEEPFLIX_JOB_STAGE", "images")
    monkeypatch.setenv("DEEPFLIX_JOB_ATTEMPT", "1")
    return movie.id


def flaky_saves(monkeypatch: pytest.MonkeyPatch, failures: int | None) -> list[int]:
    """Make the store's saves fail with Unavailable `failures` times (None: always)."""
    real = SqliteMovieStore.mutate
    refused = [0]

    def mutate(self: SqliteMovieStore, movie_id: str, fn: Any) -> Any:
        if failures is None or refused[0] < failures:
            refused[0] += 1
            raise Unavailable("the embedded database is unavailable: database is locked")
        return real(self, movie_id, fn)

    monkeypatch.setattr(SqliteMovieStore, "mutate", mutate)
    return refused


def test_a_job_records_its_result_once_the_store_is_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from deepflix.entrypoints.job import main
    from deepflix.settings import get_settings

    movie_id = embedded_images_running(tmp_path, monkeypatch)
    refused = flaky_saves(monkeypatch, 3)
    assert main() == 0  # the work is kept: recorded after the outage, not redone
    monkeypatch.undo()
    assert refused[0] == 3
    monkeypatch.setenv("DEEPFLIX_DATA_DIR", str(tmp_path / "data"))
    get_settings.cache_clear()
    movie = build_embedded(get_settings()).pipeline.get(movie_id)
    images = movie.stages[Stage.images]
    assert images.status is StageStatus.succeeded and images.attempts == 1


def test_a_job_that_could_not_record_its_result_costs_no_attempt(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from deepflix.entrypoints.job import main
    from deepflix.settings import get_settings

    movie_id = embedded_images_running(
        tmp_path, monkeypatch, images_timeout_s="2", max_attempts="1"
    )
    with monkeypatch.context() as outage:
        flaky_saves(outage, None)
        code = main()
    assert code != 0
    runtime = build_embedded(get_settings())
    # What the job runner's exit watcher reports for such an exit.
    runtime.runner.job_exited(movie_id, Stage.images, 1, code)
    images = runtime.pipeline.get(movie_id).stages[Stage.images]
    # Retried, though one attempt per run is all the policy allows: the outage is not charged.
    assert images.status is StageStatus.waiting
    assert images.last_error is not None and images.last_error.code == "unavailable"
    assert runtime.pipeline.get(movie_id).status is MovieStatus.images
