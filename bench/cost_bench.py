"""Benchmark 5: cloud cost per 1,000 movies from the emulator run's per-movie operation counts."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from bench.common import BENCH, NOT_MEASURED, ROOT

NAME = "cost"
OPS_FILE = "emulator_ops.json"  # the emulator end-to-end test's (a few movies)
LOAD_FILE = "stack_load.json"  # the stack load benchmark's, under "operations"
SOURCES = {
    LOAD_FILE: "the emulator stack under load (bench/stack_load.py)",
    OPS_FILE: "the emulator end-to-end test (tests/emulator/test_stack_e2e.py)",
}
TIB = 2**40
# The counts this benchmark reads from results/emulator_ops.json, per movie (or "totals"
# plus "movies"). Absent counts are reported as missing, never guessed.
COUNTS = (
    "firestore_reads",
    "firestore_writes",
    "firestore_deletes",
    "pubsub_messages",  # published messages
    "pubsub_deliveries",  # deliveries to subscribers; defaults to pubsub_messages
    "pubsub_bytes",  # payload bytes of all messages; each is billed at least the minimum
    "tasks_operations",  # Cloud Tasks API calls and push delivery attempts
    "function_invocations",
)
EXPECTED_SHAPE = {
    "movies": "number of movies in the emulator run (needed with totals)",
    "per_movie": {k: "count per movie" for k in COUNTS},
    "totals": "or: the same keys as per_movie, summed over the run",
}


def _shown(path: Path) -> str:
    """The path relative to the repository when it is inside it (RESULTS.md is committed)."""
    try:
        return str(path.resolve().relative_to(ROOT))
    except ValueError:
        return str(path)


def load_prices(path: Path = BENCH / "prices.json") -> dict[str, Any]:
    prices: dict[str, Any] = json.loads(path.read_text())
    return prices


def per_movie_from_raw(ops: dict[str, int], movies: int) -> dict[str, float]:
    """A run's summed meter counts (deepflix.metering.totals) as the counts this benchmark
    prices, per movie."""
    # Every task created is delivered once at least, but a deadline window's task fires at
    # its window's end, up to a stage's timeout after the run's last claim: priced as it will
    # be. A create refused as a duplicate (another process had the window's task) is a call
    # and nothing more.
    tasks = max(ops.get("invocations.tasks", 0), ops.get("tasks.created", 0))
    invocations = tasks + sum(
        v
        for k, v in ops.items()
        if k.startswith("invocations.") and "@" not in k and k != "invocations.tasks"
    )
    deliveries = sum(
        v for k, v in ops.items() if k.startswith("invocations.") and k.endswith("_requested")
    )
    return {
        "firestore_reads": ops.get("firestore.reads", 0) / movies,
        "firestore_writes": ops.get("firestore.writes", 0) / movies,
        "firestore_deletes": ops.get("firestore.deletes", 0) / movies,
        "pubsub_messages": ops.get("pubsub.publishes", 0) / movies,
        "pubsub_deliveries": deliveries / movies,
        # Each task is one create call plus one push delivery; a create refused as a
        # duplicate is a call too.
        "tasks_operations": (ops.get("tasks.created", 0) + ops.get("tasks.refused", 0) + tasks)
        / movies,
        "function_invocations": invocations / movies,
        "cloud_run_jobs": (ops.get("jobs.images", 0) + ops.get("jobs.video", 0)) / movies,
    }


def by_caller_per_movie(ops: dict[str, int], movies: int) -> dict[str, float]:
    """The counts kept under the code that asked for them (DEEPFLIX_METER_CALLERS=1), per
    movie, largest first."""
    callers = {k: v / movies for k, v in ops.items() if "@" in k}
    return dict(sorted(callers.items(), key=lambda kv: (-kv[1], kv[0])))


def per_movie_counts(ops: dict[str, Any]) -> tuple[dict[str, float], list[str]]:
    if "per_movie" in ops:
        source, divisor = ops["per_movie"], 1.0
    else:
        source, divisor = ops.get("totals", {}), float(ops.get("movies") or 0)
        if not divisor:
            raise ValueError(f"{OPS_FILE} has neither per_movie nor totals with movies")
    counts = {k: float(source[k]) / divisor for k in COUNTS if source.get(k) is not None}
    if "pubsub_deliveries" not in counts and "pubsub_messages" in counts:
        counts["pubsub_deliveries"] = counts["pubsub_messages"]
    missing = [k for k in COUNTS if k not in counts and k != "pubsub_bytes"]
    return counts, missing


def dollars_per_1000(counts: dict[str, float], prices: dict[str, Any]) -> dict[str, float]:
    """Each service's list-price cost of 1,000 movies."""
    fs, ps = prices["firestore"], prices["pubsub"]
    minimum = float(ps["min_billable_bytes_per_message"])
    messages = counts.get("pubsub_messages", 0.0)
    size = counts.get("pubsub_bytes", 0.0) / messages if messages else 0.0
    billed = max(minimum, size)  # per message, for the publish and again for each delivery
    pubsub_bytes = billed * (messages + counts.get("pubsub_deliveries", 0.0))
    per_movie = {
        "firestore_reads": counts.get("firestore_reads", 0.0) * fs["reads_per_100k_usd"] / 1e5,
        "firestore_writes": counts.get("firestore_writes", 0.0) * fs["writes_per_100k_usd"] / 1e5,
        "firestore_deletes": counts.get("firestore_deletes", 0.0)
        * fs["deletes_per_100k_usd"]
        / 1e5,
        "pubsub": pubsub_bytes / TIB * ps["throughput_per_tib_usd"],
        "cloud_tasks": counts.get("tasks_operations", 0.0)
        * prices["cloud_tasks"]["operations_per_million_usd"]
        / 1e6,
        "cloud_functions": counts.get("function_invocations", 0.0)
        * prices["cloud_functions"]["invocations_per_million_usd"]
        / 1e6,
    }
    out = {k: v * 1000 for k, v in per_movie.items()}
    out["total"] = sum(out.values())
    return out


