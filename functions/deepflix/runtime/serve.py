"""`deepflix serve`: the runtime in this process, its HTTP API in a child process (ADR 0009)."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess  # nosec B404 # our own programs, argument lists, no shell
import sys
import threading
import time
from collections.abc import Callable
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from deepflix import logs
from deepflix.adapters.local.api_keys import ApiKeys
from deepflix.pipeline.service import Pipeline
from deepflix.runtime.auth import refuse_open_without_keys
from deepflix.runtime.compose import build_embedded
from deepflix.runtime.instance import check_port, lock_data_dir
from deepflix.runtime.narrator import Narrator
from deepflix.runtime.status_channel import StatusSender
from deepflix.runtime.write_channel import WriteServer
from deepflix.settings import Settings

log = logs.get("serve")
# The API's writes the runtime takes at once; they wait for the writer's commit, mostly
# asleep, and more in flight only makes its batches larger.
WRITE_THREADS = 16
STOP_GRACE_S = 30.0
START_TIMEOUT_S = 60.0
# A dead API process is started again after a pause that doubles at each death in a row,
# so one that cannot start does not spin; one that served a while starts the count over.
RESTART_FIRST_S, RESTART_MAX_S, STEADY_S = 0.5, 30.0, 60.0


class ApiProcess:
    """The API's child process and its write channel to `pipeline`, as often as started.

    It runs at the CPU priority the runtime had when this was made: the runtime lowers its
    own afterwards, and the API answers first (ADR 0009).
    """

    def __init__(
        self, settings: Settings, pipeline: Pipeline, status: Callable[[], dict[str, Any]]
    ) -> None:
        self.settings = settings
        self.pipeline = pipeline
        self.status = status  # the runtime's health, for the API's /healthz
        self.nice = os.getpriority(os.PRIO_PROCESS, 0)
        self.child: subprocess.Popen[bytes] | None = None
        self.started_at = 0.0

    def start(self, stop: threading.Event) -> bool:
        """Start it and wait until it says it serves (its port is bound then: a probe of
        the port could be answered by whatever else holds it); False if it exits first,
        takes too long or `stop` is set."""
        # Linked as the stage workers are (stages/executors.py): a fresh interpreter with
        # its end of a socket pair, spoken to through a multiprocessing Connection.
        ours, theirs = socket.socketpair()
        status_in, status_out = os.pipe()
        with theirs:
            self.child = subprocess.Popen(  # nosec B603 # our own program and paths, no shell, no request text
                [
                    sys.executable,
                    "-m",
                    "deepflix.runtime.api_process",
                    str(theirs.fileno()),
                    str(status_in),
                ],
                pass_fds=[theirs.fileno(), status_in],
                env={**os.environ, "PORT": str(self.settings.port)},
            )
        os.close(status_in)
        # Ends by itself when this child is gone: its next write finds the pipe closed.
        StatusSender(self.status, status_out).start()
        conn = Connection(ours.detach())
        self.started_at = time.monotonic()
        self._keep_priority()
        ready = threading.Event()
        WriteServer(self.pipeline, conn, threads=WRITE_THREADS, on_ready=ready.set).start()
        deadline = self.started_at + START_TIMEOUT_S
        while self.child.poll() is None and not stop.is_set() and time.monotonic() < deadline:
            if ready.wait(0.05):
                return True
        self.stop()
        return False

    def _keep_priority(self) -> None:
        """A process started by a thread of ours gets that thread's priority, lowered once
        the runtime runs: raised back at once, where the system lets a process do that."""
        assert self.child is not None  # nosec B101 # an invariant, not a check of input
        if os.getpriority(os.PRIO_PROCESS, 0) == self.nice:
            return
        try:
            os.setpriority(os.PRIO_PROCESS, self.child.pid, self.nice)
        except PermissionError:
            log.warning("the API process runs at the runtime's lowered CPU priority")
        except ProcessLookupError:
            pass  # dead already: the supervisor sees it

    def exit_status(self) -> int | None:
        """None while it runs."""
        return self.child.poll() if self.child is not None else None

    def stop(self) -> None:
        """SIGTERM: it answers what it holds (its writes still reach the runtime)."""
        if self.child is None or self.child.poll() is not None:
            return
        self.child.terminate()
        try:
            self.child.wait(STOP_GRACE_S)
        except subprocess.TimeoutExpired:
            self.child.kill()
            self.child.wait()


# The threads a create waits for keep the API's priority: the channel's reader (and the pool
# threads it starts, which inherit its priority) and the writer thread, which commits every
# state change. Under other load, a create waited for the lowered runtime: p99 up to 800 ms.
WRITE_PATH = ("write-channel", "sqlite-writer-")


def serve(settings: Settings, out: Callable[[str], None], *, narrate: bool = False) -> int:
    """Run until SIGTERM or SIGINT; 1 if the API process could not start serving. Raises
    CannotStart, before starting anything, where another service holds the data directory
    or the port. `narrate`: say what happens to movies through `out` (runtime/narrator.py)."""
    lock_data_dir(settings.data_dir.resolve())
    check_port(settings.host, settings.port)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    runtime = build_embedded(settings)
    # After the build, which makes the keys' table the API process reads; before the start.
    refuse_open_without_keys(settings, ApiKeys(runtime.store.db))
    runtime.start()
    api = ApiProcess(settings, runtime.pipeline, runtime.status)
    narrator: Narrator | None = None
    try:
        serving = api.start(stop)
        _lower_priority(settings.runtime_nice, runtime.runner.work.pids(), keep=WRITE_PATH)
        if not serving:
            if stop.is_set():
                return 0
            log.error(
                "the API process did not start listening on port %d (exit status %s); stopping",
                settings.port,
                api.exit_status(),
            )
            return 1
        base = f"http://{settings.host}:{settings.port}"
        out(f"DeepFlix queue service (embedded) — data in {settings.data_dir.resolve()}")
        out(f"  Dashboard: {base}/")
        out(f"  API:       {base}/api/movies")
        out(f"  Queues:    {base}/api/queues")
        out(f"  Health:    {base}/healthz")
        if narrate:
            out("  Stop with Ctrl-C; movies not finished go on at the next start.")
            narrator = Narrator(runtime.queue.db, out)
            narrator.start()
        _supervise(api, stop)
        if narrator is not None:
            narrator.stop()
            out("stopping: movies not finished go on at the next start")
    finally:
        api.stop()  # before the runtime: what the API holds still reaches it
        runtime.stop()
    return 0


def _supervise(api: ApiProcess, stop: threading.Event) -> None:
    """Until `stop`: start the API process again whenever it dies."""
    pause = RESTART_FIRST_S
    while not stop.wait(0.5):
        status = api.exit_status()
        if status is None:
            if time.monotonic() - api.started_at > STEADY_S:
                pause = RESTART_FIRST_S
            continue
        log.error("the API process exited with status %s; starting it in %.1f s", status, pause)
        if stop.wait(pause):
            return
        pause = min(pause * 2, RESTART_MAX_S)
        if api.start(stop):
            log.warning("the API process serves again")


def _lower_priority(n: int, workers: list[int], keep: tuple[str, ...] = ()) -> None:
    """Lower the CPU priority of this process and its stage `workers` by `n`, the API
    process being started: on Linux nice is kept per thread (threads and processes inherit
    their starter's), so every thread but those named with a prefix in `keep`, and each
    worker's only thread."""
    if n <= 0:
        return
    tasks = Path("/proc/self/task")
    if not tasks.is_dir():
        os.nice(n)
        return
    kept = {t.native_id for t in threading.enumerate() if t.name.startswith(keep)}
    for tid in [*map(int, os.listdir(tasks)), *workers]:
        if tid in kept:
            continue
        with contextlib.suppress(ProcessLookupError):  # a thread that has just ended
            now = os.getpriority(os.PRIO_PROCESS, tid)
            os.setpriority(os.PRIO_PROCESS, tid, min(19, now + n))
