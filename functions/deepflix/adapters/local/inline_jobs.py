"""Jobs on a pool of threads of this process: no process start cost (benchmarks)."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from deepflix import logs
from deepflix.pipeline.models import Stage

log = logs.get("jobs")


class InlineJobRunner:
    """Runs a job's work on a thread of this process (benchmarks; no process start cost).

    The threads are pooled, so jobs reuse them and the database connections each opens.
    Stage concurrency limits how many jobs run at once, so `threads` at their sum never
    makes a job wait for a thread.
    """

    def __init__(self, threads: int) -> None:
        self._execute: Callable[[str, Stage, int], bool] | None = None
        self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="inline-job")

    def serve(self, execute: Callable[[str, Stage, int], bool]) -> None:
        """Have `execute(movie_id, stage, attempt)` do each job's work: the stage runner's,
        which is built after the pipeline that runs jobs, so it is given here."""
        self._execute = execute

    def run(self, *, stage: Stage, movie_id: str, attempt: int, timeout_s: float) -> str:
        execute = self._execute
        if execute is None:
            raise RuntimeError("the inline job runner was given no stage work (serve)")
        self._pool.submit(self._run, execute, movie_id, stage, attempt)
        return self.execution_name(stage=stage, movie_id=movie_id, attempt=attempt)

    def execution_name(self, *, stage: Stage, movie_id: str, attempt: int) -> str:
        return f"inline-{stage.value}-{movie_id}-{attempt}"

    def cancel(self, execution: str) -> None:
        """A thread cannot be stopped; its late report is ignored as stale."""

    def _run(
        self, execute: Callable[[str, Stage, int], bool], movie_id: str, stage: Stage, attempt: int
    ) -> None:
        try:
            execute(movie_id, stage, attempt)
        except Exception:  # the deadline check will retry it; the thread must live on
            log.exception("inline job failed", extra={"movie_id": movie_id, "stage": stage.value})
