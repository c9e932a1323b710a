"""Renders bench/RESULTS.md from the result files in bench/results/."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from bench.common import BENCH, NOT_MEASURED
from bench.report_cloud import cost_section, eta_section, hot_docs_section, stack_load_section
from bench.report_table import fmt, med, table

ORDER = ("pipeline", "api", "position", "render", "cost", "hot_docs", "eta", "stack_load")
TITLES = {
    "pipeline": "1. Pipeline throughput and stage-hop latency (ours vs BullMQ)",
    "api": "2. API under load (32 connections, wrk)",
    "position": "3. Queue position at depth",
    "render": "4. Rendering (local generators vs ffmpeg's ceiling)",
    "cost": "5. Cloud cost per 1,000 movies",
    "hot_docs": "6. Hot Firestore documents (emulator, parallel workers)",
    "eta": "7. ETA accuracy (finish estimates against actual finishes)",
    "stack_load": "8. The emulator stack under load, beside the embedded mode (same run)",
}


def notes(path: Path = BENCH / "NOTES.md") -> dict[str, str]:
    """The sections of NOTES.md by name: a heading's first word, in lower case."""
    sections: dict[str, list[str]] = {}
    lines: list[str] = []  # the text before the first section, which is not printed
    for line in path.read_text().splitlines():
        if line.startswith("## "):
            lines = sections.setdefault(line[3:].split()[0].lower(), [])
        else:
            lines.append(line)
    return {name: "\n".join(text).strip() for name, text in sections.items()}


def _pipeline(doc: dict[str, Any]) -> list[str]:
    s, res = doc["settings"], doc["results"]
    lines = [
        f"N = {s['n']} movies (burst: all submitted at once) and {s['paced_n']} movies paced at "
        f"{s['paced_rate']:g}/s; {s['runs']} runs per side, interleaved; concurrency "
        f"{s['concurrency_per_stage']} per stage on both sides; {s['scene_count']} scenes.",
        f"- Ours: {s['ours']['driven']}. Durability: {s['ours']['durability']}.",
        f"- BullMQ: {s['bullmq']['driven']}. Durability: {s['bullmq']['durability']}.",
        f"- Hop: {s['hop_definition']}.",
        *([f"- Files: {s['files']}."] if "files" in s else []),
        "",
    ]
    rows = []
    for mode, sides in res.items():
        for side, r in sides.items():
            rows.append(
                [
                    mode,
                    side,
                    med(r["movies_per_s"]),
                    med(r["hop_p50_ms"], 2),
                    med(r["hop_p99_ms"], 2),
                    "yes" if r["completed_all"] else "NO",
                ]
            )
    head = ["mode", "side", "movies/s", "hop p50 ms", "hop p99 ms", "all completed"]
    lines += table(head, rows)
    ratio = doc.get("ratio_ours_over_bullmq")
    lines.append(f"**Throughput ratio ours/BullMQ (burst, per interleaved pair): {med(ratio, 3)}**")
    if doc.get("ratio_queue_only"):
        lines.append(
            "\nThe queues alone, ours_queue_only/bullmq_queue_only (no files on either side): "
            f"{med(doc['ratio_queue_only'], 3)}"
        )
    for side, why in doc.get("skipped", {}).items():
        lines.append(f"\n{side} skipped: {why}")
    return [*lines, ""]


def _api(doc: dict[str, Any]) -> list[str]:
    s = doc["settings"]
    lines = [
        f"{s['runs']} runs of {s['duration_s']} s per variant; connections {s['connections']}; "
        f"{s['load_generator']}. Service: {s['service']['server']}, "
        f"{s['service']['other_settings']}, instant generators, inline jobs. {s['probes']}.",
        "",
    ]
    if doc.get("skipped"):
        return [*lines, f"skipped: {doc['skipped']}", ""]
    rows = []
    for variant, r in doc["results"].items():
        for ep, e in r["endpoints"].items():
            rows.append(
                [variant, ep, med(e["requests_per_s"]), med(e["p50_ms"], 2), med(e["p99_ms"], 2)]
            )
        cpu = r.get("service_cpu_ms_per_request")
        tail = f"; service CPU {med(cpu, 2)} ms/request" if cpu else ""
        finished = r.get("movies_finished_per_s")
        if finished and finished.get("median") is not None:
            tail += f"; movies finished {med(finished, 1)}/s during the load"
        rows.append(
            [variant, "**all**", med(r["requests_per_s"]), "", f"errors: {r['errors']}{tail}"]
        )
    lines += table(["variant", "endpoint", "requests/s", "p50 ms", "p99 ms"], rows)
    lines.append(
        "live = admission on, stage work running beside the API; isolated = admission "
        "paused, only the API runs. Targets are checked on live."
    )
    return [*lines, ""]


