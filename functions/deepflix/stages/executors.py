"""Where stage work runs: on the calling thread, or in a pool of warm worker processes."""

from __future__ import annotations

import contextlib
import heapq
import itertools
import os
import pickle  # nosec B403 # only our own worker's kit, over its private pipe
import signal
import socket
import subprocess  # nosec B404 # our own programs, argument lists, no shell
import sys
import threading
import time
from collections.abc import Callable, Iterator
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Protocol

import orjson

from deepflix import logs
from deepflix.pipeline.errors import StageWorkError
from deepflix.pipeline.models import STAGES, Movie, Stage
from deepflix.pipeline.ports import ArtifactStore
from deepflix.stages.generators.base import Generators
from deepflix.stages.processors import Outputs, StageContext, WorkNote, run_stage
from deepflix.stages.scratch import Scratch

log = logs.get("stages")
Progress = Callable[[int], None]
Note = Callable[[WorkNote], None]
# How long an idle worker is given to exit when the pool closes.
STOP_GRACE_S = 5.0
# How far below its runtime a worker's CPU priority is: every state change passes through
# the runtime's one writer thread, so stage work should wait for it, not the other way round
# (docs/decisions/0010).
WORKER_NICE = 10


class StageExecutor(Protocol):
    def run(
        self,
        stage: Stage,
        movie: Movie,
        progress: Progress,
        timeout_s: float,
        note: Note | None = None,
    ) -> Outputs:
        """Generate the stage's outputs and store them as the movie's artifacts; `note`
        records what the work must keep on the movie as it goes (returns once it is)."""
        ...

    def start(self) -> None: ...

    def pids(self) -> list[int]:
        """The processes doing the work, besides the caller's."""
        ...

    def close(self) -> None: ...


class InlineExecutor:
    """Stage work on the calling thread; a thread cannot be stopped, so no timeout here
    (the stage's deadline fails the attempt and its late report is ignored)."""

    def __init__(self, generators: Generators, artifacts: ArtifactStore, workdir: Path | None):
        self.generators = generators
        self.artifacts = artifacts
        self.scratch = Scratch(workdir)

    def run(
        self,
        stage: Stage,
        movie: Movie,
        progress: Progress,
        timeout_s: float,
        note: Note | None = None,
    ) -> Outputs:
        with self.scratch.folder() as d:
            ctx = StageContext(movie, self.generators, self.artifacts, d, progress)
            if note is not None:
                ctx = StageContext(movie, self.generators, self.artifacts, d, progress, note)
            return run_stage(stage, ctx)

    def start(self) -> None:
        """Nothing to start: the work runs on its callers' threads."""

    def pids(self) -> list[int]:
        return []

    def close(self) -> None:
        self.scratch.close()


class WorkerDied(StageWorkError):
    retryable = True
    code = "worker_died"


class WorkTimedOut(StageWorkError):
    retryable = True
    code = "timeout"


class _RemoteFailure(StageWorkError):
    """A failure in a worker, with the code and retry decision it had there."""

    def __init__(
        self, message: str, code: str, retryable: bool, retry_after_s: float | None = None
    ) -> None:
        super().__init__(message, code=code)
        self.retryable = retryable
        self.retry_after_s = retry_after_s


