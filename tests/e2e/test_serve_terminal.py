"""What `deepflix serve` says: in a person's words at a terminal (a pty), JSON lines elsewhere."""

from __future__ import annotations

import json
import os
import pty
import select
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from devtools.emulators import free_port
from devtools.service import service_env
from tests.e2e.conftest import Service, write_faults

pytestmark = pytest.mark.e2e


class Terminal:
    """A process whose stdout and stderr are a pseudo-terminal; what it wrote so far."""

    def __init__(self, args: list[str], env: dict[str, str], cwd: Path) -> None:
        self.master, self.slave = pty.openpty()
        self.proc = subprocess.Popen(
            args, env=env, cwd=cwd, stdout=self.slave, stderr=self.slave, stdin=subprocess.DEVNULL
        )
        # Our end of the terminal stays open: were the last one closed with the process,
        # what it wrote just before its end could be lost to reads that fail with EIO.
        self.text = ""

    def read_until(self, needle: str, timeout: float = 90) -> str:
        deadline = time.monotonic() + timeout
        while needle not in self.text:
            left = deadline - time.monotonic()
            if left <= 0 or (self.proc.poll() is not None and not self._ready(0)):
                raise AssertionError(f"never said {needle!r}; said:\n{self.text}")
            if self._ready(min(left, 0.5)):
                self.text += os.read(self.master, 65536).decode("utf-8", "replace")
        return self.text

    def _ready(self, timeout: float) -> bool:
        return bool(select.select([self.master], [], [], timeout)[0])

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        os.close(self.slave)
        os.close(self.master)


def test_at_a_terminal_serve_tells_what_happens(tmp_path: Path) -> None:
    data = tmp_path / "data"
    svc = Service(data, service_env(data, generators="instant", faults_file=tmp_path / "f.json",
                                    max_attempts=1), port=free_port())  # fmt: skip
    write_faults(svc, {"images": {"kind": "permanent", "match": "DOOMED"}})
    term = Terminal(
        [sys.executable, "-m", "deepflix.entrypoints.cli", "serve"],
        {**svc.env, "PORT": str(svc.port)},
        tmp_path,
    )
    try:
        # Read until the banner's last line: the pty may hand it over in several reads.
        assert "Health:" in term.read_until("Stop with Ctrl-C")
        good = svc.create("A lighthouse keeper befriends a storm", scene_count=2)["movie_id"][:8]
        term.read_until(f"movie {good} finished")
        said = term.text
        assert f'movie {good} created: "A lighthouse keeper befriends a storm"' in said
        assert f"movie {good} story succeeded" in said
        assert f"movie {good} images succeeded" in said
        doomed = svc.create("The DOOMED expedition")["movie_id"][:8]
        line = term.read_until(f"movie {doomed} FAILED").split(f"movie {doomed} FAILED")[1]
        assert line.splitlines()[0] == (
            " in images after attempt 1: injected permanent fault in images (injected_fault)"
        )
        svc.call("POST", "/api/admission/pause")
        term.read_until("admission paused: new movies wait")
        # No JSON lines at a terminal: what a person reads.
        assert '"severity"' not in term.text
        term.proc.send_signal(signal.SIGINT)
        term.read_until("stopping: movies not finished go on at the next start")
        assert term.proc.wait(timeout=60) == 0
    finally:
        term.close()


def test_elsewhere_serve_writes_json_lines(make_service: Callable[..., Service]) -> None:
    svc = make_service(generators="instant")
    movie = svc.create("A kite over the harbour", scene_count=2)
    svc.wait_terminal(movie["movie_id"])
    log = svc.data_dir.parent / f"service-{svc.port}.log"
    lines = [line for line in log.read_text().splitlines() if line.strip()]
    banner = [line for line in lines if line.startswith(("DeepFlix", "  "))]
    assert len(banner) == 5  # the banner alone; no narration
    entries = [json.loads(line) for line in lines if line not in banner]
    assert entries and all("severity" in e and "message" in e for e in entries)
