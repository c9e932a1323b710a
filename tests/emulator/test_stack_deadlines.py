"""A stage attempt that overruns on the emulator stack is timed out by its deadline window's
Cloud Tasks task (ADR 0030), not by the minute sweep, and the retry policy starts another."""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from devtools import emulators, stack
from tests.emulator.test_stack_e2e import call, wait

pytestmark = pytest.mark.emulator
IMAGES_TIMEOUT_S = 30  # time for a loaded machine to start the job before its deadline


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[stack.Stack]:
    data = tmp_path_factory.mktemp("deadline-stack")
    try:
        s = stack.start(
            data,
            sweep_every_s=3600.0,  # no scheduled sweep in this test: only the window's task
            scene_seconds=1,
            fps=12,
            retry_base_delay_s=0.1,
            max_attempts=2,
            images_timeout_s=IMAGES_TIMEOUT_S,
            faults_file=data / "faults.json",
        )
    except emulators.EmulatorMissing as e:
        pytest.skip(str(e))
    yield s
    s.stop()


def job_pid(movie_id: str, attempt: int, timeout_s: float = 120) -> int:
    """The images job process of the attempt, found by the env its runner gave it."""
    wanted = {
        f"DEEPFLIX_JOB_MOVIE_ID={movie_id}",
        "DEEPFLIX_JOB_STAGE=images",
        f"DEEPFLIX_JOB_ATTEMPT={attempt}",
    }
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                env = set((entry / "environ").read_bytes().decode(errors="replace").split("\0"))
            except OSError:  # gone, or not ours
                continue
            if wanted <= env:
                return int(entry.name)
        time.sleep(0.05)
    raise AssertionError(f"no images job for {movie_id} attempt {attempt}")


def test_an_overrun_attempt_is_timed_out_by_its_windows_task(running: stack.Stack) -> None:
    faults = Path(running.env["DEEPFLIX_FAULTS_FILE"])
    # The job sleeps until its deadline; stopped before it, it reports nothing at all.
    faults.write_text(json.dumps({"images": {"kind": "delay", "seconds": 600, "match": "STALL"}}))
    code, created = call(running, "POST", "/api/movies", {"prompt": "A STALL", "scene_count": 1})
    assert code == 202, created
    movie_id = created["movie_id"]
    job = job_pid(movie_id, 1)
    # The images function watches its job processes and would report the killed job at its
    # timeout: stopped too, so that only the tasks function can time the attempt out.
    images_fn = running.functions["images_requested"].proc.pid
    os.killpg(images_fn, signal.SIGSTOP)
    try:
        os.kill(job, signal.SIGSTOP)
        faults.write_text("{}")  # the next attempt runs as usual
        deadline = time.monotonic() + IMAGES_TIMEOUT_S + 120
        while True:
            status = call(running, "GET", f"/api/movies/{movie_id}/status")[1]
            images = status["stages"]["images"]
            if images["last_error"] is not None:
                break
            assert time.monotonic() < deadline, status
            time.sleep(0.5)
    finally:
        os.killpg(images_fn, signal.SIGCONT)
    error = images["last_error"]
    # The pipeline's own timeout (a job's, or its watcher's, would say more).
    assert error["code"] == "timeout" and error["attempt"] == 1, error
    assert error["message"] == f"images did not finish within {IMAGES_TIMEOUT_S}s", error
    log = (running.data_dir / "function-tasks.log").read_text(errors="replace")
    assert "task deadlines received" in log
    assert "task sweep received" not in log  # not the sweep's doing

    done = wait(running, movie_id)  # the retry policy's second attempt
    assert done["status"] == "succeeded", done
    assert done["stages"]["images"]["attempts"] == 2
