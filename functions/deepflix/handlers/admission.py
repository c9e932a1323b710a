"""Where a new movie will wait longest, and whether paused admission holds it."""

from __future__ import annotations

from typing import Any

from deepflix.pipeline.eta_reads import as_waiting_in
from deepflix.pipeline.models import STAGES, Movie, MovieStatus, Stage
from deepflix.pipeline.position import QueuePosition, stage_seconds
from deepflix.pipeline.service import Pipeline


def longest_wait(
    pipeline: Pipeline, movie: Movie, position: QueuePosition | None
) -> dict[str, Any] | None:
    """The queue on the movie's way where it should wait longest as things stand: the
    movies ahead of it there (by its priority and arrival), the rounds they take at the
    stage's concurrency, each of its usual duration. None where no queue holds it up."""
    counts = pipeline.counts()
    observed = pipeline.mean_durations()
    best: tuple[float, Stage, int] | None = None
    for stage in STAGES:
        if position is not None and stage is position.stage:
            ahead = position.ahead
        else:
            ahead = pipeline.store.position(as_waiting_in(movie, stage), stage)[0]
        limit = pipeline.config[stage].concurrency
        must_finish = ahead + counts[stage].running - limit + 1
        if must_finish <= 0:
            continue
        wait = -(-must_finish // limit) * stage_seconds(stage, pipeline.config, observed)
        if best is None or wait > best[0]:
            best = (wait, stage, ahead)
    if best is None:
        return None
    return {"queue": best[1].value, "ahead": best[2], "wait_seconds": round(best[0], 2)}


def waits_for_admission(pipeline: Pipeline, movie: Movie) -> bool:
    """The movie is not admitted yet and admission is paused: it waits until resumed."""
    return movie.status is MovieStatus.queued and pipeline.admission_paused()
