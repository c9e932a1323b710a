"""The embedded runtime: recovers after a crash, delivers queued work, sweeps overdue stages."""

from __future__ import annotations

import shutil
import threading
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from deepflix import logs
from deepflix.adapters.local.artifacts import LocalArtifactStore
from deepflix.adapters.local.consumer import Consumer
from deepflix.adapters.local.messaging import task_queue_name, topic_queue_name
from deepflix.adapters.local.queue import Message, SqliteQueue
from deepflix.adapters.local.store import SqliteMovieStore
from deepflix.adapters.local.subprocess_jobs import JobExit
from deepflix.pipeline.errors import Unavailable
from deepflix.pipeline.events import StageFailed
from deepflix.pipeline.models import STAGES, Stage
from deepflix.pipeline.policy import outage_backoff_s
from deepflix.pipeline.sender import stage_topic
from deepflix.pipeline.service import Pipeline
from deepflix.settings import Settings
from deepflix.stages.runner import StageRunner

log = logs.get("runtime")


@dataclass
class EmbeddedRuntime:
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
    _sweeper: threading.Thread | None = None
    _exits_lock: threading.Lock = field(default_factory=threading.Lock)
    _exits_unrecorded: int = 0  # job exits waiting for the store to take them

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
            task_queue_name("webhook"): lambda b: self.pipeline.deliver_webhook(
                b["movie_id"], int(b["attempt"])
            ),
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
        self._sweeper = threading.Thread(target=self._sweep_forever, name="sweeper", daemon=True)
        self._sweeper.start()

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

    def status(self) -> dict[str, Any]:
        """What only this process knows of its health, as JSON: whether the database takes
        writes, and what the delivery threads are doing (the API process reads the rest)."""
        store = self.queue.db.health()
        delivery: dict[str, Any] = {}
        if self.consumer is not None:
            delivery = asdict(self.consumer.status())
            if delivery["last_error"] is not None:
                delivery["last_error"]["at"] = _iso(delivery["last_error"]["at"])
        threads, busy = self.runner.threads.counts() if self.runner.threads else (0, 0)
        with self._exits_lock:
            unrecorded = self._exits_unrecorded
        hooks = self.pipeline.webhooks
        return {
            "webhooks": dict(hooks.counts) if hooks is not None else None,
            "store": {**asdict(store), "failed_at": _iso(store.failed_at)},
            "delivery": {
                **delivery,
                "stage_threads": threads,
                "stage_threads_busy": busy,
                "job_exits_unrecorded": unrecorded,
                "sweeper_alive": self._sweeper is not None and self._sweeper.is_alive(),
            },
        }

    def job_exited(self, exit: JobExit) -> None:
        """Record a job's exit (on the thread that watched it), however long the store
        takes to take it: nothing else would, and its stage would wait for its timeout."""
        failures = 0
        while True:
            try:
                self.runner.job_exited(
                    exit.movie_id,
                    exit.stage,
                    exit.attempt,
                    exit.returncode,
                    timed_out=exit.timed_out,
                )
                break
            except Exception as e:
                failures += 1
                if failures == 1:
                    with self._exits_lock:
                        self._exits_unrecorded += 1
                log.warning("the exit of job %s is not recorded yet: %s", exit.execution, e)
                if self._stop.wait(outage_backoff_s(failures)):
                    return
        if failures:
            with self._exits_lock:
                self._exits_unrecorded -= 1
        # The job wrote its results and follow-up messages from another process: look now.
        if self.consumer is not None:
            self.consumer.wake()

    def _dispatch(self, stage: Stage) -> None:
        self.pipeline.dispatch(stage)

    def _sweep_forever(self) -> None:
        while not self._stop.wait(self.settings.sweep_interval_s):
            try:
                # First: after a failure, an idle service writes nothing else that would
                # show the database takes writes again (Database.health).
                self.queue.db.probe()
                self.pipeline.sweep()
                self.queue.purge_names()
                self.prune()
            except Exception as e:  # the next interval tries again
                log.warning("sweep failed: %s", e, exc_info=not isinstance(e, Unavailable))


def _iso(at: float | None) -> str | None:
    return None if at is None else datetime.fromtimestamp(at, UTC).isoformat()


def _log_delivery_error(message: Message, error: BaseException) -> None:
    log.error(
        "delivery failed on %s (delivery %d): %s",
        message.queue,
        message.deliveries,
        error,
        exc_info=error,
    )
