"""Benchmark 3: queue position and status latency with 1k, 10k and 100k movies waiting."""

from __future__ import annotations

import http.client
import math
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

from bench import position_firestore
from bench.common import HOST, Service, latency_summary, spread, target
from deepflix.pipeline.models import STAGES, Movie, MovieCreate, Priority, StageState, StageStatus
from deepflix.pipeline.service import Pipeline, fingerprint
from deepflix.runtime.compose import build_embedded
from deepflix.settings import Settings

NAME = "position"
# 100 arrivals per second: 100k waiting movies arrived over ~17 minutes.
ARRIVAL_GAP_S = 0.01
# Priorities of the waiting movies: mostly normal, some high and low, like real traffic.
PRIORITY_CYCLE = (Priority.normal,) * 8 + (Priority.high, Priority.low)


def sizes(quick: bool) -> dict[str, Any]:
    if quick:
        return {"depths": [600, 2000], "samples": 30, "runs": 1, "firestore_samples": 2}
    return {"depths": [1_000, 10_000, 100_000], "samples": 200, "runs": 3, "firestore_samples": 5}


def _settings(data_dir: Path) -> Settings:
    return Settings(_env_file=None, data_dir=data_dir, generators="instant")


def _movie(i: int, base: datetime) -> Movie:
    """A movie exactly as Pipeline.create makes it: waiting for its story, queued."""
    at = base + timedelta(seconds=ARRIVAL_GAP_S * i)
    stages = {s: StageState() for s in STAGES}
    stages[STAGES[0]] = StageState(status=StageStatus.waiting, ready_at=at)
    request = MovieCreate(
        prompt=f"waiting movie {i}", priority=PRIORITY_CYCLE[i % len(PRIORITY_CYCLE)]
    )
    return Movie(
        id=uuid.uuid4().hex,
        owner="bench",
        request=request,
        created_at=at,
        updated_at=at,
        stages=stages,
    )


