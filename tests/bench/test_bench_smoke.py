"""Smoke runs of every benchmark at --quick sizes, so the suite keeps working (no timings)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from bench import cost_bench
from bench.common import ROOT, bullmq_ready, have
from bench.pipeline_bench import SCENES
from bench.report_cloud import cost_section

pytestmark = pytest.mark.bench
# A movie's artifacts: the story, a still per scene, the video, its poster and captions.
FILES_PER_MOVIE = 1 + SCENES + 3


def run_quick(name: str, out: Path) -> dict[str, Any]:
    """`bench/run.py --quick --only NAME` into a temporary folder, never into bench/."""
    proc = subprocess.run(
        [
            sys.executable,
            str(ROOT / "bench" / "run.py"),
            "--quick",
            "--only",
            name,
            "--out",
            str(out),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    doc: dict[str, Any] = json.loads((out / "results" / f"{name}.json").read_text())
    assert {"benchmark", "date", "git", "machine", "settings", "targets"} <= doc.keys()
    assert doc["quick"] is True and "error" not in doc
    assert doc["machine"]["nproc"] >= 1
    report = (out / "RESULTS.md").read_text()
    assert "# Benchmark results" in report and "Quick (smoke) sizes" in report
    return doc


def assert_spread(s: dict[str, Any]) -> None:
    assert {"median", "min", "max", "iqr", "runs"} <= s.keys()
    assert s["runs"] and s["median"] is not None


@pytest.fixture(scope="module")
def pipeline_doc(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return run_quick("pipeline", tmp_path_factory.mktemp("pipeline"))


def test_pipeline_ours_completes_every_movie(pipeline_doc: dict[str, Any]) -> None:
    for mode in ("burst", "paced"):
        ours = pipeline_doc["results"][mode]["ours"]
        assert ours["completed_all"] is True
        for key in ("movies_per_s", "hop_p50_ms", "hop_p99_ms"):
            assert_spread(ours[key])
        run = pipeline_doc["raw_runs"][mode]["ours"][0]
        assert run["completed"] == run["n"] and run["failed"] == 0
        assert run["durability"]["journal_mode"] == "wal"
        assert run["artifact_files"] == run["n"] * FILES_PER_MOVIE
    # Beside it in the burst: the same service with its stage work on the runtime's
    # threads, and with stage work that writes nothing (the queue alone).
    for side, files in (("ours_threads", FILES_PER_MOVIE), ("ours_queue_only", 0)):
        run = pipeline_doc["raw_runs"]["burst"][side][0]
        assert run["completed"] == run["n"] and run["failed"] == 0
        assert run["artifact_files"] == run["n"] * files


def test_pipeline_bullmq_peer(pipeline_doc: dict[str, Any]) -> None:
    reason = bullmq_ready()
    if reason is not None:
        assert pipeline_doc["skipped"]["bullmq"] == reason
        pytest.skip(f"BullMQ peer not set up: {reason}")
    peer = pipeline_doc["raw_runs"]["burst"]["bullmq"][0]
    assert peer["completed"] == peer["n"] and peer["failed"] == 0
    assert peer["durability"] == {"appendonly": "yes", "appendfsync": "everysec"}
    assert_spread(pipeline_doc["ratio_ours_over_bullmq"])
    assert_spread(pipeline_doc["ratio_queue_only"])


@pytest.mark.skipif(not have("wrk"), reason="wrk is not installed (bench/setup.sh installs it)")
def test_api_under_load(tmp_path: Path) -> None:
    doc = run_quick("api", tmp_path)
    for variant in ("live", "isolated"):
        res = doc["results"][variant]
        assert res["errors"] == 0
        assert set(res["endpoints"]) == {"create", "status", "position"}
        for endpoint in res["endpoints"].values():
            assert_spread(endpoint["p99_ms"])
    assert set(doc["targets"]) >= {"errors == 0", "requests_per_s >= 1000"}


def test_position_at_depth(tmp_path: Path) -> None:
    doc = run_quick("position", tmp_path)
    depths = doc["settings"]["depths"]
    assert list(doc["results"]) == [str(d) for d in depths]
    for depth in depths:
        deepest = doc["raw_runs"][str(depth)][0]["in_process"]["last"]
        assert deepest["position"] == depth and deepest["total_waiting"] == depth
    fs = doc["firestore_reads_per_position_query"]
    if isinstance(fs, str):  # no emulator on this machine
        assert fs.startswith("not measured yet")
    else:
        for depth in depths:
            probes = fs["depths"][str(depth)]
            for where, ahead in (("first", 0), ("middle", depth // 2), ("last", depth - 1)):
                assert probes[where]["position"] == {"ahead": ahead, "total": depth, "running": 0}
        deepest = fs["depths"][str(depths[-1])]["last"]
        # Both depths are past the uncounted first 500 (ADR 0026): eight aggregations (the
        # counters, count()s of the running and the uncounted), none matching over 1,000
        # entries: eight reads metered and billed at either depth.
        assert deepest["metered_reads"] == deepest["billed_reads"] == 8
        assert all(n <= 1000 for n in deepest["matched"].values())
        assert fs["growth"]["loglog_slope"] == 0
    assert all(g["loglog_slope"] is not None for g in doc["growth"].values())


def test_render(tmp_path: Path) -> None:
    doc = run_quick("render", tmp_path)
    mine = doc["raw_runs"]["ours"][0]
    assert mine["video_s"] > 0 and mine["frames"] > 0 and mine["bytes"] > 0
    assert_spread(doc["results"]["ceiling_over_ours"])


def test_cost_without_ops_file_says_not_measured(tmp_path: Path) -> None:
    doc = run_quick("cost", tmp_path)
    assert doc["results"].startswith("not measured yet")
    assert doc["prices"]["pubsub"]["min_billable_bytes_per_message"] == 1000


def test_cost_converts_operation_counts(tmp_path: Path) -> None:
    (tmp_path / "results").mkdir()
    ops = {"movies": 10, "totals": {"firestore_reads": 1000, "pubsub_messages": 100}}
    (tmp_path / "results" / "emulator_ops.json").write_text(json.dumps(ops))
    res = cost_bench.run(out_dir=tmp_path)["results"]
    assert res["per_movie_counts"]["firestore_reads"] == 100
    assert res["per_movie_counts"]["pubsub_deliveries"] == 10
    usd = res["usd_per_1000_movies"]
    # 100 reads per movie at $0.03 per 100k, for 1,000 movies.
    assert usd["firestore_reads"] == pytest.approx(100 * 0.03 / 1e5 * 1000)
    assert usd["total"] == pytest.approx(sum(v for k, v in usd.items() if k != "total"))
    assert "tasks_operations" in res["missing_counts"]


def test_cost_prices_the_end_to_end_run_and_the_stack_load_beside_it(tmp_path: Path) -> None:
    results = tmp_path / "results"
    results.mkdir()
    caller = "firestore.reads@pipeline.service.create"
    ops: dict[str, Any] = {
        "movies": 500,
        "raw": {"firestore.reads": 30000, caller: 1000},
        "per_movie": {"firestore_reads": 60, "firestore_writes": 36},
        "by_caller_per_movie": {caller: 2.0},
    }
    load = {"benchmark": "stack_load", "operations": ops}
    (results / "stack_load.json").write_text(json.dumps(load))
    # Only the stack load: its counts are the figure.
    res = cost_bench.run(out_dir=tmp_path)["results"]
    assert res["source"] == cost_bench.SOURCES["stack_load.json"]
    assert res["movies_in_emulator_run"] == 500 and "under_load" not in res
    assert res["by_caller_per_movie"] == {caller: 2.0}
    # With the end-to-end test's (the measure): that is the figure, the load beside.
    e2e = {"movies": 3, "per_movie": {"firestore_reads": 90, "firestore_writes": 40}}
    (results / "emulator_ops.json").write_text(json.dumps(e2e))
    doc = cost_bench.run(out_dir=tmp_path)
    res = doc["results"]
    assert res["source"] == cost_bench.SOURCES["emulator_ops.json"]
    assert res["per_movie_counts"]["firestore_reads"] == 90
    assert res["under_load"]["movies_in_emulator_run"] == 500
    assert res["under_load"]["per_movie_counts"]["firestore_reads"] == 60
    assert res["under_load"]["usd_per_1000_movies"]["total"] > 0
    section = "\n".join(cost_section(doc))
    assert "Under load" in section and "500 movies priced" in section
    # A load run that failed has no counts: the end-to-end test's alone.
    (results / "stack_load.json").write_text(json.dumps({"error": "RuntimeError: boom"}))
    res = cost_bench.run(out_dir=tmp_path)["results"]
    assert res["movies_in_emulator_run"] == 3 and "under_load" not in res


def test_operation_counts_per_movie_leave_out_the_by_caller_copies() -> None:
    raw = {
        "invocations.api": 10,
        "invocations.api@entrypoints.cloud_functions.api": 10,
        "invocations.story_requested": 10,
        "invocations.story_requested@entrypoints.cloud_functions.inner": 10,
        "invocations.tasks": 20,
        "tasks.created": 20,
        "firestore.reads": 500,
        "firestore.reads@pipeline.service.create": 500,
    }
    per_movie = cost_bench.per_movie_from_raw(raw, 10)
    assert per_movie["function_invocations"] == 4
    assert per_movie["pubsub_deliveries"] == 1
    assert per_movie["tasks_operations"] == 4
    assert per_movie["firestore_reads"] == 50
    assert cost_bench.by_caller_per_movie(raw, 10) == {
        "firestore.reads@pipeline.service.create": 50,
        "invocations.api@entrypoints.cloud_functions.api": 1,
        "invocations.story_requested@entrypoints.cloud_functions.inner": 1,
    }


def test_tasks_still_to_fire_and_refused_creates_are_priced() -> None:
    # 30 tasks created, 10 delivered by the run's end (the deadline windows' tasks fire
    # minutes later), 5 creates refused as duplicates: 30 + 5 calls and 30 deliveries.
    raw = {"tasks.created": 30, "tasks.refused": 5, "invocations.tasks": 10, "invocations.api": 10}
    per_movie = cost_bench.per_movie_from_raw(raw, 10)
    assert per_movie["tasks_operations"] == 6.5
    assert per_movie["function_invocations"] == 4


def test_hot_documents_on_the_emulator(tmp_path: Path) -> None:
    doc = run_quick("hot_docs", tmp_path)
    res = doc["results"]
    if isinstance(res, str):  # no emulator on this machine
        assert res.startswith("not measured yet")
        return
    assert res["completed"] == res["movies"] and res["error_count"] == 0
    assert res["never_over_limit"] and res["running_samples"] > 0
    assert doc["per_stage_ceiling_movies_per_s"] == res["per_stage_ceiling_movies_per_s"] > 0
    assert doc["retries_per_commit"] is not None
    assert set(res["per_stage"]) == {"story", "images", "video"}
    # No stage document is written by every movie: the busiest takes a fraction of them.
    assert all(v["busiest_writes_per_movie"] < 1 for v in res["per_stage"].values())


def test_eta_accuracy(tmp_path: Path) -> None:
    doc = run_quick("eta", tmp_path)
    res = doc["results"]
    assert res["completed"] == doc["settings"]["n"] and res["failed"] == 0
    assert res["at_create"]["count"] > 0 and res["at_create"]["p90"] is not None
    assert set(res["at_stage_start"]) == {"story", "images", "video"}
    assert doc["eta_finish_error_p90"] == res["at_create"]["p90"]
    assert "7. ETA accuracy" in (tmp_path / "RESULTS.md").read_text()
