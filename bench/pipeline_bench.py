"""Benchmark 1: pipeline throughput and stage-hop latency, ours against BullMQ on Redis."""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

from bench.common import (
    BENCH,
    ROOT,
    bullmq_ready,
    latency_summary,
    redis_server,
    run_json,
    spread,
    target,
)

NAME = "pipeline"
CONCURRENCY = 8
SCENES = 6
# Our stage work in one warm worker process per core (DEEPFLIX_STAGE_PROCESSES), so it
# does not take the runtime's interpreter lock; bullmq's side is one node process.
STAGE_PROCESSES = os.cpu_count() or 2
# bullmq writes the same artifact files as our instant generators (like for like, the
# ratio's peer); bullmq_queue_only moves the jobs alone, to show what the files cost;
# ours_threads does the stage work on the runtime's threads (DEEPFLIX_STAGE_PROCESSES=0);
# ours_queue_only is bullmq_queue_only's peer: stage work that only names its outputs, so
# the pair compares the two queues with nothing else running.
SIDES = {
    "burst": ("ours", "ours_threads", "ours_queue_only", "bullmq", "bullmq_queue_only"),
    "paced": ("ours", "bullmq"),
}
SHM = Path("/dev/shm")
MEMORY_FS = SHM if SHM.is_dir() and os.access(SHM, os.W_OK) else None


def sizes(quick: bool) -> dict[str, Any]:
    if quick:
        return {"n": 100, "runs": 1, "paced_n": 20, "paced_rate": 10.0}
    return {"n": 2000, "runs": 3, "paced_n": 100, "paced_rate": 10.0}


def _ours(side: str, n: int, rate: float, data: Path, media: Path) -> dict[str, Any]:
    """One run of our side; `side` says where its stage work runs (SIDES)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("DEEPFLIX_")}
    processes = STAGE_PROCESSES if side == "ours" else 0
    args = [sys.executable, "-m", "bench.ours_chain", "--n", str(n), "--rate", str(rate)]
    args += ["--concurrency", str(CONCURRENCY), "--workers", str(CONCURRENCY)]
    args += ["--scenes", str(SCENES), "--data", str(data), "--media", str(media)]
    args += ["--stage-processes", str(processes)]
    if side == "ours_queue_only":
        args.append("--queue-only")
    return run_json(args, cwd=ROOT, env=env)


def _bullmq(port: int, n: int, rate: float, artifacts: Path | None) -> dict[str, Any]:
    args = ["node", "chain.mjs", "--port", str(port), "--n", str(n), "--rate", str(rate)]
    args += ["--concurrency", str(CONCURRENCY), "--scenes", str(SCENES)]
    if artifacts is not None:
        args += ["--artifacts", str(artifacts)]
    return run_json(args, cwd=BENCH / "bullmq")


def _summarise(run: dict[str, Any]) -> dict[str, Any]:
    """One run's figures; raw hop samples are reduced to percentiles."""
    hops = run.pop("hops_ms")
    both = [h for hop in hops for h in hop]
    run["hop_ms"] = latency_summary(both)
    run["hop_ms_by_stage"] = {
        f"{a}->{b}": latency_summary(h)
        for (a, b), h in zip((("story", "images"), ("images", "video")), hops, strict=True)
    }
    return run


def _aggregate(runs: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "movies_per_s": spread([r["movies_per_s"] for r in runs]),
        "hop_p50_ms": spread([r["hop_ms"]["p50"] for r in runs]),
        "hop_p99_ms": spread([r["hop_ms"]["p99"] for r in runs]),
        "completed_all": all(r["completed"] == r["n"] for r in runs),
    }


def _ratio(ours: list[dict[str, Any]], peer: list[dict[str, Any]]) -> dict[str, Any]:
    """Throughput ours/peer per interleaved pair of runs."""
    pairs = zip(ours, peer, strict=True)
    return spread([a["movies_per_s"] / b["movies_per_s"] for a, b in pairs])


