"""RESULTS.md sections of the cloud-side figures: cost, hot Firestore documents, ETA accuracy."""

from __future__ import annotations

from typing import Any

from bench.report_table import fmt, table

TOP_CALLERS = 12


def cost_section(doc: dict[str, Any]) -> list[str]:
    s, p = doc["settings"], doc["prices"]
    lines = [
        f"Prices: bench/prices.json, as of {s['prices_as_of']}: {s['prices_note']}.",
        "",
    ]
    lines += table(
        ["item", "list price (USD)"],
        [
            ["Firestore reads", f"{p['firestore']['reads_per_100k_usd']} per 100k"],
            ["Firestore writes", f"{p['firestore']['writes_per_100k_usd']} per 100k"],
            ["Firestore deletes", f"{p['firestore']['deletes_per_100k_usd']} per 100k"],
            [
                "Pub/Sub throughput",
                f"{p['pubsub']['throughput_per_tib_usd']} per TiB, min "
                f"{p['pubsub']['min_billable_bytes_per_message']} B per message",
            ],
            ["Cloud Tasks", f"{p['cloud_tasks']['operations_per_million_usd']} per million ops"],
            [
                "Cloud Functions",
                f"{p['cloud_functions']['invocations_per_million_usd']} per million invocations",
            ],
        ],
    )
    res = doc["results"]
    if isinstance(res, str):
        return [*lines, f"**{res}** (reads {s['ops_file']} when it exists)", ""]
    lines += _priced(res, s["ops_file"])
    load = res.get("under_load")
    if load:
        lines += [
            "**Under load**, beside it: the same prices on the operations of the stack load "
            "(section 8), whose movies arrive at once and wait minutes in the story queue.",
            "",
            *_priced(load, load["ops_file"]),
        ]
    return lines


def _priced(res: dict[str, Any], ops_file: str) -> list[str]:
    counts = ", ".join(f"{k} {fmt(v, 1)}" for k, v in res["per_movie_counts"].items())
    source = res.get("source") or "the emulator end-to-end run"
    if res.get("run_commit"):
        source += f" (its run at {res['run_commit'][:7]})"
    lines = [
        f"Operations per movie from {ops_file}, {source}: "
        f"{res.get('movies_in_emulator_run')} movies priced. {counts}.",
        "",
    ]
    rows = [[k, fmt(v, 4)] for k, v in res["usd_per_1000_movies"].items()]
    lines += table(["service", "USD per 1,000 movies"], rows)
    if res["missing_counts"]:
        lines.append(f"Counts missing from the ops file (taken as 0): {res['missing_counts']}")
    if res.get("unpriced_counts"):
        lines.append(f"Counted but not priced here: {res['unpriced_counts']}")
    callers = [
        [k, fmt(v, 2)]
        for k, v in (res.get("by_caller_per_movie") or {}).items()
        if k.startswith(("firestore.reads@", "firestore.writes@"))
    ][:TOP_CALLERS]
    if callers:
        lines += ["", "Where the Firestore reads and writes go, per movie (the largest):", ""]
        return lines + table(["operation@code", "per movie"], callers)
    return [*lines, ""]


def stack_load_section(doc: dict[str, Any]) -> list[str]:
    s, res = doc["settings"], doc["results"]
    if isinstance(res, str):
        return [f"**{res}**", ""]
    lines = [
        f"{s['movies']} movies with {s['generators']} generators, {s['scene_count']} scene "
        f"each, concurrency {s['concurrency_per_stage']} per stage, the same movies through "
        "each side in one run.",
        *(f"- {side}: {s[side]['driven']}." for side in res if side in s),
        f"- Hop: {s['hop_definition']}.",
        "",
    ]
    rows = []
    for side, r in res.items():
        cpu = r.get("cpu_ms_per_movie", {}).get("total")
        rows.append(
            [
                side,
                fmt(r["movies_per_s"], 2),
                fmt(r["hop_ms"]["p50"], 1),
                fmt(r["hop_ms"]["p99"], 1),
                f"{r['succeeded']} / {r['movies']}",
                fmt(r.get("creates_per_s"), 1),
                fmt(cpu, 0),
            ]
        )
    head = ["side", "movies/s", "hop p50 ms", "hop p99 ms", "succeeded", "creates/s"]
    lines += table([*head, "CPU ms a movie"], rows)
    cpu = res.get("stack", {}).get("cpu_ms_per_movie")
    if cpu:
        parts = ", ".join(f"{k} {fmt(v, 0)}" for k, v in cpu.items() if k != "total")
        lines += [f"The stack's CPU per movie by process (ms): {parts}.", ""]
    load = doc.get("loadavg_1min_during") or {}
    if load.get("count"):
        lines += [
            f"Load average (1 min) during the run: median {fmt(load['p50'], 1)}, max "
            f"{fmt(load['max'], 1)} ({load['count']} samples, 5 s apart).",
            "",
        ]
    return lines