class ProcessExecutor:
    """Stage work in `processes` long-lived worker processes, each building its tools once
    with `kit` (pickled to them: a worker is a fresh interpreter, never a fork of this
    threaded process, and never a re-run of its main module as multiprocessing's spawn does).

    Why: the runtime's threads share one interpreter lock, and stage work done on them
    made its state changes wait for it (docs/decisions/0010). A caller's thread waits for
    a free worker and then for its answer, without the lock.
    A worker that dies or overruns the stage's timeout is killed and replaced, and the
    attempt fails as retryable. Workers run below the runtime's CPU priority (WORKER_NICE).
    """

    def __init__(self, processes: int, kit: Callable[[], InlineExecutor]) -> None:
        self.processes = processes
        self._kit = pickle.dumps(kit)
        self._lock = threading.Lock()
        self._idle: list[_Worker] = []
        self._waiting: list[tuple[int, int, _Waiter]] = []  # a heap: (rank, arrival, waiter)
        self._arrivals = itertools.count()
        self._workers: list[_Worker] = []
        self._started = self._closed = False

    def start(self) -> None:
        """Spawn the workers (they import and build their tools while the caller goes on)."""
        with self._lock:
            if self._started:
                return
            self._started = True
        for _ in range(self.processes):
            self._give_back(self._spawn())

    def pids(self) -> list[int]:
        with self._lock:
            return [w.process.pid for w in self._workers]

    def run(
        self,
        stage: Stage,
        movie: Movie,
        progress: Progress,
        timeout_s: float,
        note: Note | None = None,
    ) -> Outputs:
        if not self._started:
            raise RuntimeError("the stage workers were never started")
        worker = self._take(stage)
        ready = True  # after "done" or "failed", the worker waits for the next request
        try:
            return self._ask(worker, stage, movie, progress, timeout_s, note)
        except _RemoteFailure:
            raise
        except BaseException:
            # Dead, late, or left mid-answer (a progress callback raised): what it would
            # say next belongs to this request, so it must never serve another.
            ready = False
            raise
        finally:
            if ready:
                self._give_back(worker)
            else:
                self._replace(worker)

    def close(self) -> None:
        """Stop every worker: idle ones are asked to exit, busy ones are killed (their
        attempts are retried as interrupted at the next start); waiting callers fail."""
        with self._lock:
            self._closed, workers, idle = True, list(self._workers), self._idle
            waiting, self._idle, self._waiting = self._waiting, [], []
        for _, _, waiter in waiting:
            waiter.ready.release()  # with no worker: refused
        for w in idle:
            with contextlib.suppress(OSError):
                w.conn.send_bytes(b"")
            with contextlib.suppress(subprocess.TimeoutExpired):
                w.process.wait(STOP_GRACE_S)
        for w in workers:
            self._retire(w)

    def _take(self, stage: Stage) -> _Worker:
        """A free worker; when several callers wait, the latest stage's first: finishing
        the movies in flight frees their slots, where first come first served let new
        stories take the workers while images and video held their slots, waiting."""
        with self._lock:
            if self._closed:
                raise WorkerDied("the stage workers are stopped")
            if self._idle and not self._waiting:
                return self._idle.pop()
            waiter = _Waiter()
            rank = -STAGES.index(stage)
            heapq.heappush(self._waiting, (rank, next(self._arrivals), waiter))
        waiter.ready.acquire()
        if waiter.worker is None:
            raise WorkerDied("the stage workers are stopped")
        return waiter.worker

    def _give_back(self, worker: _Worker) -> None:
        with self._lock:
            if self._closed:
                return
            if not self._waiting:
                self._idle.append(worker)
                return
            _, _, waiter = heapq.heappop(self._waiting)
        waiter.worker = worker
        waiter.ready.release()

    def _ask(
        self,
        worker: _Worker,
        stage: Stage,
        movie: Movie,
        progress: Progress,
        timeout_s: float,
        note: Note | None,
    ) -> Outputs:
        deadline = time.monotonic() + timeout_s
        with _worker_io(worker):
            worker.conn.send_bytes(f"{stage.value} {movie.model_dump_json()}".encode())
        while True:
            with _worker_io(worker):
                if not worker.conn.poll(max(0.0, deadline - time.monotonic())):
                    raise WorkTimedOut(f"the {stage.value} stage took over {timeout_s:g} s")
                kind, value = orjson.loads(worker.conn.recv_bytes())
            if kind == "progress":
                progress(value)
            elif kind == "note":
                if note is not None:
                    note(WorkNote.model_validate(value))
                # The worker waits for this: what it noted is recorded before it goes on.
                with _worker_io(worker):
                    worker.conn.send_bytes(b"noted")
            elif kind == "done":
                return value  # type: ignore[no-any-return]
            else:
                raise _RemoteFailure(*value)

    def _replace(self, worker: _Worker) -> None:
        self._retire(worker)
        with self._lock:
            if self._closed:
                return
        self._give_back(self._spawn())

    def _spawn(self) -> _Worker:
        ours, theirs = socket.socketpair()
        with theirs:
            process = subprocess.Popen(  # nosec B603 # our own program and paths, no shell, no request text
                [sys.executable, "-m", "deepflix.stages.executors", str(theirs.fileno())],
                pass_fds=[theirs.fileno()],
            )
        conn = Connection(ours.detach())
        worker = _Worker(process, conn)
        with self._lock:
            self._workers.append(worker)
        # A worker that died at once is found out, and replaced, by its first job.
        with contextlib.suppress(OSError):
            conn.send_bytes(self._kit)
        return worker

    def _retire(self, worker: _Worker) -> None:
        if worker.process.poll() is None:
            worker.process.kill()
        worker.process.wait()
        worker.conn.close()
        with self._lock:
            if worker in self._workers:
                self._workers.remove(worker)


