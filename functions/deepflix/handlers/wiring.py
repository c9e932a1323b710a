"""Wiring: picks the adapters (embedded or Google Cloud) from settings and assembles the service."""

from __future__ import annotations

import functools
import shutil
import threading
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from deepflix import logs
from deepflix.adapters.local.artifacts import LocalArtifactStore
from deepflix.adapters.local.atomic import AtomicPipeline
from deepflix.adapters.local.consumer import Consumer
from deepflix.adapters.local.db import Database
from deepflix.adapters.local.jobs import JobExit, SubprocessJobRunner
from deepflix.adapters.local.messaging import (
    LocalEventBus,
    LocalTaskQueue,
    task_queue_name,
    topic_queue_name,
)
from deepflix.adapters.local.queue import Message, SqliteQueue
from deepflix.adapters.local.store import SqliteMovieStore
from deepflix.config import Settings
from deepflix.pipeline.models import STAGES, Stage
from deepflix.pipeline.ports import ArtifactStore, JobRunner
from deepflix.pipeline.service import Pipeline, stage_topic
from deepflix.pipeline.transitions import StageFailed
from deepflix.stages.faults import FaultPlan
from deepflix.stages.registry import load_generators
from deepflix.stages.runner import StageRunner
from deepflix.stages.work import LocalWork, StageWork, WorkerPool

log = logs.get("runtime")


class InlineJobRunner:
    """Runs a job's work on a thread of this process (benchmarks; no process start cost).

    The threads are pooled: a new thread per job also opened new database connections.
    Stage concurrency limits how many jobs run at once, so `threads` at their sum never
    makes a job wait for a thread.
    """

    def __init__(self, threads: int) -> None:
        self.execute: Callable[[str, Stage, int], bool] | None = None
        self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="inline-job")

    def run(self, *, stage: Stage, movie_id: str, attempt: int, timeout_s: float) -> str:
        self._pool.submit(self._run, movie_id, stage, attempt)
        return f"inline-{uuid.uuid4().hex[:12]}"

    def cancel(self, execution: str) -> None:
        """A thread cannot be stopped; its late report is ignored as stale."""

    def _run(self, movie_id: str, stage: Stage, attempt: int) -> None:
        assert self.execute is not None
        try:
            self.execute(movie_id, stage, attempt)
        except Exception:  # the deadline check will retry it; the thread must live on
            log.exception("inline job failed", extra={"movie_id": movie_id, "stage": stage.value})


@dataclass
class Embedded:
    settings: Settings
    store: SqliteMovieStore
    queue: SqliteQueue
    artifacts: LocalArtifactStore
    pipeline: Pipeline
    runner: StageRunner
    workdir: Path  # stage work's folders, beside the artifacts
    consumer: Consumer | None = None

    @property
    def local_file(self) -> Callable[[str], Path]:
        return self.artifacts.resolve

    _stop: threading.Event = field(default_factory=threading.Event)

    def start(self) -> None:
        """Recover from an unclean stop, then deliver work as it arrives."""
        released = self.queue.release_leases()
        interrupted = self.interrupt_running()
        for leftover in self.workdir.iterdir():  # what stage work left when the service died
            shutil.rmtree(leftover, ignore_errors=True)
        self.runner.work.start()
        log.info("recovered", extra={"trace": f"leases={released} interrupted={interrupted}"})
        handlers: dict[str, Callable[[dict[str, Any]], None]] = {
            task_queue_name("dispatch"): lambda b: self._dispatch(Stage(b["stage"])),
        }  # no deadline tasks here: the sweep times stages out (LocalTaskQueue)
        for stage in STAGES:
            handlers[topic_queue_name(stage_topic(stage))] = lambda b: self.runner.handle(b["data"])
        # Hand-offs inside this process are not stored: what a crash loses of them, the
        # recovery above and the sweep rebuild from the movies (ADR 0007).
        self.consumer = Consumer(
            self.queue,
            handlers,
            threads=self.settings.workers,
            on_error=_log_delivery_error,
            stored=False,
        )
        self.consumer.start()
        self.pipeline.sweep()  # waiting movies whose dispatch was in flight at the crash
        threading.Thread(target=self._sweep_forever, name="sweeper", daemon=True).start()

    def stop(self) -> None:
        self._stop.set()
        if self.consumer is not None:
            self.consumer.stop()
        self.runner.close()

    def prune(self) -> int:
        """The store's housekeeping (the sweeper runs it; so does a `/sweep` task)."""
        return self.store.prune()

    def interrupt_running(self) -> int:
        """Work that was running when the service died will not report: retry it."""
        n = 0
        now = self.pipeline.clock()
        for stage in STAGES:
            for movie in self.store.running(stage):
                attempt = movie.stages[stage].attempts
                event = StageFailed(
                    stage,
                    attempt,
                    "interrupted",
                    "the service stopped during this attempt",
                    True,
                    now,
                )
                self.pipeline.report(movie.id, event)
                n += 1
        return n

    def job_exited(self, exit: JobExit) -> None:
        self.runner.job_exited(exit.movie_id, exit.stage, exit.attempt, exit.returncode)
        # The job wrote its results and follow-up messages from another process: look now.
        if self.consumer is not None:
            self.consumer.wake()

    def _dispatch(self, stage: Stage) -> None:
        self.pipeline.dispatch(stage)

    def _sweep_forever(self) -> None:
        while not self._stop.wait(self.settings.sweep_interval_s):
            try:
                self.pipeline.sweep()
                self.queue.purge_names()
                self.prune()
            except Exception:
                log.exception("sweep failed")


