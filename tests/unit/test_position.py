"""Dispatch order and ETA."""

from __future__ import annotations

import pytest

from deepflix.pipeline.models import Priority, Stage
from deepflix.pipeline.policy import PipelineConfig, StagePolicy
from deepflix.pipeline.position import estimate_eta
from tests.factories import movie

pytestmark = pytest.mark.unit

CFG = PipelineConfig(
    stages={
        Stage.story: StagePolicy(concurrency=2, timeout_s=10, expected_s=1),
        Stage.images: StagePolicy(concurrency=1, timeout_s=10, expected_s=10),
        Stage.video: StagePolicy(concurrency=1, timeout_s=10, expected_s=100),
    }
)


def test_sort_key_is_priority_then_arrival_then_id() -> None:
    a = movie(seconds=0, priority="low")
    b = movie(seconds=1, priority="high")
    c = movie(seconds=2, priority="normal")
    d = movie(seconds=3, priority="high")
    e = movie(seconds=0.000001, priority="low")  # sub-second arrival must still order
    ordered = sorted([a, b, c, d, e], key=lambda m: m.sort_key)
    assert [m.id for m in ordered] == [b.id, d.id, c.id, a.id, e.id]
    assert [p.rank for p in (Priority.high, Priority.normal, Priority.low)] == [0, 1, 2]


def test_eta_with_a_free_slot_is_the_remaining_stages() -> None:
    assert estimate_eta(Stage.story, ahead=0, running=1, config=CFG, observed={}) == 111
    assert estimate_eta(Stage.video, ahead=0, running=0, config=CFG, observed={}) == 100


def test_eta_counts_rounds_at_the_concurrency_limit() -> None:
    # 2 slots, 2 running, 3 ahead: 4 runs must finish first -> two rounds of 1 s.
    assert estimate_eta(Stage.story, ahead=3, running=2, config=CFG, observed={}) == 2 + 111
    # 1 slot, 1 running, 4 ahead: 5 rounds of 10 s.
    assert estimate_eta(Stage.images, ahead=4, running=1, config=CFG, observed={}) == 50 + 110


def test_eta_prefers_observed_durations() -> None:
    observed = {Stage.images: 2.0, Stage.video: 3.0}
    assert estimate_eta(Stage.images, ahead=1, running=1, config=CFG, observed=observed) == 4 + 5
