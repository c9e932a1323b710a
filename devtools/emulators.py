"""The Google emulators as child processes on free 127.0.0.1 ports, started once per session."""

from __future__ import annotations

import contextlib
import functools
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HOST = "127.0.0.1"
PROJECT = "demo-deepflix"  # a "demo-" project never reaches a real Google project
REPO = Path(__file__).resolve().parents[1]
TASKS_VENV = REPO / ".venv-tasks-emulator"
TASKS_PACKAGE = "gcloud-tasks-emulator"
# The tasks emulator binds every interface; this wrapper makes it listen on 127.0.0.1 only.
_TASKS_LAUNCHER = """
import sys, grpc
from gcloud_tasks_emulator.__main__ import main
_server = grpc.server
def _local_only(*args, **kwargs):
    server = _server(*args, **kwargs)
    add = server.add_insecure_port
    server.add_insecure_port = lambda address: add("127.0.0.1:" + address.rsplit(":", 1)[1])
    return server
grpc.server = _local_only
sys.argv[0] = "gcloud-tasks-emulator"
main()
"""


class EmulatorMissing(Exception):
    """The emulator cannot run here; tests that need it are skipped with this reason."""


@dataclass
class Emulator:
    name: str
    port: int
    proc: subprocess.Popen[bytes]
    log: Path

    @property
    def address(self) -> str:
        return f"{HOST}:{self.port}"

    def stop(self) -> None:
        """Stop the whole process group: the SDK launchers are scripts that start a JVM."""
        stop(self.proc, group=True)


def stop(proc: subprocess.Popen[Any], grace_s: float = 10, *, group: bool = False) -> None:
    """SIGTERM a child (its whole process group with group=True), then SIGKILL it if it
    outlives the grace period."""
    if proc.poll() is not None:
        return
    kill = os.killpg if group else os.kill
    with contextlib.suppress(ProcessLookupError):
        kill(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=grace_s)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            kill(proc.pid, signal.SIGKILL)
        proc.wait()


_lock = threading.Lock()
_running: dict[str, Emulator] = {}


