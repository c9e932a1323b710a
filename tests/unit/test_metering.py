"""Operation counters: thread-safe adds, per-process flush files, totals across processes."""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path

import pytest

from deepflix.metering import Meter, totals

pytestmark = pytest.mark.unit


def test_counts_from_many_threads_add_up() -> None:
    meter = Meter()
    threads = [
        threading.Thread(target=lambda: [meter.add("x") for _ in range(1000)]) for _ in range(8)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    meter.add("y", 5)
    assert meter.snapshot() == {"x": 8000, "y": 5}


def test_flush_writes_this_process_and_totals_sum_all(tmp_path: Path) -> None:
    meter = Meter()
    meter.add("firestore.reads", 3)
    meter.flush(tmp_path)
    meter.add("firestore.reads", 1)
    meter.flush(tmp_path)  # replaces, never double counts
    (tmp_path / "999999.json").write_text(
        json.dumps({"firestore.reads": 10, "pubsub.publishes": 2})
    )
    assert json.loads((tmp_path / f"{os.getpid()}.json").read_text()) == {"firestore.reads": 4}
    assert totals(tmp_path) == {"firestore.reads": 14, "pubsub.publishes": 2}
    Meter().flush(None)  # no folder configured: nothing to do


def test_concurrent_flushes_of_one_process_never_fail(tmp_path: Path) -> None:
    """Every request of a function flushes; two at once once raced on one temp file."""
    meter = Meter()
    errors: list[BaseException] = []

    def flush_many() -> None:
        for _ in range(200):
            meter.add("invocations.api")
            try:
                meter.flush(tmp_path)
            except OSError as e:
                errors.append(e)

    threads = [threading.Thread(target=flush_many) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert totals(tmp_path) == {"invocations.api": 1600}
    assert not list(tmp_path.glob("*.tmp"))


def test_counts_by_caller_name_the_pipeline_code_that_asked() -> None:
    from deepflix.pipeline import eta as pipeline_module  # any module outside the adapters

    meter = Meter(by_caller=True)
    # Called as if from pipeline code: the innermost deepflix frame outside the adapters.
    exec(  # nosec B102 # a fixed snippet: a frame whose module is a pipeline module
        "def ask(m):\n    m.add('firestore.reads', 2)\nask(meter)",
        {"__name__": pipeline_module.__name__, "meter": meter},
    )
    meter.add("firestore.reads")  # from this test module: no deepflix caller, no label
    assert meter.snapshot() == {
        "firestore.reads": 3,
        "firestore.reads@pipeline.eta.ask": 2,
    }
