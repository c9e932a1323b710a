"""`deepflix serve` as a child process on a free loopback port, for the e2e tests and the bench."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Self

from deepflix.pipeline.models import TERMINAL
from devtools.emulators import HOST, free_port, stop


def service_env(data_dir: Path, **settings: Any) -> dict[str, str]:
    """This process's environment without its DEEPFLIX_ settings, then `data_dir` and `settings`
    as DEEPFLIX_<NAME> variables."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("DEEPFLIX_")}
    # The service runs in another directory: a relative PYTHONPATH (PYTHONPATH=functions)
    # would silently import the installed package instead of the code under test.
    if env.get("PYTHONPATH"):
        parts = env["PYTHONPATH"].split(os.pathsep)
        env["PYTHONPATH"] = os.pathsep.join(str(Path(p).resolve()) if p else p for p in parts)
    env |= {"DEEPFLIX_DATA_DIR": str(data_dir), "DEEPFLIX_HOST": HOST}
    env |= {f"DEEPFLIX_{k.upper()}": str(v) for k, v in settings.items()}
    return env


@dataclass
class Service:
    """A `deepflix serve` child with `env` (see service_env) on a free loopback port; its output
    goes to service-<port>.log beside `data_dir`. A context manager: started on entry, stopped
    (SIGTERM, then SIGKILL) on exit."""

    data_dir: Path
    env: dict[str, str]
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def start(self, timeout_s: float = 60) -> None:
        """Start it and wait until /healthz answers 200."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        with (self.data_dir.parent / f"service-{self.port}.log").open("ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "deepflix.entrypoints.cli", "serve"],
                env={**self.env, "PORT": str(self.port)},
                cwd=self.data_dir.parent,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("deepflix serve exited during start-up")
            with contextlib.suppress(OSError):
                if self.request("GET", "/healthz", timeout_s=2)[0] == 200:
                    return
            time.sleep(0.05)
        self.stop()
        raise RuntimeError("deepflix serve did not become healthy")

    def stop(self, grace_s: float = 30) -> None:
        """SIGTERM, as an operator stops it; SIGKILL if it outlives `grace_s`."""
        if self.proc is not None:
            stop(self.proc, grace_s=grace_s)

    def kill(self, sig: int = signal.SIGKILL) -> None:
        """Send `sig` to the runtime and wait for it to exit; make sure its API process is gone."""
        if self.proc is not None and self.proc.poll() is None:
            api = self.api_pid()
            os.kill(self.proc.pid, sig)
            self.proc.wait(timeout=30)
            # It stops by itself once the runtime is gone; this only makes sure of it.
            with contextlib.suppress(ProcessLookupError):
                os.kill(api, signal.SIGKILL)

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def api_pid(self) -> int:
        """The HTTP API's process: `deepflix serve` runs it as its child."""
        (pid,) = [p for p in self.children() if b"api_process" in _cmdline(p)]
        return pid

    def children(self) -> list[int]:
        """The runtime's child processes: the API's, and any stage workers'."""
        assert self.proc is not None
        children = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children").read_text()
        return [int(p) for p in children.split()]

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        raw: bytes | None = None,
        headers: dict[str, str] | None = None,
        timeout_s: float = 30,
    ) -> tuple[int, Any]:
        """(status, answer): the parsed JSON, or the bytes of any other content. Error statuses
        are answers too; only a connection that fails raises (OSError)."""
        data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
        req = urllib.request.Request(self.url + path, data=data, method=method)
        req.add_header("X-DeepFlix-Client", "devtools")  # a script's request, as the CLI's
        if data is not None and raw is None:
            req.add_header("Content-Type", "application/json")
        for k, v in (headers or {}).items():
            req.add_header(k, v)
        try:
            with urllib.request.urlopen(req, timeout=timeout_s) as resp:
                payload = resp.read()
                ctype = resp.headers.get("Content-Type", "")
                return resp.status, json.loads(payload) if "json" in ctype else payload
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read() or b"null")

    def call(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        """A request that must succeed: an error status raises."""
        code, answer = self.request(method, path, body, timeout_s=60)
        if code >= 400:
            raise RuntimeError(f"{method} {path} answered {code}: {answer}")
        return code, answer

    def create(self, prompt: str, **fields: Any) -> dict[str, Any]:
        code, body = self.request("POST", "/api/movies", {"prompt": prompt, **fields})
        assert code == 202, body
        return dict(body)

    def status(self, movie_id: str) -> dict[str, Any]:
        code, body = self.request("GET", f"/api/movies/{movie_id}/status")
        assert code == 200, body
        return dict(body)

    def wait_until(
        self, movie_id: str, done: Callable[[dict[str, Any]], bool], timeout: float = 120
    ) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            status = self.status(movie_id)
            if done(status):
                return status
            assert time.monotonic() < deadline, f"timed out waiting; last status {status}"
            time.sleep(0.05)

    def wait_terminal(self, movie_id: str, timeout: float = 120) -> dict[str, Any]:
        return self.wait_until(movie_id, lambda s: s["status"] in TERMINAL, timeout)

    def movie_count(self) -> int:
        code, body = self.request("GET", "/api/movies?limit=100")
        assert code == 200
        return len(body["movies"])


def _cmdline(pid: int) -> bytes:
    return Path(f"/proc/{pid}/cmdline").read_bytes()
