"""`deepflix serve` is two processes: each stops when the other is gone, and on SIGTERM."""

from __future__ import annotations

import contextlib
import http.client
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from deepflix.runtime.serve import WRITE_THREADS
from deepflix.stages.executors import WORKER_NICE
from tests.e2e.conftest import Service

pytestmark = pytest.mark.e2e


def gone(pid: int, timeout: float = 15) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with open(f"/proc/{pid}/stat") as f:
                if f.read().rsplit(")", 1)[1].split()[0] == "Z":  # exited, not yet reaped
                    return True
        except FileNotFoundError:
            return True
        time.sleep(0.05)
    return False


def port_free(port: int) -> bool:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def test_a_killed_runtime_takes_the_api_process_with_it(
    make_service: Callable[..., Service],
) -> None:
    svc = make_service(generators="instant")
    api = svc.api_pid()
    assert svc.proc is not None
    os.kill(svc.proc.pid, signal.SIGKILL)  # no clean-up of any kind
    svc.proc.wait(timeout=30)
    assert gone(api), "the API process outlived the runtime"
    assert port_free(svc.port), "the port is still held after the service died"


def test_a_dead_api_process_is_started_again(make_service: Callable[..., Service]) -> None:
    svc = make_service(generators="instant")
    assert svc.proc is not None
    dead = svc.api_pid()
    os.kill(dead, signal.SIGKILL)
    deadline = time.monotonic() + 30
    while True:
        assert svc.proc.poll() is None, "the runtime stopped with its API process"
        with contextlib.suppress(OSError, ValueError):
            if svc.api_pid() != dead and svc.request("GET", "/healthz")[0] == 200:
                break
        assert time.monotonic() < deadline, "no API process serves again"
        time.sleep(0.1)
    # Writes reach the runtime through the new process's channel, and the work goes on.
    done = svc.wait_terminal(svc.create("a lighthouse after the storm")["movie_id"])
    assert done["status"] == "succeeded", done
    log = (svc.data_dir.parent / f"service-{svc.port}.log").read_text()
    assert "the API process exited with status -9" in log


def nices(pid: int) -> list[int]:
    """The nice value of each of a process's threads (Linux keeps one per thread)."""
    out = []
    for task in os.listdir(f"/proc/{pid}/task"):
        with open(f"/proc/{pid}/task/{task}/stat") as f:
            out.append(int(f.read().rsplit(")", 1)[1].split()[16]))
    return out


def nice(pid: int) -> set[int]:
    return set(nices(pid))


def test_the_runtime_yields_the_cpu_to_the_api(make_service: Callable[..., Service]) -> None:
    svc = make_service(generators="instant", runtime_nice=7, stage_processes=2)
    assert svc.proc is not None
    svc.wait_terminal(svc.create("a lighthouse in fog")["movie_id"])  # every thread started
    # The threads a create waits for keep the API's priority (runtime/serve.py WRITE_PATH):
    # the writer, the write channel's reader and the pool threads its writes started.
    runtime = nices(svc.proc.pid)
    assert set(runtime) == {0, 7} and 3 <= runtime.count(0) <= 2 + WRITE_THREADS, runtime
    assert nice(svc.api_pid()) == {0}
    workers = [p for p in svc.children() if p != svc.api_pid()]
    # Stage work lower still: the runtime's writer comes first.
    assert len(workers) == 2 and all(nice(p) == {7 + WORKER_NICE} for p in workers)


def test_a_port_in_use_stops_the_service_with_a_clear_error(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        env = {k: v for k, v in os.environ.items() if not k.startswith("DEEPFLIX_")}
        env |= {"DEEPFLIX_DATA_DIR": str(tmp_path / "data"), "PORT": str(port)}
        done = subprocess.run(
            [sys.executable, "-m", "deepflix.entrypoints.cli", "serve"],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert done.returncode == 1
    (line,) = done.stderr.strip().splitlines()
    assert line.startswith(f"deepflix serve: cannot listen on 127.0.0.1 port {port}: ")


def test_sigterm_stops_both_cleanly_and_keeps_what_was_written(
    make_service: Callable[..., Service],
) -> None:
    svc = make_service(generators="instant")
    api = svc.api_pid()
    assert svc.proc is not None
    created = svc.create("a lighthouse in fog")
    os.kill(svc.proc.pid, signal.SIGTERM)
    assert svc.proc.wait(timeout=60) == 0
    assert gone(api)
    log = (svc.data_dir.parent / f"service-{svc.port}.log").read_text()
    assert "Traceback" not in log and "Task was destroyed" not in log, log[-2000:]
    restarted = Service(svc.data_dir, svc.env)
    restarted.start()
    try:
        assert restarted.status(created["movie_id"])["movie_id"] == created["movie_id"]
    finally:
        restarted.kill()


def test_a_chunked_body_is_read_and_bounded(shared_service: Service) -> None:
    def post_chunked(body: bytes) -> tuple[int, bytes]:
        conn = http.client.HTTPConnection("127.0.0.1", shared_service.port, timeout=30)
        try:
            conn.putrequest("POST", "/api/movies")
            conn.putheader("Content-Type", "application/json")
            conn.putheader("Transfer-Encoding", "chunked")
            conn.endheaders()
            for i in range(0, len(body), 1000):
                part = body[i : i + 1000]
                conn.send(f"{len(part):x}\r\n".encode() + part + b"\r\n")
            conn.send(b"0\r\n\r\n")
            response = conn.getresponse()
            return response.status, response.read()
        finally:
            conn.close()

    status, body = post_chunked(b'{"prompt": "' + b"a" * 500 + b'", "scene_count": 3}')
    assert status == 202, body
    status, body = post_chunked(b'{"prompt": "' + b"a" * 70_000 + b'"}')
    assert status == 413 and b"payload_too_large" in body


def test_head_answers_headers_without_a_body(shared_service: Service) -> None:
    movie = shared_service.create("a quiet harbour")
    done = shared_service.wait_terminal(movie["movie_id"])
    assert done["status"] == "succeeded", done
    for path in (f"/api/movies/{movie['movie_id']}/status", done["artifacts"]["video"]):
        conn = http.client.HTTPConnection("127.0.0.1", shared_service.port, timeout=30)
        try:
            conn.request("HEAD", path)
            response = conn.getresponse()
            assert response.status == 200, path
            assert int(response.getheader("Content-Length", "0")) > 0, path
            assert response.read() == b"", path
        finally:
            conn.close()


def test_artifacts_in_a_media_folder_are_served(
    make_service: Callable[..., Service], tmp_path: Path
) -> None:
    svc = make_service(generators="instant", media_dir=tmp_path / "media")
    done = svc.wait_terminal(svc.create("a harbour at dawn")["movie_id"])
    assert done["status"] == "succeeded", done
    code, body = svc.request("GET", done["artifacts"]["video"])
    assert code == 200 and body.startswith(b"\x00\x00\x00")  # an MP4's first box
    assert any((tmp_path / "media" / "artifacts").iterdir())
    assert not (svc.data_dir / "artifacts").exists()
