"""Runs a stage request: in-process for CPU stages, handed to a job for GPU stages."""

from __future__ import annotations

import time
from typing import Any

from pydantic import BaseModel, ConfigDict

from deepflix import logs
from deepflix.pipeline.errors import StageWorkError, Unavailable
from deepflix.pipeline.events import Event, Progressed, StageFailed, StageSucceeded
from deepflix.pipeline.models import Movie, Stage, StageStatus
from deepflix.pipeline.ports import JOB_EXIT_UNAVAILABLE
from deepflix.pipeline.service import Pipeline
from deepflix.stages.executors import StageExecutor
from deepflix.stages.faults import FaultPlan

log = logs.get("stages")
# The least time between two progress reports of one attempt.
PROGRESS_INTERVAL_S = 0.5
# A job that cannot record its outcome (the store is away) tries again, backing off up to
# this long between tries, until this long before its attempt's deadline.
RECORD_BACKOFF_S, RECORD_MARGIN_S = 5.0, 2.0


class StageRequest(BaseModel):
    """Body of a `<stage>.requested` message."""

    model_config = ConfigDict(extra="ignore")

    movie_id: str
    stage: Stage
    attempt: int


class StageRunner:
    """Turns a stage request into stage work and its outcome: owns the checks that a request
    is for the attempt now running, the hand-off of GPU stages to a job, the progress
    reports, and the classing of failures (retryable or not) reported to the pipeline.

    The work itself is the executor's (in this thread, or a worker process).
    """

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
        # Starts the job only if no other delivery has claimed its start.
        self.pipeline.start_job(req.movie_id, req.stage, req.attempt)

    def execute(
        self,
        movie_id: str,
        stage: Stage,
        attempt: int,
        *,
        current: Movie | None = None,
        patient: bool = False,
    ) -> bool:
        """Do the stage's work and record the outcome.

        Returns False only for a retryable failure, which a job turns into a non-zero exit.
        `current` is the movie as the caller just loaded and checked it (saves a read).
        With `patient` (a job: its work is dear to redo) an outcome the store cannot take
        now is recorded again and again until shortly before the attempt's deadline, then
        Unavailable is raised; otherwise at once, and the stage request's redelivery runs
        the attempt again.
        """
        movie = current if current is not None else self._current(movie_id, stage, attempt)
        if movie is None:
            return True
        deadline = movie.stages[stage].deadline
        left = (deadline - self.pipeline.clock()).total_seconds() if deadline else 0.0
        record_until = time.monotonic() + (left - RECORD_MARGIN_S if patient else 0.0)
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
            # A backing service (the artifact store, say) that is away: not the work's fault.
            outage = isinstance(e, Unavailable)
            code = (
                work.code if work else e.code if isinstance(e, Unavailable) else "unexpected_error"
            )
            retryable = work.retryable if work else True
            log.warning("stage failed: %s", e, exc_info=work is None and not outage, extra=ctx)
            failed = StageFailed(stage, attempt, code, str(e), retryable, clock(), outage=outage)
            self._record(movie_id, failed, record_until)
            return not retryable
        outcome = StageSucceeded(stage, attempt, tuple(sorted(outputs.items())), clock())
        self._record(movie_id, outcome, record_until)
        log.info("stage succeeded", extra=ctx)
        return True

    def _record(self, movie_id: str, event: Event, until: float) -> None:
        """Report the attempt's outcome, trying again while the store is unavailable and
        time is left (`until`, a monotonic time)."""
        pause = 0.2
        while True:
            try:
                self.pipeline.report(movie_id, event)
                return
            except Unavailable as e:
                if time.monotonic() + pause >= until:
                    raise
                log.warning("recording the outcome failed, trying again: %s", e.message)
            time.sleep(pause)
            pause = min(RECORD_BACKOFF_S, pause * 2)

    def close(self) -> None:
        self.work.close()

    def job_exited(self, movie_id: str, stage: Stage, attempt: int, returncode: int) -> None:
        """A job ended: if it did not record an outcome (crash, kill), record a failure.
        One that could not reach the store or the bus to record it failed for an outage,
        which costs the movie no attempt."""
        if self._current(movie_id, stage, attempt) is None:
            return
        log.warning(
            "job exited with code %d without recording a result",
            returncode,
            extra={"movie_id": movie_id, "stage": stage.value, "attempt": attempt},
        )
        outage = returncode == JOB_EXIT_UNAVAILABLE
        code, why = (
            ("unavailable", "the job could not record its result: the store was unavailable")
            if outage
            else ("job_exited", f"job exited with code {returncode} without recording a result")
        )
        event = StageFailed(stage, attempt, code, why, True, self.pipeline.clock(), outage=outage)
        self.pipeline.report(movie_id, event)

    def _current(self, movie_id: str, stage: Stage, attempt: int) -> Movie | None:
        movie = self.pipeline.find(movie_id)
        if movie is None:
            return None
        st = movie.stages[stage]
        if st.status is not StageStatus.running or st.attempts != attempt:
            return None
        return movie