def _log_delivery_error(message: Message, error: BaseException) -> None:
    log.error(
        "delivery failed on %s (delivery %d): %s",
        message.queue,
        message.deliveries,
        error,
        exc_info=error,
    )


@dataclass
class Cloud:
    """The service on the Google Cloud adapters: delivery is by push, so nothing to start."""

    settings: Settings
    pipeline: Pipeline
    runner: StageRunner
    artifacts: ArtifactStore
    local_file: Callable[[str], Path] | None
    prune: Callable[[], int]  # the store's housekeeping, run by the `/sweep` task

    def start(self) -> None:
        """Tasks and events arrive as HTTP requests to the functions."""

    def stop(self) -> None:
        """Nothing runs in the background."""


def _jobs(settings: Settings, on_exit: Callable[[JobExit], None]) -> JobRunner:
    if settings.job_runner == "inline":
        gpu = settings.images_concurrency + settings.video_concurrency
        return InlineJobRunner(threads=gpu)
    if settings.job_runner == "cloudrun":
        from deepflix.adapters.gcp.factory import cloud_run_jobs

        return cloud_run_jobs(settings)
    return SubprocessJobRunner(log_dir=settings.data_dir.resolve() / "jobs", on_exit=on_exit)


def local_work(settings: Settings, artifacts: ArtifactStore, workdir: Path | None) -> LocalWork:
    """Stage work on the calling thread; also what each stage worker process builds."""
    generators = load_generators(
        settings.generators, scene_seconds=settings.scene_seconds, fps=settings.fps
    )
    return LocalWork(generators, artifacts, workdir)


def _worker_kit(settings: Settings, workdir: Path) -> LocalWork:
    """Run in a stage worker process (so module level: it is pickled to get there)."""
    logs.setup(settings.log_level)
    artifacts = LocalArtifactStore(settings.media_root() / "artifacts")
    return local_work(settings, artifacts, workdir)


def _runner(settings: Settings, pipeline: Pipeline, work: StageWork) -> StageRunner:
    runner = StageRunner(pipeline=pipeline, work=work, faults=FaultPlan(settings.faults_file))
    if isinstance(pipeline.jobs, InlineJobRunner):
        pipeline.jobs.execute = runner.execute
    return runner


def build_cloud(settings: Settings) -> Cloud:
    from deepflix.adapters.gcp.factory import build_ports, gcs_artifacts

    ports = build_ports(settings)
    artifacts: ArtifactStore
    local_file = None
    if settings.artifacts == "gcs":
        artifacts = gcs_artifacts(settings)
    else:
        local = LocalArtifactStore(settings.media_root() / "artifacts")
        artifacts, local_file = local, local.resolve
    holder: list[StageRunner] = []
    jobs = _jobs(
        settings,
        lambda e: holder[0].job_exited(e.movie_id, e.stage, e.attempt, e.returncode),
    )
    pipeline = Pipeline(
        store=ports.store,
        tasks=ports.tasks,
        events=ports.events,
        jobs=jobs,
        config=settings.pipeline_config(),
    )
    runner = _runner(settings, pipeline, local_work(settings, artifacts, None))
    holder.append(runner)
    return Cloud(settings, pipeline, runner, artifacts, local_file, ports.store.prune)


def build(settings: Settings) -> Embedded | Cloud:
    return build_cloud(settings) if settings.backend == "gcp" else build_embedded(settings)


def build_embedded(settings: Settings, *, clock: Callable[[], datetime] | None = None) -> Embedded:
    data, media = settings.data_dir.resolve(), settings.media_root()
    db = Database(data / "movies.db")  # documents and queues: one transaction per change
    store = SqliteMovieStore(db)
    queue = SqliteQueue(db)
    artifacts = LocalArtifactStore(media / "artifacts")
    holder: list[Embedded] = []
    jobs = _jobs(settings, lambda e: holder[0].job_exited(e))
    extra = {"clock": clock} if clock is not None else {}
    pipeline = AtomicPipeline(
        db=db,
        store=store,
        tasks=LocalTaskQueue(queue, swept_deadlines=True),
        events=LocalEventBus(queue),
        jobs=jobs,
        config=settings.pipeline_config(),
        **extra,
    )
    # Stage work beside the artifacts, so outputs are renamed into place, never copied.
    work = media / "work"
    work.mkdir(parents=True, exist_ok=True)
    stage_work: StageWork = (
        WorkerPool(settings.stage_processes, functools.partial(_worker_kit, settings, work))
        if settings.stage_processes
        else local_work(settings, artifacts, work)
    )
    runner = _runner(settings, pipeline, stage_work)
    embedded = Embedded(settings, store, queue, artifacts, pipeline, runner, work)
    holder.append(embedded)
    return embedded
