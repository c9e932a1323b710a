"""Smoke run of the stack load benchmark: a few movies through the emulator stack and embedded."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from bench import cost_bench, stack_load
from bench.common import NOT_MEASURED, ROOT

pytestmark = pytest.mark.bench
SIDES = ("stack", "stack_inline_jobs", "embedded")


@pytest.fixture(scope="module")
def out(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`bench/run.py --quick --only stack_load` into a temporary folder (three stacks'
    worth of starting, so a longer timeout than the other smoke runs)."""
    out = tmp_path_factory.mktemp("stack_load")
    args = [sys.executable, str(ROOT / "bench" / "run.py"), "--quick", "--only", "stack_load"]
    proc = subprocess.run(
        [*args, "--out", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return out


@pytest.fixture(scope="module")
def doc(out: Path) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads((out / "results" / "stack_load.json").read_text())
    assert doc["benchmark"] == "stack_load" and doc["quick"] is True and "error" not in doc
    if isinstance(doc["results"], str):
        assert doc["results"].startswith(NOT_MEASURED)
        pytest.skip(f"the emulator stack cannot run here: {doc['results']}")
    return doc


def test_every_movie_succeeds_on_each_side(doc: dict[str, Any]) -> None:
    n = stack_load.QUICK_MOVIES
    assert doc["settings"]["movies"] == n and set(doc["results"]) == set(SIDES)
    for side in SIDES:
        r = doc["results"][side]
        assert (r["movies"], r["succeeded"], r["failed"], r["unfinished"]) == (n, n, 0, 0)
        assert r["movies_per_s"] > 0
        # Two hops a movie (story -> images -> video), each one measured.
        assert r["hop_ms"]["count"] == 2 * n
        assert [h["count"] for h in r["hop_ms_by_stage"].values()] == [n, n]
        for name in ("movies_per_s", "hop_ms.p50", "hop_ms.p99"):
            want = r["movies_per_s"] if name == "movies_per_s" else r["hop_ms"][name[7:]]
            assert doc["figures"][f"{side}.{name}"] == want


def test_jobs_run_as_processes_on_the_stack_and_inline_beside_it(doc: dict[str, Any]) -> None:
    stacked, inline = doc["results"]["stack"], doc["results"]["stack_inline_jobs"]
    # An images and a video job a movie, more only for a retried attempt.
    assert stacked["job_processes"] >= 2 * stack_load.QUICK_MOVIES
    assert inline["job_processes"] == 0
    for r in (stacked, inline):
        assert r["create_ms"]["count"] == stack_load.QUICK_MOVIES
        assert r["cpu_ms_per_movie"]["total"] > 0
    assert stacked["cpu_s"]["jobs"] > 0 and inline["cpu_s"]["jobs"] == 0


def test_the_runs_operation_counts_are_kept_by_caller(doc: dict[str, Any]) -> None:
    ops = doc["operations"]
    n = stack_load.QUICK_MOVIES
    assert ops["movies"] == n
    # Every create reached the api function once (a refused one again after its wait).
    assert ops["raw"]["invocations.api"] == n + doc["results"]["stack"]["create_429s"]
    assert ops["per_movie"]["firestore_reads"] > 0 and ops["per_movie"]["firestore_writes"] > 0
    assert ops["per_movie"]["cloud_run_jobs"] >= 2
    callers = ops["by_caller_per_movie"]
    assert any(k.startswith("firestore.writes@pipeline.") for k in callers)
    assert all("@" in k for k in callers)


def test_cost_prices_the_load_runs_counts(out: Path, doc: dict[str, Any]) -> None:
    res = cost_bench.run(out_dir=out)["results"]
    assert res["source"] == cost_bench.SOURCES["stack_load.json"]
    assert res["movies_in_emulator_run"] == stack_load.QUICK_MOVIES
    reads = doc["operations"]["per_movie"]["firestore_reads"]
    assert res["per_movie_counts"]["firestore_reads"] == pytest.approx(reads)
    report = (out / "RESULTS.md").read_text()
    assert "8. The emulator stack under load" in report and "| stack_inline_jobs |" in report