@functools.cache
def _log_dir() -> Path:
    """One folder for the emulators' logs, made by the first start: importing makes nothing."""
    return Path(tempfile.mkdtemp(prefix="deepflix-emulators-"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        port: int = s.getsockname()[1]
        return port


def sdk_root() -> Path:
    gcloud = shutil.which("gcloud")
    if gcloud is not None:
        return Path(gcloud).resolve().parent.parent
    return Path("/usr/lib/google-cloud-sdk")


def _http_ok(port: int) -> Callable[[], bool]:
    def ready() -> bool:
        try:
            with urllib.request.urlopen(f"http://{HOST}:{port}/", timeout=1) as r:
                return bool(r.status == 200)
        except OSError:
            return False

    return ready


def _tcp_open(port: int) -> Callable[[], bool]:
    def ready() -> bool:
        try:
            with socket.create_connection((HOST, port), timeout=1):
                return True
        except OSError:
            return False

    return ready


def _start(
    name: str, argv: list[str], port: int, ready: Callable[[], bool], timeout_s: float = 60
) -> Emulator:
    log = _log_dir() / f"{name}.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group, so stop() reaches the JVM
        )
    emulator = Emulator(name, port, proc, log)
    deadline = time.monotonic() + timeout_s
    while not ready():
        if proc.poll() is not None or time.monotonic() > deadline:
            emulator.stop()
            tail = log.read_text(errors="replace")[-2000:]
            raise RuntimeError(f"{name} emulator did not start (see {log}):\n{tail}")
        time.sleep(0.1)
    return emulator


def _once(name: str, start: Callable[[], Emulator]) -> Emulator:
    with _lock:
        if name not in _running:
            _running[name] = start()
        return _running[name]


def _firestore_argv(port: int) -> list[str]:
    binary = sdk_root() / "platform/cloud-firestore-emulator/cloud_firestore_emulator"
    if not binary.exists() or shutil.which("java") is None:
        raise EmulatorMissing(f"Google Cloud CLI emulators not installed: no {binary} (or java)")
    return [str(binary), "start", f"--host={HOST}", f"--port={port}"]


def firestore() -> Emulator:
    port = free_port()
    argv = _firestore_argv(port)
    return _once("firestore", lambda: _start("firestore", argv, port, _http_ok(port)))


def firestore_with_rules(rules: Path) -> Emulator:
    """A Firestore emulator of its own that enforces `rules` on client requests (the
    service's admin requests bypass them, as the Admin SDK does); the caller stops it."""
    port = free_port()
    argv = [*_firestore_argv(port), f"--rules={rules}"]
    return _start("firestore-rules", argv, port, _http_ok(port))


def pubsub() -> Emulator:
    binary = sdk_root() / "platform/pubsub-emulator/bin/cloud-pubsub-emulator"
    if not binary.exists() or shutil.which("java") is None:
        raise EmulatorMissing(f"Google Cloud CLI emulators not installed: no {binary} (or java)")
    port = free_port()
    argv = [str(binary), f"--host={HOST}", f"--port={port}"]
    return _once("pubsub", lambda: _start("pubsub", argv, port, _http_ok(port)))


def ensure_tasks_venv() -> Path:
    """The Cloud Tasks emulator pins protobuf<5, so it lives in a virtualenv of its own."""
    python = TASKS_VENV / "bin/python"
    stamp = TASKS_VENV / ".installed"
    if stamp.exists():
        return python
    try:
        subprocess.run(
            [sys.executable, "-m", "venv", str(TASKS_VENV)],
            check=True,
            capture_output=True,
            timeout=120,
        )
        pip = [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
        subprocess.run([*pip, TASKS_PACKAGE], check=True, capture_output=True, timeout=300)
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired, OSError) as e:
        output = getattr(e, "stderr", b"") or b""
        detail = output.decode(errors="replace").strip().splitlines()[-1:] or [str(e)]
        raise EmulatorMissing(
            f"could not install {TASKS_PACKAGE} into {TASKS_VENV} (no package registry?): "
            f"{detail[0]}"
        ) from e
    stamp.touch()
    return python


def cloud_tasks() -> Emulator:
    def start() -> Emulator:
        python = ensure_tasks_venv()
        port = free_port()
        argv = [str(python), "-c", _TASKS_LAUNCHER, "start", f"--port={port}", "--quiet"]
        return _start("cloud-tasks", argv, port, _tcp_open(port))

    return _once("cloud-tasks", start)


STORAGE_BUCKET = "deepflix-artifacts"


def storage() -> Emulator:
    """Cloud Storage's JSON API (gcp-storage-emulator, pure Python), in memory, with the
    artifacts bucket made: multipart and resumable uploads, downloads, listing."""
    import importlib.util

    if importlib.util.find_spec("gcp_storage_emulator") is None:
        raise EmulatorMissing("gcp-storage-emulator is not installed (requirements.txt)")
    port = free_port()
    argv = [
        sys.executable,
        "-m",
        "gcp_storage_emulator",
        "start",
        f"--host={HOST}",
        f"--port={port}",
        "--in-memory",
        f"--default-bucket={STORAGE_BUCKET}",
        "--quiet",
    ]
    return _once("storage", lambda: _start("storage", argv, port, _tcp_open(port)))


def wait_for_port(port: int, proc: subprocess.Popen[bytes], timeout_s: float = 60) -> None:
    """Until something listens on `port`; fails early if `proc` (the server) has died."""
    ready = _tcp_open(port)
    deadline = time.monotonic() + timeout_s
    while not ready():
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"nothing listens on {HOST}:{port} (process {proc.pid})")
        time.sleep(0.05)


def stop_all() -> None:
    with _lock:
        for emulator in _running.values():
            emulator.stop()
        _running.clear()


def clear_firestore(emulator: Emulator, project: str = PROJECT) -> None:
    """Delete every document: each test starts from an empty database."""
    url = f"http://{emulator.address}/emulator/v1/projects/{project}/databases/(default)/documents"
    with urllib.request.urlopen(urllib.request.Request(url, method="DELETE"), timeout=10):
        pass


@contextlib.contextmanager
def env(name: str, value: str) -> Iterator[None]:
    """Set an environment variable only while a client reads it, then restore it."""
    old = os.environ.get(name)
    os.environ[name] = value
    try:
        yield
    finally:
        if old is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = old