def operation_counts(results: Path) -> list[tuple[Path, dict[str, Any]]]:
    """The runs whose counts to price, headline first: the end-to-end test's (the issue's
    measure: a few movies through the whole stack, one at a time), then the stack load's (a
    burst of movies that wait minutes in a deep story queue, which costs what a quiet run
    never sees). Runs that are absent or failed have no counts and are left out."""
    found: list[tuple[Path, dict[str, Any]]] = []
    for name in (OPS_FILE, LOAD_FILE):
        path = results / name
        if not path.is_file():
            continue
        doc = json.loads(path.read_text())
        ops = doc.get("operations") if name == LOAD_FILE else doc
        if isinstance(ops, dict) and ops.get("movies"):
            # The commit the run measured, where it names one.
            found.append((path, ops | {"run_commit": (doc.get("git") or {}).get("commit")}))
    return found


def priced(path: Path, ops: dict[str, Any], prices: dict[str, Any]) -> dict[str, Any]:
    """One run's counts per movie, their price per 1,000 movies, and where they went."""
    counts, missing = per_movie_counts(ops)
    source = ops.get("per_movie") or ops.get("totals") or {}
    return {
        "ops_file": _shown(path),
        "run_commit": ops.get("run_commit"),
        "movies_in_emulator_run": ops.get("movies"),
        "source": SOURCES[path.name],
        "per_movie_counts": counts,
        "missing_counts": missing,
        # e.g. cloud_run_jobs: billed by compute time, which these prices leave out
        "unpriced_counts": {k: v for k, v in source.items() if k not in COUNTS},
        "usd_per_1000_movies": dollars_per_1000(counts, prices),
        # Where the Firestore operations go (a run with DEEPFLIX_METER_CALLERS=1).
        "by_caller_per_movie": ops.get("by_caller_per_movie")
        or by_caller_per_movie(ops.get("raw") or {}, int(ops.get("movies") or 1)),
    }


def run(quick: bool = False, out_dir: Path = BENCH) -> dict[str, Any]:
    prices = load_prices()
    runs = operation_counts(out_dir / "results")
    ops_path = runs[0][0] if runs else out_dir / "results" / OPS_FILE
    base: dict[str, Any] = {
        "settings": {
            "ops_file": _shown(ops_path),
            "ops_source": SOURCES[ops_path.name],
            "expected_shape": EXPECTED_SHAPE,
            "prices_file": "bench/prices.json",
            "prices_as_of": prices["as_of"],
            "prices_note": prices["source"],
        },
        "prices": prices,
    }
    if not runs:
        return base | {
            "results": NOT_MEASURED + f": needs {OPS_FILE} from the emulator end-to-end run "
            f"or {LOAD_FILE} from the stack load",
            "targets": {},
        }
    results = priced(*runs[0], prices)
    if len(runs) > 1:  # the stack load beside the end-to-end run
        results["under_load"] = priced(*runs[1], prices)
    return base | {"results": results, "targets": {}}
