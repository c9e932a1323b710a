"""Runs a stage request: in-process for CPU stages, handed to a job for GPU stages."""

from __future__ import annotations

import math
import threading
import time
from typing import Any

from deepflix import logs
from deepflix.pipeline.errors import StageWorkError, Unavailable
from deepflix.pipeline.events import (
    Event,
    Progressed,
    StageFailed,
    StageNoted,
    StageSucceeded,
)
from deepflix.pipeline.messages import StageRequest
from deepflix.pipeline.models import Movie, Stage, StageStatus
from deepflix.pipeline.policy import outage_backoff_s
from deepflix.pipeline.ports import JOB_EXIT_UNAVAILABLE
from deepflix.pipeline.service import Pipeline
from deepflix.stages.executors import StageExecutor
from deepflix.stages.faults import FaultPlan
from deepflix.stages.processors import GENERATOR, WorkNote
from deepflix.stages.threads import StageThreads

log = logs.get("stages")
# The least time between two progress reports of one attempt, unless the runner is given
# another (settings.progress_every_s()).
PROGRESS_INTERVAL_S = 0.5
# A job that cannot record its outcome (the store is away) tries again until this long
# before its attempt's deadline.
RECORD_MARGIN_S = 2.0


class StageRunner:
    """Turns a stage request into stage work and its outcome: owns the checks that a request
    is for the attempt now running, the hand-off of GPU stages to a job, the progress
    reports, and the classing of failures (retryable or not) reported to the pipeline.

    The work itself is the executor's (in this thread, or a worker process). Given
    `threads`, a delivery only hands in-process work to them and returns: a stage that
    hangs then holds one of those, never the thread that delivers everyone's messages, and
    its outcome is recorded however long the store takes to take it. Without (a Cloud
    Function, whose request must last as long as its work) the work runs on the caller's.
    """

    def __init__(
        self,
        *,
        pipeline: Pipeline,
        work: StageExecutor,
        faults: FaultPlan,
        threads: StageThreads | None = None,
        progress_every_s: float = PROGRESS_INTERVAL_S,
    ) -> None:
        self.pipeline = pipeline
        self.work = work
        self.faults = faults
        self.threads = threads
        self.progress_every_s = progress_every_s
        self._closed = threading.Event()

    def handle(self, body: dict[str, Any]) -> None:
        """Handle one delivery of a stage request; duplicates and stale attempts do nothing."""
        req = StageRequest.model_validate(body)
        if self.pipeline.config[req.stage].runs_as_job:
            # Starts the job only if no other delivery has claimed its start. The claim
            # reads the movie and refuses a stale attempt or one whose job has started
            # (transitions), so no read before it: on Firestore a billed read each.
            self.pipeline.start_job(req.movie_id, req.stage, req.attempt, settles=req.settle)
            return
        movie = self._current(req.movie_id, req.stage, req.attempt)
        if movie is None:
            return
        if self.threads is None:
            self.execute(req.movie_id, req.stage, req.attempt, current=movie)
            return
        deadline = self._deadline(movie, req.stage)
        self.threads.submit(lambda: self._execute_until_recorded(req, movie, deadline))

    def execute(
        self,
        movie_id: str,
        stage: Stage,
        attempt: int,
        *,
        current: Movie | None = None,
        deadline: float | None = None,
        persist: bool = False,
        patient: bool = False,
    ) -> bool:
        """Do the stage's work and record the outcome.

        Returns False only for a retryable failure, which a job turns into a non-zero exit.
        `current` is the movie as the caller just loaded and checked it (saves a read);
        `deadline` (time.monotonic()) ends an injected delay. An outcome the store cannot take
        now is recorded again until the runner closes with `persist` (no one redelivers this
        work), until shortly before the attempt's deadline with `patient` (a job: its work is
        dear to redo; then Unavailable is raised), and otherwise not: the stage request's
        redelivery runs the attempt again.
        """
        movie = current if current is not None else self._current(movie_id, stage, attempt)
        if movie is None:
            return True
        due = movie.stages[stage].deadline
        left = (due - self.pipeline.clock()).total_seconds() if due else 0.0
        record_until = (
            math.inf if persist else time.monotonic() + (left - RECORD_MARGIN_S if patient else 0.0)
        )
        ctx = {"movie_id": movie_id, "stage": stage.value, "attempt": attempt}
        log.info("stage started", extra=ctx)
        clock = self.pipeline.clock

        last = [time.monotonic(), 0.0]  # when the last report was made, and its percentage

        def progress(pct: int) -> None:
            # Each report is a write of the movie document: one an interval is enough for a
            # progress bar, none repeats a figure, and a fast stage finishing before the
            # first interval writes none.
            now = time.monotonic()
            if now - last[0] >= self.progress_every_s and pct != last[1]:
                last[0], last[1] = now, pct
                try:
                    self.pipeline.report(movie_id, Progressed(stage, attempt, pct, clock()))
                except Unavailable as e:  # a progress bar may lag; the work goes on
                    log.warning("progress not recorded: %s", e, extra=ctx)

        def note(work_note: WorkNote) -> None:
            # Not throttled, and an outage is not swallowed: an operation name that is not
            # on the movie would be started again by the next attempt, paid for twice.
            event = StageNoted(
                stage,
                attempt,
                clock(),
                notes=tuple(sorted(work_note.notes.items())),
                usage=tuple(work_note.usage),
            )
            self._record(movie_id, event, record_until)

        try:
            self.faults.check(stage, movie, deadline=deadline)
            timeout_s = self.pipeline.config[stage].timeout_s
            outputs = self.work.run(stage, movie, progress, timeout_s, note)
        except Exception as e:  # every failure is recorded; the class decides retry
            work = e if isinstance(e, StageWorkError) else None
            # A backing service (the artifact store, say) that is away: not the work's fault.
            outage = isinstance(e, Unavailable)
            code = (
                work.code if work else e.code if isinstance(e, Unavailable) else "unexpected_error"
            )
            retryable = work.retryable if work else True
            log.warning("stage failed: %s", e, exc_info=work is None and not outage, extra=ctx)
            hint = getattr(work, "retry_after_s", None)
            failed = StageFailed(
                stage, attempt, code, str(e), retryable, clock(), outage=outage, retry_after_s=hint
            )
            self._record(movie_id, failed, record_until)
            return not retryable
        made = outputs.pop(GENERATOR, None)
        outcome = StageSucceeded(
            stage, attempt, tuple(sorted(outputs.items())), clock(), generator=made
        )
        self._record(movie_id, outcome, record_until)
        log.info("stage succeeded", extra=ctx)
        return True

    def close(self) -> None:
        self._closed.set()
        self.work.close()

    def job_exited(
        self, movie_id: str, stage: Stage, attempt: int, returncode: int, *, timed_out: bool = False
    ) -> None:
        """A job ended: if it did not record an outcome (crash, kill), record a failure.
        One that could not reach the store or the bus to record it failed for an outage,
        which costs the movie no attempt."""
        if self._current(movie_id, stage, attempt) is None:
            return
        outage = returncode == JOB_EXIT_UNAVAILABLE
        if timed_out:
            timeout_s = self.pipeline.config[stage].timeout_s
            code, message = "timeout", f"{stage.value} did not finish within {timeout_s:g}s"
            message += "; its job was stopped"
        elif outage:
            code = "unavailable"
            message = "the job could not record its result: the store was unavailable"
        else:
            code = "job_exited"
            message = f"job exited with code {returncode} without recording a result"
        log.warning(
            "%s", message, extra={"movie_id": movie_id, "stage": stage.value, "attempt": attempt}
        )
        self.pipeline.report(
            movie_id,
            StageFailed(stage, attempt, code, message, True, self.pipeline.clock(), outage=outage),
        )

    def _execute_until_recorded(self, req: StageRequest, movie: Movie, deadline: float) -> None:
        self.execute(
            req.movie_id, req.stage, req.attempt, current=movie, deadline=deadline, persist=True
        )

    def _deadline(self, movie: Movie, stage: Stage) -> float:
        """The attempt's deadline on this process's monotonic clock."""
        st = movie.stages[stage]
        left = self.pipeline.config[stage].timeout_s
        if st.deadline is not None:
            left = (st.deadline - self.pipeline.clock()).total_seconds()
        return time.monotonic() + left

    def _record(self, movie_id: str, event: Event, until: float) -> None:
        """Report an outcome, trying again with backoff while the store is unavailable, until
        `until` (a monotonic time) or the runner closes. A report for an attempt timed out
        meanwhile is then ignored as stale."""
        failures = 0
        while True:
            try:
                self.pipeline.report(movie_id, event)
                return
            except Unavailable as e:
                failures += 1
                pause = outage_backoff_s(failures)
                if time.monotonic() + pause >= until:
                    raise
                log.warning("an outcome is not recorded yet (%d tries): %s", failures, e)
                if self._closed.wait(pause):
                    raise

    def _current(self, movie_id: str, stage: Stage, attempt: int) -> Movie | None:
        movie = self.pipeline.find(movie_id)
        if movie is None:
            return None
        st = movie.stages[stage]
        if st.status is not StageStatus.running or st.attempts != attempt:
            return None
        return movie
