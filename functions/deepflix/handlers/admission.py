"""Where a new movie will wait longest, as its create's answer tells it."""

from __future__ import annotations

from typing import Any

from deepflix.pipeline.eta_reads import as_waiting_in
from deepflix.pipeline.models import STAGES, Movie, Stage
from deepflix.pipeline.outlook import Outlook
from deepflix.pipeline.position import stage_seconds
from deepflix.pipeline.service import Pipeline


def longest_wait(pipeline: Pipeline, movie: Movie, outlook: Outlook) -> dict[str, Any] | None:
    """The queue on the movie's way where it should wait longest as things stand: the
    movies ahead of it there (by its priority and arrival), the rounds they take at the
    stage's concurrency, each of its usual duration. None where no queue holds it up.

    What it reads is what the answer's ETA read: the running counts and, for the queues
    after the movie's stage, the movies before it were it to arrive there now (the ETA's
    reads, reused briefly; for a movie just made, arriving now is its own arrival), and the
    stage means of the answer's position."""
    counts = pipeline.etas.counts()
    observed = outlook.means
    position = outlook.position
    here = movie.current_stage
    later = STAGES[STAGES.index(here) + 1 :] if here is not None else ()
    best: tuple[float, Stage, int] | None = None
    for stage in STAGES:
        if position is not None and stage is position.stage:
            ahead = position.ahead
        elif stage in later:
            ahead = pipeline.etas.ahead_in(movie, stage)
        else:  # a queue it has passed (a repeated create's older movie), as if it waited there
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