def _position(doc: dict[str, Any]) -> list[str]:
    s = doc["settings"]
    lines = [
        f"Depths {s['depths']}, {s['runs']} runs, {s['samples']} {s.get('samples_note', '')}. "
        f"{s['populate']}. {s['priorities']}. In-process: {s['in_process']}. HTTP: {s['http']}.",
        "",
    ]
    rows = []
    for depth, r in doc["results"].items():
        for where in ("first", "middle", "last"):
            ip, h = r["in_process"][where], r["http"][where]
            rows.append(
                [
                    f"{int(depth):,}",
                    where,
                    f"{fmt(ip['position_ms']['p50'], 2)} / {fmt(ip['position_ms']['p99'], 2)}",
                    f"{fmt(h['position_ms']['p50'], 2)} / {fmt(h['position_ms']['p99'], 2)}",
                    f"{fmt(h['status_ms']['p50'], 2)} / {fmt(h['status_ms']['p99'], 2)}",
                ]
            )
        rows[-1][1] += f" (fill {med(r['populate_s'])} s)"
    head = ["waiting", "probe", "position() ms p50/p99", "HTTP position p50/p99", "HTTP status"]
    lines += table(head, rows)
    growth_rows = []
    for name, g in doc["growth"].items():
        ratio = next((v for k, v in g.items() if k.startswith("ratio_")), None)
        growth_rows.append([name, fmt(ratio, 1), fmt(g["loglog_slope"], 2)])
    lines.append("How p50 grows from the smallest to the largest depth (slope 1 = linear):")
    lines.append("")
    lines += table(["figure", "ratio", "log-log slope"], growth_rows)
    return [*lines, *_firestore_reads(doc["firestore_reads_per_position_query"])]


def _firestore_reads(fs: dict[str, Any] | str) -> list[str]:
    if isinstance(fs, str):
        return [f"Firestore emulator reads per position query: {fs}", ""]
    rows = []
    for depth, probes in fs["depths"].items():
        for where in ("first", "middle", "last"):
            p = probes[where]
            # Results from before the counters had the three counts under "matched".
            n = p.get("position", p["matched"])
            entries = " / ".join(f"{v:,}" for v in p["matched"].values())
            rows.append(
                [
                    f"{int(depth):,}",
                    where,
                    f"{n['ahead']:,} / {n['total']:,} / {n['running']:,}",
                    entries,
                    str(p["metered_reads"]),
                    str(p["billed_reads"]),
                    fmt(p["emulator_ms"]["p50"], 0),
                ]
            )
        rows[-1][1] += f" (fill {probes['fill_docs_per_s']} docs/s)"
    head = [
        "waiting",
        "probe",
        "ahead / total / running",
        "entries matched per aggregation",
        "metered",
        "billed",
        "emulator ms p50",
    ]
    lines = ["Firestore emulator, reads per position query. " + fs["counted"], ""]
    lines += table(head, rows)
    g = fs.get("growth")
    if g:
        reads = ", ".join(f"{int(d):,}: {n}" for d, n in g["last_probe_billed_reads"].items())
        lines += [
            f"Billed reads grow as {g['rule']} (last probe {reads}; log-log slope "
            f"{fmt(g['loglog_slope'], 2)}).",
            "",
        ]
    if "stopped" in fs:
        lines += [f"Deeper queues not measured: {fs['stopped']}.", ""]
    return lines


def _render(doc: dict[str, Any]) -> list[str]:
    s, r = doc["settings"], doc["results"]
    lines = [
        f"{s['scenes']} scenes x {s['scene_seconds']:g} s at {s['fps']} fps, {s['runs']} runs; "
        f"{s['encoder']}. Measured: {s['measured']}. Ceiling: {s['ceiling_input']}.",
        "",
    ]
    rows = [
        ["ours: video s per wall s", med(r["ours_video_s_per_wall_s"], 2)],
        ["ours: images stage wall s", med(r["images_wall_s"], 2)],
        ["ours: video stage wall s", med(r["video_wall_s"], 2)],
        ["ffmpeg ceiling: video s per wall s", med(r["ffmpeg_ceiling_video_s_per_wall_s"], 2)],
        ["ceiling / ours", med(r["ceiling_over_ours"], 2)],
    ]
    return lines + table(["figure", "median [min, max]"], rows)


