"""Benchmark 3, Firestore side: reads billed per position query at depth, on the emulator."""

from __future__ import annotations

import math
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

from bench.common import NOT_MEASURED, latency_summary
from deepflix.adapters.gcp.firestore_docs import index_fields
from deepflix.adapters.gcp.firestore_store import FirestoreMovieStore
from deepflix.adapters.gcp.queue_counts import (
    COUNT_SHARD,
    DEEP_AFTER,
    ENTRIES_PER_READ,
    SHARDS,
    WIDTHS,
    CounterDoc,
    by_document,
    counted,
    increment,
    shard_of,
)
from deepflix.metering import METER
from deepflix.pipeline.models import Movie, Stage
from devtools import emulators as servers

# The most writes one Firestore commit takes; commits in flight at once while filling.
BATCH, COMMITTERS = 500, 4
PRICING = "https://firebase.google.com/docs/firestore/pricing#aggregation_queries"
# Filling stops before a depth whose predicted fill time (at the rate measured so far)
# exceeds this, and says so: the emulator keeps every document in one JVM's memory.
FILL_BUDGET_S = 420.0
COUNTED = (
    "store.position() reads the queue counters that the commits keep for a deep queue "
    "(queue_counts.py, docs/decisions/0008 and 0026; the first "
    f"{DEEP_AFTER} movies of a queue wait uncounted, as the store fills it): eight "
    "aggregations at one read time: the stage's counted waiting (a sum over its widest "
    "buckets) and uncounted waiting (a count() of the index), its running (a count() of the "
    "movies' running_stage index), one sum() of bucket documents per "
    f"bucket width ({', '.join(f'{w:,} s' for w in WIDTHS)}: the widest before the movie's "
    "own, with the priorities ahead; each finer one inside its own block of the next), "
    f"a count() of the index entries before it inside its own {WIDTHS[0]}-second bucket, "
    "and a count() of the uncounted before that bucket. "
    "'metered' is what deepflix.metering counts for it, as in emulator_ops.json: one "
    "firestore.read per aggregation, whatever it matched. 'billed' applies Firestore's rule "
    f"for aggregations ({PRICING}): one read per batch of up to {ENTRIES_PER_READ:,} index "
    "entries matched, at least one, to the entries each aggregation matched (each also "
    "returns a count() of them, in the same query). The emulator reports no billing, so "
    "'billed' is computed, not observed. The waiting movies are written with their index "
    "fields only (see fill()), 500 to a commit, then the counters they add, merged. An API "
    "position request also reads the movie (1) and the stage means (a sum() aggregation "
    "of the duration sums in each stage's slot shards, 1 a stage)."
)


def growth(per_depth: dict[str, Any]) -> dict[str, Any]:
    """Billed reads of the deepest probe at each depth, and their log-log slope (1 = linear)."""
    billed = {d: r["last"]["billed_reads"] for d, r in per_depth.items()}
    lo, hi = min(billed, key=int), max(billed, key=int)
    slope = None
    if hi != lo:
        slope = math.log(billed[hi] / billed[lo]) / math.log(int(hi) / int(lo))
    return {
        "last_probe_billed_reads": billed,
        "loglog_slope": slope,
        "rule": "one read per aggregation while each matches at most 1,000 entries: the "
        f"stage's {SHARDS} count shards; at most 100 buckets x {SHARDS} shards inside a "
        "block; the widest buckets of the priorities ahead and its own before it (at most "
        f"3 x {SHARDS} documents per 100,000 s the buckets span, which the sweep's deletes of "
        "emptied ones keep to the backlog: one more read per ~48 days); and the arrivals of "
        "its priority in "
        f"{WIDTHS[0]} s. Flat in depth: it grows with the time the buckets span and the "
        "arrival rate, not with the movies waiting",
    }


def _client(emulator: servers.Emulator) -> Any:
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import firestore

    # The client reads the emulator address only while it is being built.
    with servers.env("FIRESTORE_EMULATOR_HOST", emulator.address):
        return firestore.Client(project=servers.PROJECT, credentials=AnonymousCredentials())


def uncounted_or_shard(m: Movie, uncounted: set[str]) -> int | None:
    return None if m.id in uncounted else shard_of(m.id, SHARDS)