def populate(data_dir: Path, depth: int) -> dict[str, Any]:
    """Pause admission, then create `depth` waiting movies through the store's own create().

    Arrivals are spaced ARRIVAL_GAP_S apart (about the API's create rate), so the queue looks
    like one filled by clients, not 100k movies in the same instant. Returns the first,
    middle and last movie in queue order.
    """
    store = build_embedded(_settings(data_dir)).store
    store.set_admission_paused(True)
    base = datetime.now(UTC) - timedelta(seconds=ARRIVAL_GAP_S * depth + 60)
    started = time.monotonic()
    keys: list[tuple[tuple[int, str, str], str]] = []
    for i in range(depth):
        m = _movie(i, base)
        store.create(m, idempotency_key=None, fingerprint=fingerprint(m.request))
        keys.append((m.sort_key, m.id))
    keys.sort()
    probes = {"first": keys[0][1], "middle": keys[len(keys) // 2][1], "last": keys[-1][1]}
    return {"seconds": time.monotonic() - started, "probes": probes}


def _interleaved(
    fns: dict[tuple[str, str], Callable[[], object]], samples: int
) -> dict[str, dict[str, Any]]:
    """Latencies of each (probe, metric) call, `samples` each, taken in turns: every probe
    and metric sees the same moments of a machine shared with other work. Measured: blocks
    of ~0.5 s in which everything ran twice as slow came and went, and a probe timed in one
    block of its own could land entirely in one."""
    for fn in fns.values():
        fn()  # warm caches and connections
    out: dict[tuple[str, str], list[float]] = {key: [] for key in fns}
    for _ in range(samples):
        for key, fn in fns.items():
            t = time.perf_counter()
            fn()
            out[key].append((time.perf_counter() - t) * 1000)
    summary: dict[str, dict[str, Any]] = {}
    for (where, metric), ms in out.items():
        summary.setdefault(where, {})[metric] = latency_summary(ms)
    return summary


def _get_and_position(pipeline: Pipeline, movie_id: str) -> object:
    return pipeline.position(pipeline.get(movie_id))


def measure_in_process(data_dir: Path, probes: dict[str, str], samples: int) -> dict[str, Any]:
    pipeline = build_embedded(_settings(data_dir)).pipeline
    fns: dict[tuple[str, str], Callable[[], object]] = {}
    found: dict[str, dict[str, Any]] = {}
    for where, movie_id in probes.items():
        movie = pipeline.get(movie_id)
        pos = pipeline.position(movie)
        assert pos is not None, "the probe movie must be waiting"
        found[where] = {"position": pos.position, "total_waiting": pos.total_waiting}
        fns[where, "position_ms"] = partial(pipeline.position, movie)
        fns[where, "get_and_position_ms"] = partial(_get_and_position, pipeline, movie_id)
    timed = _interleaved(fns, samples)
    return {where: {**found[where], **timed[where]} for where in probes}


def measure_http(service: Service, probes: dict[str, str], samples: int) -> dict[str, Any]:
    """Sequential keep-alive requests from one client: the latency of one request alone."""
    conn = http.client.HTTPConnection(HOST, service.port, timeout=60)

    def get(path: str) -> None:
        conn.request("GET", path)
        resp = conn.getresponse()
        resp.read()
        assert resp.status == 200, resp.status

    fns: dict[tuple[str, str], Callable[[], object]] = {}
    for where, movie_id in probes.items():
        fns[where, "position_ms"] = partial(get, f"/api/queue/{movie_id}/position")
        fns[where, "status_ms"] = partial(get, f"/api/movies/{movie_id}/status")
    out = _interleaved(fns, samples)
    conn.close()
    return out


def _one_depth(workdir: Path, depth: int, samples: int) -> dict[str, Any]:
    data = workdir / "data"
    filled = populate(data, depth)
    in_process = measure_in_process(data, filled["probes"], samples)
    with Service(data, {"generators": "instant", "log_level": "WARNING"}) as service:
        _, queues = service.call("GET", "/api/queues")
        assert queues["admission_paused"] and queues["queues"]["story"]["waiting"] == depth
        http = measure_http(service, filled["probes"], samples)
    return {"populate_s": filled["seconds"], "in_process": in_process, "http": http}


def _growth(per_depth: dict[int, dict[str, Any]], path: tuple[str, ...]) -> dict[str, Any]:
    """Latency at each depth over the smallest depth's, and the log-log slope (1 = linear)."""
    depths = sorted(per_depth)
    values = {}
    for d in depths:
        node: Any = per_depth[d]
        for key in path:
            node = node[key]
        values[d] = node
    lo, hi = depths[0], depths[-1]
    ratio = values[hi] / values[lo] if values[lo] else None
    slope = math.log(ratio) / math.log(hi / lo) if ratio and ratio > 0 else None
    return {"ms": values, f"ratio_{hi}_over_{lo}": ratio, "loglog_slope": slope}


def run(quick: bool = False) -> dict[str, Any]:
    size = sizes(quick)
    raw: dict[int, list[dict[str, Any]]] = {d: [] for d in size["depths"]}
    for i in range(size["runs"]):
        for depth in size["depths"]:
            with tempfile.TemporaryDirectory(prefix=f"bench-pos-{depth}-{i}-") as tmp:
                raw[depth].append(_one_depth(Path(tmp), depth, size["samples"]))
    medians: dict[int, dict[str, Any]] = {}
    for depth, runs in raw.items():
        m: dict[str, Any] = {"populate_s": spread([r["populate_s"] for r in runs])}
        for side, metrics in (
            ("in_process", ("position_ms", "get_and_position_ms")),
            ("http", ("position_ms", "status_ms")),
        ):
            m[side] = {
                where: {
                    metric: {
                        q: statistics.median(r[side][where][metric][q] for r in runs)
                        for q in ("p50", "p99")
                    }
                    for metric in metrics
                }
                for where in ("first", "middle", "last")
            }
        medians[depth] = m
    growth = {
        f"{side}.{metric}.{where}.p50": _growth(medians, (side, where, metric, "p50"))
        for side, metric in (
            ("in_process", "position_ms"),
            ("http", "position_ms"),
            ("http", "status_ms"),
        )
        for where in ("first", "middle", "last")
    }
    ratios = [
        g[k]
        for name, g in growth.items()
        if ".position_ms." in name
        for k in g
        if k.startswith("ratio_") and g[k] is not None
    ]
    worst = max(ratios, default=None)
    hi, lo = max(size["depths"]), min(size["depths"])
    return {
        "settings": {
            **size,
            "samples_note": "samples per probe and metric at every depth, all probes and "
            "metrics of one depth timed in turns",
            "populate": "admission paused; one store.create() per movie, arrivals "
            f"{ARRIVAL_GAP_S * 1000:g} ms apart ({1 / ARRIVAL_GAP_S:g}/s)",
            "priorities": "80% normal, 10% high, 10% low; probes are the first, middle and "
            "last movie in dispatch order",
            "in_process": "pipeline.position(movie), and pipeline.get(id) + position",
            "http": "one keep-alive client, sequential GETs against deepflix serve",
        },
        "results": {str(d): m for d, m in medians.items()},
        "growth": growth,
        # Read counts are exact in one run; the emulator's latency is only indicative.
        "firestore_reads_per_position_query": position_firestore.run(
            size["depths"], size["firestore_samples"], _movie
        ),
        "raw_runs": {str(d): r for d, r in raw.items()},
        "targets": {
            f"position at {hi} <= 2x at {lo} (worst probe)": target(worst, 2, at_most=True)
        },
    }