RENDER = {
    "hot_docs": hot_docs_section,
    "pipeline": _pipeline,
    "api": _api,
    "position": _position,
    "render": _render,
    "cost": cost_section,
    "eta": eta_section,
    "stack_load": stack_load_section,
}


def _summary(docs: dict[str, dict[str, Any]]) -> list[str]:
    rows = []
    for name in ORDER:
        for t, verdict in docs.get(name, {}).get("targets", {}).items():
            rows.append([name, t, f"**{verdict}**" if verdict == "miss" else verdict])
    return table(["benchmark", "target", "result"], rows)


def _commits(docs: dict[str, dict[str, Any]]) -> str:
    """The commit(s) measured, and whether the code was exactly that commit's."""
    seen: dict[str, bool] = {}
    for d in docs.values():
        g = d.get("git", {})
        commit = str(g.get("commit"))
        seen[commit] = seen.get(commit, True) and bool(g.get("code_is_this_commit"))
    listed = ", ".join(c[:7] + ("" if exact else " (+ changes)") for c, exact in seen.items())
    if all(seen.values()):
        listed += " (the measured code is exactly the commit's)"
    return listed + "; each benchmark's is under its table"


def write(out_dir: Path) -> Path:
    limits = notes()
    docs = {}
    for path in sorted((out_dir / "results").glob("*.json")):
        doc = json.loads(path.read_text())
        if doc.get("benchmark") in RENDER:
            docs[doc["benchmark"]] = doc
    first: dict[str, Any] = next(iter(docs.values()), {})
    m = first.get("machine", {})
    dates = sorted({d["date"] for d in docs.values()})
    lines = [
        "# Benchmark results",
        "",
        "Written by `make bench` (`bench/setup.sh && .venv/bin/python bench/run.py`); one "
        "benchmark: `bench/run.py --only NAME`. Raw runs and settings: `bench/results/*.json`; "
        "what limits each figure: `bench/NOTES.md`.",
        "",
        f"- Date: {', '.join(dates) or '-'}",
        f"- Machine: {m.get('nproc')} cores (`nproc`), {m.get('cpu_model')}, "
        f"{m.get('memory_gib')} GiB memory; Linux {m.get('kernel')}",
        f"- Software: Python {m.get('python')}, SQLite {m.get('sqlite')}, node {m.get('node')}, "
        f"{m.get('redis')}, {m.get('wrk')}",
        f"- Commits: {_commits(docs)}",
        "- Figures are medians of the runs, with [min, max] across runs.",
        "",
        limits["conditions"],
        "",
    ]
    if any(d.get("quick") for d in docs.values()):
        lines += ["**Quick (smoke) sizes: these figures are not the benchmark's.**", ""]
    lines += ["## Targets", "", *_summary(docs)]
    for name in ORDER:
        lines += [f"## {TITLES[name]}", ""]
        doc = docs.get(name)
        if doc is None:
            lines += [f"{NOT_MEASURED}: no results/{name}.json", ""]
        elif "error" in doc:
            lines += [f"**Failed:** {doc['error']}", ""]
        else:
            lines += RENDER[name](doc)
            code = doc.get("code") or {}
            if doc.get("code_changed_during_run"):
                lines += ["**The service code changed while this benchmark ran.**", ""]
            elif code.get("is_commit") is False:
                lines += [
                    f"Code measured: deepflix {code.get('digest')} at commit "
                    f"{code.get('commit')} with uncommitted changes.",
                    "",
                ]
            load = doc.get("loadavg_before")
            if load:
                commit = str(doc.get("git", {}).get("commit"))[:7]
                lines += [
                    f"Measured {doc['date']} at {commit} in {doc.get('elapsed_s')} s; load "
                    f"average before the benchmark (1/5/15 min): "
                    f"{' / '.join(str(x) for x in load)}.",
                    "",
                ]
        if name in limits:
            lines += ["### What limits this figure", "", limits[name], ""]
    path = out_dir / "RESULTS.md"
    path.write_text("\n".join(lines).rstrip() + "\n")
    return path
