"""Runs the benchmarks and writes bench/results/<name>.json and bench/RESULTS.md."""

from __future__ import annotations

import argparse
import os
import sys
import time
import traceback
from pathlib import Path
from types import ModuleType
from typing import Any

if __package__ in (None, ""):  # run as a script: python bench/run.py
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import (
    api_bench,
    cost_bench,
    eta_bench,
    hot_docs_bench,
    pipeline_bench,
    position_bench,
    render_bench,
    report,
    stack_load,
)
from bench.common import BENCH, code_digest, code_info, write_result

BENCHMARKS: dict[str, ModuleType] = {
    m.NAME: m
    for m in (
        pipeline_bench,
        api_bench,
        position_bench,
        render_bench,
        # Before cost: the cost benchmark prices the operation counts of this run's load.
        stack_load,
        cost_bench,
        hot_docs_bench,
        eta_bench,
    )
}


def run_one(
    name: str, quick: bool, out: Path, code: dict[str, Any], movies: int | None = None
) -> dict[str, Any]:
    """`code` is what the invocation started with: the commit then, and the code's digest;
    `movies` sizes the benchmarks that take a size (hot_docs, stack_load)."""
    module = BENCHMARKS[name]
    started = time.monotonic()
    load = os.getloadavg()  # other work on the machine skews every figure: record it
    try:
        if name == cost_bench.NAME:
            result: dict[str, Any] = cost_bench.run(quick, out_dir=out)
        elif name == hot_docs_bench.NAME and movies is not None:
            result = hot_docs_bench.run(quick, movies=movies)
        elif name == stack_load.NAME:
            result = stack_load.run(quick, movies=movies)
        else:
            result = module.run(quick)
    except Exception as e:  # one broken benchmark must not lose the others' figures
        result = {"error": f"{type(e).__name__}: {e}", "traceback": traceback.format_exc()}
    result = {
        "quick": quick,
        "elapsed_s": round(time.monotonic() - started, 1),
        "loadavg_before": [round(x, 2) for x in load],
        "code": code,
    } | result
    if code_digest()[1] != code["digest"]:
        result["code_changed_during_run"] = True
    git = {"commit": code["commit"], "code_is_this_commit": code["is_commit"]}
    write_result(out, name, result, git)
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small sizes, one run (smoke)")
    parser.add_argument(
        "--only", action="append", choices=sorted(BENCHMARKS), help="run only this (repeatable)"
    )
    parser.add_argument(
        "--out", type=Path, default=BENCH, help="folder for results/ and RESULTS.md"
    )
    parser.add_argument(
        "--report-only", action="store_true", help="only re-render RESULTS.md from results/"
    )
    parser.add_argument(
        "--movies",
        type=int,
        help="movies for hot_docs and stack_load (a smaller run on a loaded machine)",
    )
    args = parser.parse_args(argv)
    if args.report_only:
        sys.stdout.write(f"wrote {report.write(args.out)}\n")
        return 0
    names = args.only or list(BENCHMARKS)
    failed = []
    code = code_info()
    for name in names:
        sys.stdout.write(f"== {name} ...\n")
        sys.stdout.flush()
        result = run_one(name, args.quick, args.out, code, args.movies)
        if "error" in result:
            failed.append(name)
            sys.stdout.write(f"   FAILED: {result['error']}\n")
            continue
        marks = ", ".join(f"{k}: {v}" for k, v in result.get("targets", {}).items())
        sys.stdout.write(f"   done in {result['elapsed_s']} s. {marks}\n")
    path = report.write(args.out)
    sys.stdout.write(f"wrote {path}\n")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
