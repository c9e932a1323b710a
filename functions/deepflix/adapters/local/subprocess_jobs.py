"""Runs GPU-stage jobs as subprocesses, with the env overrides a Cloud Run execution gets."""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess  # nosec B404 # our own programs, argument lists, no shell
import sys
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from deepflix import logs
from deepflix.pipeline.models import Stage
from deepflix.pipeline.ports import job_env

log = logs.get("jobs")
_PR_SET_PDEATHSIG = 1
# The pid of the process that started a job, told to the job so it can die with it.
PARENT_ENV = "DEEPFLIX_JOB_PARENT_PID"


def die_with_parent(env: Mapping[str, str]) -> None:
    """In a job this runner started: die when the service that started it dies (even of
    kill -9), so a restart owns all work.

    Asked for by the job itself, first thing, not between fork and exec (preexec_fn): Python
    run there while other threads (gRPC's) hold locks can hang or abort the child. A parent
    that died before the ask is seen by its pid having changed.
    """
    parent = env.get(PARENT_ENV)
    if parent is None:
        return
    ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != int(parent):
        os._exit(1)


def execution_name(stage: Stage, movie_id: str, attempt: int) -> str:
    """One name per attempt (attempt numbers never repeat within a movie's stage)."""
    return f"{stage.value}-{movie_id}-{attempt}"


@dataclass(frozen=True)
class JobExit:
    execution: str
    movie_id: str
    stage: Stage
    attempt: int
    returncode: int
    timed_out: bool = False  # killed at its timeout by this runner


class SubprocessJobRunner:
    def __init__(
        self,
        *,
        log_dir: Path,
        env: Mapping[str, str] | None = None,
        grace_s: float = 5.0,
    ) -> None:
        self.log_dir = log_dir
        self.env = dict(env if env is not None else os.environ)
        self.grace_s = grace_s
        self._exit_listeners: list[Callable[[JobExit], None]] = []
        self._procs: dict[str, subprocess.Popen[bytes]] = {}
        self._lock = threading.Lock()
        log_dir.mkdir(parents=True, exist_ok=True)

    def on_exit(self, listener: Callable[[JobExit], None]) -> None:
        """Call `listener` with every job's exit, on the thread that watched the job."""
        self._exit_listeners.append(listener)

    def execution_name(self, *, stage: Stage, movie_id: str, attempt: int) -> str:
        return execution_name(stage, movie_id, attempt)

    def run(self, *, stage: Stage, movie_id: str, attempt: int, timeout_s: float) -> str:
        execution = execution_name(stage, movie_id, attempt)
        env = {
            **self.env,
            **job_env(stage=stage, movie_id=movie_id, attempt=attempt, execution=execution),
            PARENT_ENV: str(os.getpid()),
        }
        with self._lock:
            running = self._procs.get(execution)
            if running is not None and running.poll() is None:
                return execution  # this attempt's job runs already: one execution per attempt
            with open(self.log_dir / f"{execution}.log", "ab") as out:
                # Its own session, so a cancel signals its whole group; no preexec_fn (see
                # die_with_parent), so the child runs no Python before exec.
                proc = subprocess.Popen(  # nosec B603 # our own program and paths, no shell, no request text
                    [sys.executable, "-m", "deepflix.entrypoints.job"],
                    env=env,
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            self._procs[execution] = proc
        exit_info = (execution, movie_id, stage, attempt)
        threading.Thread(
            target=self._watch,
            args=(proc, timeout_s, exit_info),
            name=f"job-{execution}",
            daemon=True,
        ).start()
        log.info(
            "job started",
            extra={
                "movie_id": movie_id,
                "stage": stage.value,
                "attempt": attempt,
                "execution": execution,
            },
        )
        return execution

    def cancel(self, execution: str) -> None:
        with self._lock:
            proc = self._procs.get(execution)
        if proc is None or proc.poll() is not None:
            return
        log.info("cancelling job", extra={"execution": execution})
        self._signal(proc, signal.SIGTERM)
        threading.Timer(self.grace_s, self._signal, args=(proc, signal.SIGKILL)).start()

    def _signal(self, proc: subprocess.Popen[bytes], sig: signal.Signals) -> None:
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, sig)

    def _watch(
        self, proc: subprocess.Popen[bytes], timeout_s: float, info: tuple[str, str, Stage, int]
    ) -> None:
        timed_out = False
        try:
            code = proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            # Cloud Run's task timeout: the execution is killed.
            self._signal(proc, signal.SIGKILL)
            code, timed_out = proc.wait(), True
        with self._lock:
            self._procs.pop(info[0], None)
        for listener in self._exit_listeners:
            try:
                listener(JobExit(*info, returncode=code, timed_out=timed_out))
            except Exception:  # the listener's to retry; this thread has nothing left to do
                log.exception("a job exit listener failed", extra={"execution": info[0]})
