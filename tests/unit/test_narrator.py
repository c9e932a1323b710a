"""The words `deepflix serve` says at a terminal for each change of a movie."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from deepflix.adapters.local.journal_feed import Change
from deepflix.pipeline.models import Movie, Stage, StageError, StageStatus
from deepflix.runtime import narrator
from tests import factories

pytestmark = pytest.mark.unit

AT = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)


def with_stage(movie: Movie, stage: Stage, **fields: object) -> Movie:
    stages = dict(movie.stages)
    stages[stage] = stages[stage].model_copy(update=fields)
    return movie.model_copy(update={"stages": stages})


def change(movie: Movie, stage: Stage, before: StageStatus, after: StageStatus) -> str | None:
    return narrator.changed(Change(movie, stage, 2, before, after))


def test_a_new_movie_is_named_with_what_was_asked() -> None:
    movie = factories.movie(prompt="A kite", style="noir")
    assert narrator.created(movie) == (
        f'movie {movie.id[:8]} created: "A kite" (noir, 3 scenes, normal priority)'
    )


def test_successes_failures_and_retries_are_said_with_their_reason() -> None:
    movie = factories.movie()
    sid = movie.id[:8]
    done = with_stage(movie, Stage.images, started_at=AT, finished_at=AT + timedelta(seconds=3.04))
    running, waiting = StageStatus.running, StageStatus.waiting
    assert change(done, Stage.images, running, StageStatus.succeeded) == (
        f"movie {sid} images succeeded in 3.0s"
    )
    error = StageError(code="render_failed", message="ffmpeg exited with 1", retryable=True,
                       attempt=2, at=AT)  # fmt: skip
    retrying = with_stage(movie, Stage.video, last_error=error)
    assert change(retrying, Stage.video, running, waiting) == (
        f"movie {sid} video attempt 2 failed, will retry: ffmpeg exited with 1 (render_failed)"
    )
    assert change(retrying, Stage.video, running, StageStatus.failed) == (
        f"movie {sid} FAILED in video after attempt 2: ffmpeg exited with 1 (render_failed)"
    )
    assert change(movie, Stage.story, StageStatus.pending, waiting) is None  # not worth a line
    assert change(movie, Stage.story, waiting, running) is None


def test_the_last_stage_succeeding_is_the_movie_finished() -> None:
    movie = factories.movie(prompt="A kite", title="Kite")
    finished = movie.model_copy(update={"finished_at": movie.created_at + timedelta(seconds=12)})
    line = change(finished, Stage.video, StageStatus.running, StageStatus.succeeded)
    assert line == f'movie {movie.id[:8]} finished in 12.0s: "Kite" is ready'