@contextlib.contextmanager
def _worker_io(worker: _Worker) -> Iterator[None]:
    """The socket failing means the worker is gone."""
    try:
        yield
    except (EOFError, OSError) as e:
        code = worker.process.poll()
        raise WorkerDied(f"the stage worker exited (status {code}) during the work") from e


class _Waiter:
    __slots__ = ("ready", "worker")

    def __init__(self) -> None:
        # Taken from the start: whoever hands this waiter a worker releases it, which
        # wakes this waiter and no other.
        self.ready = threading.Lock()
        self.ready.acquire()
        self.worker: _Worker | None = None


class _Worker:
    __slots__ = ("conn", "process")

    def __init__(self, process: subprocess.Popen[bytes], conn: Connection) -> None:
        self.process = process
        self.conn = conn


def _serve(conn: Connection) -> None:
    """A worker process: build the tools, then run each (stage, movie) it is sent until
    told to stop (an empty message) or its parent is gone (the socket closes).

    Requests are the stage and the movie's JSON; answers are JSON: ("progress", pct),
    ("note", work note) which the parent acknowledges once recorded, ("done", outputs) or
    ("failed", (message, code, retryable, retry_after_s))."""
    os.nice(WORKER_NICE)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the group: the parent decides
    try:
        kit: Callable[[], InlineExecutor] = pickle.loads(conn.recv_bytes())  # nosec B301 # our own worker's kit, over its private pipe
    except EOFError:
        return
    work = kit()

    # Image threads note their usage while the stage's own thread reports progress.
    talking = threading.Lock()

    def progress(pct: int) -> None:
        with talking:
            conn.send_bytes(orjson.dumps(("progress", pct)))

    def note(work_note: WorkNote) -> None:
        with talking:
            conn.send_bytes(orjson.dumps(("note", work_note.model_dump(mode="json"))))
            if conn.recv_bytes() != b"noted":
                raise RuntimeError("the stage's note was not acknowledged")

    try:
        while True:
            try:
                request = conn.recv_bytes()
            except EOFError:
                return
            if not request:
                return
            stage, _, doc = request.partition(b" ")
            movie = Movie.model_validate_json(doc)
            try:
                outputs = work.run(Stage(stage.decode()), movie, progress, 0, note)
            except Exception as e:  # reported to the caller, which records the failure
                if not isinstance(e, StageWorkError):
                    log.warning("stage work failed", exc_info=True, extra={"movie_id": movie.id})
                conn.send_bytes(orjson.dumps(("failed", _failure(e))))
            else:
                conn.send_bytes(orjson.dumps(("done", outputs)))
    finally:
        work.close()


def _failure(e: Exception) -> tuple[str, str, bool, float | None]:
    if isinstance(e, StageWorkError):
        return (e.message, e.code, e.retryable, getattr(e, "retry_after_s", None))
    return (f"{type(e).__name__}: {e}", "unexpected_error", True, None)


if __name__ == "__main__":
    _serve(Connection(int(sys.argv[1])))