def fill(client: Any, movies: list[Movie], uncounted: set[str]) -> float:
    """Write the movies' index fields, BATCH to a commit, then the counters they add; seconds.

    Only the fields the queries filter and order on (firestore_docs.index_fields): billing
    counts index entries matched, not document size, and the emulator indexes every field
    of a whole movie document, which filled at 200-370 documents/s here against ~1,000.
    The counters are the increments the store's commits would make (queue_counts.counted),
    merged per document: the same totals, in far fewer writes.
    """
    started = time.monotonic()
    col = client.collection("movies")
    changes: Counter[tuple[CounterDoc, str]] = Counter()
    shards = {m.id: uncounted_or_shard(m, uncounted) for m in movies}
    for m in movies:
        changes.update(counted(m, shards[m.id]))
    docs = list(by_document(changes).items())

    def commit(chunk: list[Movie]) -> None:
        batch = client.batch()
        for m in chunk:
            batch.create(col.document(m.id), index_fields(m) | {COUNT_SHARD: shards[m.id]})
        batch.commit()

    def count(chunk: list[tuple[CounterDoc, dict[str, int]]]) -> None:
        batch = client.batch()
        increment(batch, client, dict(chunk))
        batch.commit()

    with ThreadPoolExecutor(COMMITTERS) as pool:
        list(pool.map(commit, [movies[i : i + BATCH] for i in range(0, len(movies), BATCH)]))
        list(pool.map(count, [docs[i : i + BATCH] for i in range(0, len(docs), BATCH)]))
    return time.monotonic() - started


def measure(store: FirestoreMovieStore, probe: Movie, samples: int) -> dict[str, Any]:
    before = METER.snapshot().get("firestore.reads", 0)
    # What store.position() runs, with the entries each aggregation matched.
    answer = store.counters.position(probe, Stage.story)
    metered = METER.snapshot().get("firestore.reads", 0) - before
    times = []
    for _ in range(samples):
        t = time.perf_counter()
        store.position(probe, Stage.story)
        times.append((time.perf_counter() - t) * 1000)
    return {
        "position": {"ahead": answer.ahead, "total": answer.total, "running": answer.running},
        "matched": answer.matched,
        "metered_reads": metered,
        "billed_reads": answer.billed_reads,
        "emulator_ms": latency_summary(times),
    }


def run(
    depths: list[int], samples: int, make_movie: Callable[[int, datetime], Movie]
) -> dict[str, Any] | str:
    """Reads per position query at each depth, filling one emulator database upwards.

    `make_movie(i, base)` makes the i-th waiting movie, as the embedded benchmark does.
    Returns a NOT_MEASURED string when the emulator cannot run here.
    """
    try:
        emulator = servers.firestore()
    except servers.EmulatorMissing as e:
        return f"{NOT_MEASURED}: {e}"
    try:
        servers.clear_firestore(emulator)
        client = _client(emulator)
        store = FirestoreMovieStore(client=client)
        base = datetime.now(UTC) - timedelta(hours=1)
        movies: list[Movie] = []
        out: dict[str, Any] = {"counted": COUNTED, "depths": {}}
        fill_s, filled = 0.0, 0
        for depth in depths:
            rate = filled / fill_s if fill_s else None
            if rate and (depth - filled) / rate > FILL_BUDGET_S:
                out["stopped"] = (
                    f"stopped before {depth:,}: at the {rate:.0f} documents/s measured, the "
                    f"fill would take over {FILL_BUDGET_S:.0f} s"
                )
                break
            fresh = [make_movie(i, base) for i in range(filled, depth)]
            # The queue's first arrivals wait uncounted, as the store's commits leave them.
            fill_s += fill(client, fresh, {m.id for m in fresh[: max(0, DEEP_AFTER - filled)]})
            movies += fresh
            filled = depth
            order = sorted(movies, key=lambda m: m.sort_key)
            probes = {"first": order[0], "middle": order[len(order) // 2], "last": order[-1]}
            out["depths"][str(depth)] = {
                "fill_s_total": round(fill_s, 1),
                "fill_docs_per_s": round(filled / fill_s),
                **{where: measure(store, m, samples) for where, m in probes.items()},
            }
        client.close()
        out["growth"] = growth(out["depths"])
        return out
    finally:
        servers.stop_all()  # the emulator this call started; the benchmark starts no other