def run(quick: bool = False) -> dict[str, Any]:
    size = sizes(quick)
    skip = bullmq_ready()
    modes = {"burst": (size["n"], 0.0), "paced": (size["paced_n"], size["paced_rate"])}
    sides = {
        m: SIDES[m] if skip is None else tuple(s for s in SIDES[m] if s.startswith("ours"))
        for m in modes
    }
    raw: dict[str, dict[str, list[dict[str, Any]]]] = {
        mode: {side: [] for side in sides[mode]} for mode in modes
    }
    # Both sides' artifact files go to a memory file system when there is one, and every
    # run's files are removed once, at the end: the benchmark compares the queues, and on
    # the benchmark machine's ext4 (no journal) a new file's inode costs more for every
    # inode freed in the last minutes, by the previous run or by other work (bench/notes.py).
    # The durable state, SQLite's file and Redis's append-only file, stays on disk.
    with contextlib.ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-pipeline-")))
        media = Path(
            stack.enter_context(
                tempfile.TemporaryDirectory(prefix="bench-pipeline-", dir=MEMORY_FS or None)
            )
        )
        redis = stack.enter_context(redis_server(tmp)) if skip is None else None
        for i in range(size["runs"]):
            # Interleaved, and the order flips every run so drift hits both sides alike.
            for mode, (n, rate) in modes.items():
                order = sides[mode] if i % 2 == 0 else tuple(reversed(sides[mode]))
                for side in order:
                    run_id = f"{mode}-{side}-{i}"
                    if side.startswith("ours"):
                        r = _ours(side, n, rate, tmp / run_id, media / run_id)
                    else:
                        assert redis is not None
                        files = media / run_id if side == "bullmq" else None
                        r = _bullmq(redis["port"], n, rate, files)
                    raw[mode][side].append(_summarise(r))
    results: dict[str, Any] = {}
    for mode in modes:
        results[mode] = {side: _aggregate(raw[mode][side]) for side in sides[mode]}
    burst = results["burst"]
    ratio = queue_ratio = None
    if "bullmq" in burst:
        ratio = _ratio(raw["burst"]["ours"], raw["burst"]["bullmq"])
        queue_ratio = _ratio(raw["burst"]["ours_queue_only"], raw["burst"]["bullmq_queue_only"])
    paced_ours = results["paced"]["ours"]
    targets = {
        "throughput_ratio_vs_bullmq >= 1.0": target(
            ratio["median"] if ratio else None, 1.0, at_most=False
        ),
        "hop_p50_ms <= 5 (paced)": target(paced_ours["hop_p50_ms"]["median"], 5, at_most=True),
        "hop_p99_ms <= 50 (paced)": target(paced_ours["hop_p99_ms"]["median"], 50, at_most=True),
        "hop_p50_ms <= 5 (burst)": target(burst["ours"]["hop_p50_ms"]["median"], 5, at_most=True),
        "hop_p99_ms <= 50 (burst)": target(burst["ours"]["hop_p99_ms"]["median"], 50, at_most=True),
    }
    return {
        "settings": {
            **size,
            "concurrency_per_stage": CONCURRENCY,
            "scene_count": SCENES,
            "ours": {
                "driven": "in-process: build_embedded(Settings) + runtime.start() + "
                "pipeline.create() in a loop (python -m bench.ours_chain, one child per run); "
                f"stage work in {STAGE_PROCESSES} worker processes (DEEPFLIX_STAGE_PROCESSES, "
                "one per core), 'ours_threads' on the runtime's threads, 'ours_queue_only' "
                "with stage work that names its outputs and writes nothing (on the runtime's "
                "threads)",
                "generators": "instant",
                "job_runner": "inline",
                "workers": CONCURRENCY,
                "stage_processes": STAGE_PROCESSES,
                "log_level": "WARNING",
                "durability": "SQLite WAL, synchronous=NORMAL: every committed transaction "
                "survives a process crash (kill -9), not a power loss",
            },
            "bullmq": {
                "driven": "node bench/bullmq/chain.mjs: three queues, one Worker per queue "
                "with the same concurrency, each processor adds the next stage's job; the "
                "images worker reports progress like ours (at most once per 0.5 s of work); "
                "'bullmq' also reads and writes the same artifact files as our instant "
                "generators (write beside, rename), 'bullmq_queue_only' writes none",
                "attempts": 3,
                "durability": "redis-server appendonly yes, appendfsync everysec, no RDB: "
                "survives a process crash; a power loss may drop the last second",
            },
            "files": f"both sides' artifact files in {MEMORY_FS or 'the temporary folder'} "
            "(ours: DEEPFLIX_MEDIA_DIR; bullmq: --artifacts), SQLite and Redis's "
            "append-only file on disk; every run's files removed together at the end",
            "hop_definition": "stage k finished (the work done, before its result is "
            "recorded) -> stage k+1 started (claimed by a worker); burst includes waiting "
            "for a free slot of the next stage, paced measures dispatch alone",
        },
        "skipped": {"bullmq": skip} if skip else {},
        "results": results,
        "ratio_ours_over_bullmq": ratio,
        "ratio_queue_only": queue_ratio,
        "raw_runs": raw,
        "targets": targets,
    }
