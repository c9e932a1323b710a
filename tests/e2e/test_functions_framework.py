"""The `api` entry point served by a real functions-framework process."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from devtools.emulators import free_port

pytestmark = pytest.mark.e2e
FUNCTIONS = Path(__file__).resolve().parents[2] / "functions"


def test_api_entry_point_serves_the_same_handler(tmp_path: Path) -> None:
    port = free_port()
    env = {
        **os.environ,
        "DEEPFLIX_DATA_DIR": str(tmp_path / "data"),
        "DEEPFLIX_GENERATORS": "instant",
    }
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "functions_framework",
            "--target=api",
            "--source=main.py",
            f"--port={port}",
            "--host=127.0.0.1",
        ],
        cwd=FUNCTIONS,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # gunicorn and its worker: stopped together below
    )
    try:
        body = json.dumps({"prompt": "A kite over the dunes"}).encode()
        req = urllib.request.Request(
            f"http://127.0.0.1:{port}/api/movies",
            data=body,
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(req, timeout=10) as resp:
                    created = json.loads(resp.read())
                    assert resp.status == 202
                break
            except OSError:
                assert time.monotonic() < deadline and proc.poll() is None
                time.sleep(0.1)
        status_url = f"http://127.0.0.1:{port}/api/movies/{created['movie_id']}/status"
        deadline = time.monotonic() + 60
        while True:
            with urllib.request.urlopen(status_url, timeout=10) as resp:
                status = json.loads(resp.read())
            if status["status"] == "succeeded":
                break
            assert time.monotonic() < deadline, status
            time.sleep(0.1)
    finally:
        # The whole group: a worker left without its arbiter would serve on.
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
