"""A real `deepflix serve` process per test, on a free loopback port, stopped by pid."""

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
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from devtools.emulators import free_port

TERMINAL = {"succeeded", "failed", "cancelled"}


@dataclass
class Service:
    data_dir: Path
    env: dict[str, str]
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        log = open(self.data_dir.parent / f"service-{self.port}.log", "ab")  # noqa: SIM115
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "deepflix.entrypoints.cli", "serve"],
            env={**self.env, "PORT": str(self.port)},
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, "the service exited during start-up"
            try:
                if self.request("GET", "/healthz")[0] == 200:
                    return
            except OSError:
                time.sleep(0.05)
        raise AssertionError("the service did not become healthy")

    def api_pid(self) -> int:
        """The HTTP API's process: `deepflix serve` runs it as its child."""
        assert self.proc is not None
        (pid,) = [p for p in self.children() if b"api_process" in _cmdline(p)]
        return pid

    def children(self) -> list[int]:
        """The runtime's child processes: the API's, and any stage workers'."""
        assert self.proc is not None
        children = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children").read_text()
        return [int(p) for p in children.split()]

    def kill(self, sig: int = signal.SIGKILL) -> None:
        if self.proc is not None and self.proc.poll() is None:
            api = self.api_pid()
            os.kill(self.proc.pid, sig)
            self.proc.wait(timeout=30)
            # It stops by itself once the runtime is gone; this only makes sure of it.
            with contextlib.suppress(ProcessLookupError):
                os.kill(api, signal.SIGKILL)

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        raw: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, Any]:
        data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
        req = urllib.request.Request(self.url + path, data=data, method=method)
        if data is not None and raw is None:
            req.add_header("Content-Type", "application/json")
        for k, v in (headers or {}).items():
            req.add_header(k, v)
        try:
            with urllib.request.urlopen(req, timeout=30) as resp:
                payload = resp.read()
                ctype = resp.headers.get("Content-Type", "")
                return resp.status, json.loads(payload) if "json" in ctype else payload
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read() or b"null")

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


def _factory(tmp_path: Path, services: list[Service]) -> Callable[..., Service]:
    def make(**settings: Any) -> Service:
        env = {k: v for k, v in os.environ.items() if not k.startswith("DEEPFLIX_")}
        env |= {
            "DEEPFLIX_DATA_DIR": str(tmp_path / "data"),
            "DEEPFLIX_SCENE_SECONDS": "1",
            "DEEPFLIX_FPS": "12",
            "DEEPFLIX_RETRY_BASE_DELAY_S": "0.1",
            "DEEPFLIX_FAULTS_FILE": str(tmp_path / "faults.json"),
        }
        env |= {f"DEEPFLIX_{k.upper()}": str(v) for k, v in settings.items()}
        service = Service(tmp_path / "data", env)
        services.append(service)
        service.start()
        return service

    return make


@pytest.fixture
def make_service(tmp_path: Path) -> Iterator[Callable[..., Service]]:
    services: list[Service] = []
    yield _factory(tmp_path, services)
    for service in services:
        service.kill()


@pytest.fixture(scope="module")
def shared_service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    """One service for tests that only read or are refused (bad input)."""
    services: list[Service] = []
    yield _factory(tmp_path_factory.mktemp("shared"), services)(generators="instant")
    for service in services:
        service.kill()


@pytest.fixture
def service(make_service: Callable[..., Service]) -> Service:
    return make_service()


def write_faults(service: Service, rules: dict[str, Any]) -> None:
    Path(service.env["DEEPFLIX_FAULTS_FILE"]).write_text(json.dumps(rules))


def _cmdline(pid: int) -> bytes:
    return Path(f"/proc/{pid}/cmdline").read_bytes()
