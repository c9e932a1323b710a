"""Benchmark 2: the HTTP API under load, 32 wrk connections mixing create, status, position."""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from bench.common import BENCH, Service, have, spread, stop, target

NAME = "api"
# Connections per endpoint, one wrk process each, run at the same time: 32 in all.
CONNECTIONS = {"create": 8, "status": 12, "position": 12}
PROBES = 200
VARIANTS = {
    # The service as it runs: admission on, stage work going on beside the API.
    "live": False,
    # Admission paused: nothing but the API runs, so the figure is the API's alone.
    "isolated": True,
}
SERVICE_SETTINGS = {"generators": "instant", "job_runner": "inline", "log_level": "WARNING"}


def sizes(quick: bool) -> dict[str, Any]:
    return {"duration_s": 3 if quick else 20, "runs": 1 if quick else 3}


def wrk_skip() -> str | None:
    return None if have("wrk") else "wrk is not installed (run bench/setup.sh)"


def _prepare(service: Service, paused: bool) -> list[str]:
    """Movies to read: low priority, so the creates during the load keep them waiting."""
    service.call("POST", "/api/admission/pause")
    ids = []
    for i in range(PROBES):
        body = {"prompt": f"probe {i}", "priority": "low", "scene_count": 6}
        code, created = service.call("POST", "/api/movies", body)
        assert code == 202, created
        ids.append(created["movie_id"])
    if not paused:
        service.call("POST", "/api/admission/resume")
    return ids


def _cpu_s(pid: int) -> float | None:
    """User + system CPU seconds so far of a process and its children (Linux), or None:
    `deepflix serve` answers HTTP in a child process."""
    with contextlib.suppress(OSError, IndexError, ValueError):
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        own = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        return own + sum(_cpu_s(int(child)) or 0.0 for child in children)
    return None


def _finished(data_dir: Path) -> int:
    """Movies whose last stage has succeeded so far (read beside the running service: WAL)."""
    conn = sqlite3.connect(f"file:{data_dir / 'movies.db'}?mode=ro", uri=True)
    try:
        row = conn.execute(
            "SELECT COUNT(*) FROM journal WHERE stage = 'video' AND after = 'succeeded'"
        ).fetchone()
    finally:
        conn.close()
    return int(row[0])


