"""Shared benchmark plumbing: statistics, machine facts, result files and child processes."""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import io
import json
import os
import platform
import shutil
import socket
import sqlite3
import statistics
import subprocess
import tarfile
import time
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from devtools import service
from devtools.emulators import free_port
from devtools.emulators import stop as stop  # bench modules take it from here

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
HOST = "127.0.0.1"
NOT_MEASURED = "not measured yet"


def percentile(values: Sequence[float], q: float) -> float | None:
    """Linear-interpolated percentile (q in 0..100); None for no values."""
    if not values:
        return None
    data = sorted(values)
    pos = (len(data) - 1) * q / 100
    lo = int(pos)
    hi = min(lo + 1, len(data) - 1)
    return data[lo] + (data[hi] - data[lo]) * (pos - lo)


def spread(values: Sequence[float | None]) -> dict[str, Any]:
    """Median of several runs with min, max and IQR, plus the raw values."""
    vals = [float(v) for v in values if v is not None]
    if not vals:
        return {"median": None, "min": None, "max": None, "iqr": None, "runs": list(values)}
    q1, q3 = percentile(vals, 25), percentile(vals, 75)
    return {
        "median": statistics.median(vals),
        "min": min(vals),
        "max": max(vals),
        "iqr": (q3 - q1) if q1 is not None and q3 is not None else None,
        "runs": list(values),
    }


def latency_summary(ms: Sequence[float]) -> dict[str, float | int | None]:
    return {
        "count": len(ms),
        "p50": percentile(ms, 50),
        "p90": percentile(ms, 90),
        "p99": percentile(ms, 99),
        "max": max(ms) if ms else None,
    }


def _run_text(args: list[str]) -> str | None:
    try:
        out = subprocess.run(args, capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    text = (out.stdout or out.stderr).strip()
    return text.splitlines()[0] if text else None


def machine() -> dict[str, Any]:
    """What the figures were measured on: cores, CPU model, memory, tool versions."""
    cpu = mem = None
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    with contextlib.suppress(OSError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                mem = round(int(line.split()[1]) / 1024 / 1024, 1)
    return {
        "nproc": os.cpu_count(),
        "cpu_model": cpu,
        "memory_gib": mem,
        "kernel": platform.release(),
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        "node": _run_text(["node", "--version"]),
        "redis": _run_text(["redis-server", "--version"]),
        "wrk": _run_text(["wrk", "-v"]),
    }


def git_commit() -> dict[str, Any]:
    sha = _run_text(["git", "-C", str(ROOT), "rev-parse", "HEAD"])
    status = subprocess.run(
        ["git", "-C", str(ROOT), "status", "--porcelain"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout
    return {"commit": sha, "dirty": bool(status.strip())}


def _digest(files: dict[str, bytes]) -> str:
    h = hashlib.sha256()
    for name in sorted(files):
        h.update(name.encode() + b"\0" + files[name] + b"\0")
    return h.hexdigest()[:16]


def code_digest() -> tuple[str | None, str | None]:
    """(path, digest) of the deepflix package this process imports; children inherit
    PYTHONPATH, so they import the same one."""
    spec = importlib.util.find_spec("deepflix")
    locations = list(spec.submodule_search_locations or []) if spec else []
    if not locations:
        return None, None
    pkg = Path(locations[0])
    return str(pkg), _digest({str(p.relative_to(pkg)): p.read_bytes() for p in pkg.rglob("*.py")})


def code_info() -> dict[str, Any]:
    """The measured code and the commit HEAD is now, and whether the code is exactly that
    commit's: figures from uncommitted changes are labelled as such in RESULTS.md."""
    path, digest = code_digest()
    commit = _run_text(["git", "-C", str(ROOT), "rev-parse", "HEAD"])
    head: dict[str, bytes] = {}
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", commit or "HEAD", "functions/deepflix"],
        capture_output=True,
        check=False,
    )
    if archive.returncode == 0:
        with tarfile.open(fileobj=io.BytesIO(archive.stdout)) as tar:
            for member in tar.getmembers():
                f = tar.extractfile(member) if member.name.endswith(".py") else None
                if f is not None:
                    head[member.name.removeprefix("functions/deepflix/")] = f.read()
    return {
        "path": path,
        "digest": digest,
        "commit": commit,
        "is_commit": bool(head) and digest == _digest(head),
    }


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def write_result(
    out_dir: Path, name: str, result: dict[str, Any], git: dict[str, Any] | None = None
) -> Path:
    """bench/results/<name>.json with the run's context around the benchmark's own figures."""
    path = out_dir / "results" / f"{name}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    git = git or git_commit()
    doc = {"benchmark": name, "date": now_iso(), "git": git, "machine": machine()}
    doc |= result
    path.write_text(json.dumps(doc, indent=2, default=str) + "\n")
    return path


def have(tool: str) -> bool:
    return shutil.which(tool) is not None


def bullmq_ready() -> str | None:
    """Why the BullMQ peer cannot run, or None when it can."""
    if not have("redis-server"):
        return "redis-server is not installed (run bench/setup.sh)"
    if not have("node"):
        return "node is not installed"
    if not (BENCH / "bullmq" / "node_modules" / "bullmq").is_dir():
        return "bench/bullmq/node_modules is missing (run bench/setup.sh)"
    return None


@contextlib.contextmanager
def redis_server(workdir: Path) -> Iterator[dict[str, Any]]:
    """A private redis-server on 127.0.0.1 with AOF (appendfsync everysec), stopped by pid."""
    port = free_port()
    workdir.mkdir(parents=True, exist_ok=True)
    settings = {"appendonly": "yes", "appendfsync": "everysec", "save": ""}
    args = ["redis-server", "--port", str(port), "--bind", HOST, "--dir", str(workdir)]
    for key, value in settings.items():
        args += [f"--{key}", value]
    log = (workdir / "redis.log").open("wb")
    proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 15
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"redis-server exited; see {workdir / 'redis.log'}")
            try:
                with socket.create_connection((HOST, port), timeout=1) as s:
                    s.sendall(b"PING\r\n")
                    if s.recv(16).startswith(b"+PONG"):
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("redis-server did not answer PING")
            time.sleep(0.05)
        yield {"port": port, "pid": proc.pid, "settings": settings}
    finally:
        stop(proc)
        log.close()


class Service(service.Service):
    """`deepflix serve` (devtools/service.py) with `settings` as its DEEPFLIX_ variables."""

    def __init__(self, data_dir: Path, settings: dict[str, Any]) -> None:
        super().__init__(data_dir, service.service_env(data_dir, **settings))


def run_json(
    args: list[str],
    *,
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
    timeout: float = 1800,
) -> dict[str, Any]:
    """Run a child that prints one JSON object on its last stdout line."""
    proc = subprocess.run(
        args, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )
    if proc.returncode != 0:
        raise RuntimeError(f"{args[0]} failed ({proc.returncode}): {proc.stderr[-2000:]}")
    lines = [line for line in proc.stdout.splitlines() if line.strip()]
    result: dict[str, Any] = json.loads(lines[-1])
    return result


def target(value: float | None, limit: float, *, at_most: bool) -> str:
    """'pass', 'miss' or 'n/a' for one figure against its target."""
    if value is None:
        return "n/a"
    ok = value <= limit if at_most else value >= limit
    return "pass" if ok else "miss"
