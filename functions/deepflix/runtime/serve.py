"""`deepflix serve`: the runtime in this process, its HTTP API in a child process (ADR 0009)."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path

from deepflix import ipc, logs
from deepflix.runtime.compose import build_embedded
from deepflix.runtime.write_channel import WriteServer
from deepflix.settings import Settings

log = logs.get("serve")
# The API's writes the runtime takes at once; they wait for the writer's commit, mostly
# asleep, and more in flight only makes its batches larger.
WRITE_THREADS = 16
STOP_GRACE_S = 30.0


def serve(settings: Settings, out: Callable[[str], None]) -> int:
    """Run until SIGTERM or SIGINT; 1 if the API process ended on its own."""
    runtime = build_embedded(settings)
    runtime.start()
    child, conn = ipc.spawn(
        "deepflix.runtime.api_process", env={**os.environ, "PORT": str(settings.port)}
    )
    ready = threading.Event()
    WriteServer(runtime.pipeline, conn, threads=WRITE_THREADS, on_ready=ready.set).start()
    _lower_priority(settings.runtime_nice, runtime.runner.work.pids())
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    serving = False
    try:
        serving = _started(child, ready)
        if serving:
            base = f"http://{settings.host}:{settings.port}"
            out(f"DeepFlix queue service (embedded) — data in {settings.data_dir.resolve()}")
            out(f"  Dashboard: {base}/")
            out(f"  API:       {base}/api/movies")
            out(f"  Queues:    {base}/api/queues")
            out(f"  Health:    {base}/healthz")
            while not stop.is_set() and child.poll() is None:
                stop.wait(0.5)
    finally:
        # The API answers what it holds (its writes still reach the runtime), then the
        # runtime stops.
        if child.poll() is None:
            child.terminate()
            try:
                child.wait(STOP_GRACE_S)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()
        runtime.stop()
    if stop.is_set():
        return 0
    if not serving:
        log.error(
            "the API process did not start listening on port %d (exit status %s); stopping",
            settings.port,
            child.returncode,
        )
    else:
        log.error("the API process exited with status %s; stopping", child.returncode)
    return 1


def _lower_priority(n: int, workers: list[int]) -> None:
    """Lower the CPU priority of this process and its stage `workers` by `n`, the API
    process being started: on Linux nice is kept per thread (threads and processes inherit
    their starter's), so every thread, and each worker's only thread."""
    if n <= 0:
        return
    tasks = Path("/proc/self/task")
    if not tasks.is_dir():
        os.nice(n)
        return
    for tid in [*map(int, os.listdir(tasks)), *workers]:
        with contextlib.suppress(ProcessLookupError):  # a thread that has just ended
            now = os.getpriority(os.PRIO_PROCESS, tid)
            os.setpriority(os.PRIO_PROCESS, tid, min(19, now + n))


def _started(child: subprocess.Popen[bytes], ready: threading.Event) -> bool:
    """Wait until the API process says it serves (its socket is bound then: a probe of the
    port could be answered by whatever else holds it); False if it exits first."""
    deadline = time.monotonic() + 60
    while child.poll() is None and time.monotonic() < deadline:
        if ready.wait(0.05):
            return True
    return False