def _load(service: Service, ids_file: Path, duration_s: int) -> dict[str, Any]:
    procs = {}
    for endpoint, conns in CONNECTIONS.items():
        args = ["wrk", "-t1", f"-c{conns}", f"-d{duration_s}s", "--timeout", "10s"]
        args += ["-s", str(BENCH / "wrk" / "mix.lua"), service.url]
        env = {"BENCH_ENDPOINT": endpoint, "BENCH_IDS": str(ids_file), "PATH": "/usr/bin:/bin"}
        procs[endpoint] = subprocess.Popen(
            args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
    out: dict[str, Any] = {}
    for endpoint, proc in procs.items():
        try:
            stdout, stderr = proc.communicate(timeout=duration_s + 60)
        finally:
            stop(proc)
        lines = [x for x in stdout.splitlines() if x.startswith("{")]
        if proc.returncode != 0 or not lines:
            raise RuntimeError(f"wrk ({endpoint}) failed: {stderr[-1000:]} {stdout[-1000:]}")
        out[endpoint] = json.loads(lines[-1])
    return out


def _one_run(workdir: Path, paused: bool, duration_s: int) -> dict[str, Any]:
    with Service(workdir / "data", SERVICE_SETTINGS) as service:
        ids = _prepare(service, paused)
        ids_file = workdir / "ids.txt"
        ids_file.write_text("\n".join(ids) + "\n")
        assert service.proc is not None
        cpu_before = _cpu_s(service.proc.pid)
        finished_before = _finished(workdir / "data")
        per = _load(service, ids_file, duration_s)
        cpu_after = _cpu_s(service.proc.pid)
        finished = _finished(workdir / "data") - finished_before
        _, queues = service.call("GET", "/api/queues")
    requests = sum(e["requests"] for e in per.values())
    duration = max(e["duration_s"] for e in per.values())
    errors = sum(e["non_2xx"] + sum(e["socket_errors"].values()) for e in per.values())
    cpu = None
    if cpu_before is not None and cpu_after is not None and requests:
        cpu = 1000 * (cpu_after - cpu_before) / requests
    return {
        "requests": requests,
        "requests_per_s": requests / duration,
        "errors": errors,
        # The service's CPU per request: steadier than requests/s on a shared machine, where
        # the service gets whatever share of the cores the other work leaves it.
        "service_cpu_ms_per_request": cpu,
        "endpoints": per,
        # The stage work goes on while the API is busy: movies it finished during the load.
        "movies_finished": finished,
        "movies_finished_per_s": finished / duration,
        "queues_after": queues.get("queues"),
    }


def run(quick: bool = False) -> dict[str, Any]:
    size = sizes(quick)
    skip = wrk_skip()
    settings = {
        **size,
        "connections": CONNECTIONS,
        "load_generator": "wrk -t1 per endpoint, three processes at once (bench/wrk/mix.lua)",
        "service": {
            **SERVICE_SETTINGS,
            "other_settings": "defaults (DEEPFLIX_RUNTIME_NICE=10, WORKERS=4, "
            "concurrency story/images/video 4/2/1)",
            "server": "deepflix serve on 127.0.0.1 (the API in its own process: Starlette on "
            "uvicorn with httptools, one event loop; docs/decisions/0009, 0011), a fresh data "
            "dir per run",
        },
        "probes": f"{PROBES} low-priority movies created before the load; status and "
        "position read them at random (they stay waiting: creates during the load go ahead)",
    }
    if skip:
        return {"settings": settings, "skipped": {"wrk": skip}, "results": {}, "targets": {}}
    raw: dict[str, list[dict[str, Any]]] = {v: [] for v in VARIANTS}
    for i in range(size["runs"]):
        for variant, paused in VARIANTS.items():
            with tempfile.TemporaryDirectory(prefix=f"bench-api-{i}-") as tmp:
                raw[variant].append(_one_run(Path(tmp), paused, size["duration_s"]))
    results: dict[str, Any] = {}
    for variant, runs in raw.items():
        results[variant] = {
            "requests_per_s": spread([r["requests_per_s"] for r in runs]),
            "errors": sum(r["errors"] for r in runs),
            "service_cpu_ms_per_request": spread([r["service_cpu_ms_per_request"] for r in runs]),
            "movies_finished_per_s": spread([r["movies_finished_per_s"] for r in runs]),
            "endpoints": {
                ep: {
                    "requests_per_s": spread(
                        [
                            r["endpoints"][ep]["requests"] / r["endpoints"][ep]["duration_s"]
                            for r in runs
                        ]
                    ),
                    "p50_ms": spread([r["endpoints"][ep]["latency_ms"]["p50"] for r in runs]),
                    "p99_ms": spread([r["endpoints"][ep]["latency_ms"]["p99"] for r in runs]),
                }
                for ep in CONNECTIONS
            },
        }
    live = results["live"]
    eps = live["endpoints"]
    targets = {
        "create p99_ms <= 50": target(eps["create"]["p99_ms"]["median"], 50, at_most=True),
        "status p99_ms <= 25": target(eps["status"]["p99_ms"]["median"], 25, at_most=True),
        "position p99_ms <= 25": target(eps["position"]["p99_ms"]["median"], 25, at_most=True),
        "requests_per_s >= 1000": target(live["requests_per_s"]["median"], 1000, at_most=False),
        "errors == 0": target(live["errors"], 0, at_most=True),
    }
    return {"settings": settings, "results": results, "raw_runs": raw, "targets": targets}