def hot_docs_section(doc: dict[str, Any]) -> list[str]:
    s, res = doc["settings"], doc["results"]
    if isinstance(res, str):
        return [f"**{res}**", ""]
    lines = [
        f"{res['movies']} movies through the Firestore store and pipeline on the emulator, "
        f"{res['workers']} workers, concurrency {s['concurrency_per_stage']} per stage, shards "
        f"sized for {fmt(s['target_rate_movies_per_s'], 0)} movies/s; "
        f"{res['completed']} completed in {fmt(res['elapsed_s'])} s "
        f"({fmt(res['movies_per_s_on_emulator'], 2)} movies/s on the emulator).",
        "",
        f"- Per-stage ceiling at {s['writes_per_document_s']} write/s per document "
        f"(lowest stage): **{fmt(res['per_stage_ceiling_movies_per_s'])} movies/s**",
        f"- Transaction retries per commit: **{fmt(res['retries_per_commit'], 3)}** "
        f"({res['conflicts']} conflicts, {res['commits']} commits)",
        f"- Running never over the limit: {res['never_over_limit']} "
        f"({res['running_samples']} samples)",
        f"- Writes per movie (batched, movie documents included): {res['writes_per_movie']}: "
        + ", ".join(f"{k} {v}" for k, v in res["writes_per_movie_by_collection"].items()),
        f"- Dispatch tasks enqueued: {res['dispatch_tasks_enqueued']}; errors: "
        f"{res['error_count']}",
        "",
    ]
    rows = [
        [
            stage,
            str(v["busiest_document"]),
            fmt(v["busiest_writes_per_movie"], 4),
            fmt(v["ceiling_movies_per_s"]),
            str(v["documents"]),
            f"{v['running_max_sampled']} / {v['limit']}",
        ]
        for stage, v in res["per_stage"].items()
    ]
    lines += table(
        [
            "stage",
            "busiest document",
            "its writes/movie",
            "ceiling movies/s",
            "documents",
            "running max / limit",
        ],
        rows,
    )
    return lines


def eta_section(doc: dict[str, Any]) -> list[str]:
    s, r = doc["settings"], doc["results"]
    lines = [
        f"{s['n']} movies at {s['rate']:g}/s, scenes {s['scenes']}, priorities "
        f"{', '.join(f'{p} {w:.0%}' for p, w in s['priorities'].items())}, concurrency "
        f"{', '.join(f'{k} {v}' for k, v in s['concurrency'].items())}; durations: "
        f"{s['durations']}. Measured: {s['measured']} ({s['warmup']}). {r['completed']} "
        f"finished; actual time to finish p50 {fmt(r['finish_s']['p50'])} s, p90 "
        f"{fmt(r['finish_s']['p90'])} s.",
        "",
    ]

    def row(name: str, e: dict[str, Any]) -> list[str]:
        signed = e["mean_signed"]
        return [name, str(e["count"]), fmt(e["p50"], 2), fmt(e["p90"], 2), fmt(signed, 2)]

    rows = [row("at create (recorded with the movie)", r["at_create"])]
    rows += [row(f"at create, {p} priority", e) for p, e in r["at_create_by_priority"].items()]
    rows += [row(f"at {st} start", e) for st, e in r["at_stage_start"].items()]
    one = doc.get("results_one_priority")
    if one:
        rows += [row("one priority: at create", one["at_create"])]
        rows += [row(f"one priority: at {st} start", e) for st, e in one["at_stage_start"].items()]
    lines += table(["finish estimate", "n", "p50 error", "p90 error", "mean signed"], rows)
    band = r["at_create_in_band"]
    lines += [
        f"`eta_finish_error_p90` = {fmt(doc['eta_finish_error_p90'], 3)}; finishes inside the "
        f"create-time band: {fmt(band * 100 if band is not None else None)} %; unknown at "
        f"create after the warm-up: {r['at_create_unknown']}.",
        "",
    ]
    return lines
