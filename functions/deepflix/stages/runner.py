"""Runs a stage request: in-process for CPU stages, handed to a job for GPU stages."""

from __future__ import annotations

import time
from typing import Any

from deepflix import logs
from deepflix.pipeline.errors import StageWorkError
from deepflix.pipeline.messages import StageRequest
from deepflix.pipeline.models import Movie, Stage, StageStatus
from deepflix.pipeline.service import Pipeline
from deepflix.pipeline.transitions import Progressed, StageFailed, StageSucceeded
from deepflix.stages.executors import StageExecutor
from deepflix.stages.faults import FaultPlan

log = logs.get("stages")
# The least time between two progress reports of one attempt.
PROGRESS_INTERVAL_S = 0.5


class StageRunner:
    def __init__(
        self,
        *,
        pipeline: Pipeline,
        work: StageExecutor,
        faults: FaultPlan,
    ) -> None:
        self.pipeline = pipeline
        self.work = work
        self.faults = faults

    def handle(self, body: dict[str, Any]) -> None:
        """Handle one delivery of a stage request; duplicates and stale attempts do nothing."""
        req = StageRequest.model_validate(body)
        movie = self._current(req.movie_id, req.stage, req.attempt)
        if movie is None:
            return
        policy = self.pipeline.config[req.stage]
        if not policy.runs_as_job:
            self.execute(req.movie_id, req.stage, req.attempt, current=movie)
            return
        if movie.stages[req.stage].execution is not None:
            return  # a redelivery after the job was already started
        self.pipeline.start_job(req.movie_id, req.stage, req.attempt)

    def execute(
        self, movie_id: str, stage: Stage, attempt: int, *, current: Movie | None = None
    ) -> bool:
        """Do the stage's work and record the outcome.

        Returns False only for a retryable failure, which a job turns into a non-zero exit.
        `current` is the movie as the caller just loaded and checked it (saves a read).
        """
        movie = current if current is not None else self._current(movie_id, stage, attempt)
        if movie is None:
            return True
        ctx = {"movie_id": movie_id, "stage": stage.value, "attempt": attempt}
        log.info("stage started", extra=ctx)
        clock = self.pipeline.clock

        last = [time.monotonic()]

        def progress(pct: int) -> None:
            # Each report is a write of the movie document: a few per second are enough for
            # a progress bar, and a fast stage finishing before the first interval writes none.
            now = time.monotonic()
            if now - last[0] >= PROGRESS_INTERVAL_S:
                last[0] = now
                self.pipeline.report(movie_id, Progressed(stage, attempt, pct, clock()))

        try:
            self.faults.check(stage, movie)
            timeout_s = self.pipeline.config[stage].timeout_s
            outputs = self.work.run(stage, movie, progress, timeout_s)
        except Exception as e:  # every failure is recorded; the class decides retry
            work = e if isinstance(e, StageWorkError) else None
            code = work.code if work else "unexpected_error"
            retryable = work.retryable if work else True
            log.warning("stage failed: %s", e, exc_info=work is None, extra=ctx)
            self.pipeline.report(
                movie_id, StageFailed(stage, attempt, code, str(e), retryable, clock())
            )
            return not retryable
        self.pipeline.report(
            movie_id, StageSucceeded(stage, attempt, tuple(sorted(outputs.items())), clock())
        )
        log.info("stage succeeded", extra=ctx)
        return True

    def close(self) -> None:
        self.work.close()

    def job_exited(self, movie_id: str, stage: Stage, attempt: int, returncode: int) -> None:
        """A job ended: if it did not record an outcome (crash, kill), record a failure."""
        if self._current(movie_id, stage, attempt) is None:
            return
        log.warning(
            "job exited with code %d without recording a result",
            returncode,
            extra={"movie_id": movie_id, "stage": stage.value, "attempt": attempt},
        )
        self.pipeline.report(
            movie_id,
            StageFailed(
                stage,
                attempt,
                "job_exited",
                f"job exited with code {returncode} without recording a result",
                True,
                self.pipeline.clock(),
            ),
        )

    def _current(self, movie_id: str, stage: Stage, attempt: int) -> Movie | None:
        movie = self.pipeline.find(movie_id)
        if movie is None:
            return None
        st = movie.stages[stage]
        if st.status is not StageStatus.running or st.attempts != attempt:
            return None
        return movie
