"""The ETA learns from recent runs: windows weighted by age, old ones left out, Firestore's maps."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from deepflix.adapters.gcp.eta_durations import RECENT, runs_of, stale_windows
from deepflix.pipeline.eta import (
    HALF_LIFE_WINDOWS,
    WINDOW_S,
    WINDOWS_KEPT,
    Durations,
    duration_bin,
    recent,
    window_of,
)
from deepflix.pipeline.models import Stage

pytestmark = pytest.mark.unit
NOW = 3_000_000  # a window number


def runs(*spec: tuple[Stage, int, int, float, int]) -> dict[tuple[Stage, int, int], dict[int, int]]:
    """(stage, scenes, window, seconds, runs) -> the stores' windowed runs."""
    out: dict[tuple[Stage, int, int], dict[int, int]] = {}
    for stage, scenes, window, seconds, n in spec:
        bins = out.setdefault((stage, scenes, window), {})
        bins[duration_bin(seconds)] = bins.get(duration_bin(seconds), 0) + n
    return out


def test_windows_are_fixed_spans_of_the_end_time() -> None:
    at = datetime(2026, 12, 7, 8, 0, tzinfo=UTC)
    assert window_of(at) == window_of(at + timedelta(seconds=WINDOW_S - 1))
    assert window_of(at + timedelta(seconds=WINDOW_S)) == window_of(at) + 1


def test_a_window_weighs_half_as_much_every_half_life() -> None:
    age = int(HALF_LIFE_WINDOWS)
    h = recent(runs((Stage.story, 4, NOW, 2.0, 8), (Stage.story, 4, NOW - age, 4.0, 8)))
    weights = h[(Stage.story, 4)]
    assert weights[duration_bin(2.0)] == pytest.approx(8)
    assert weights[duration_bin(4.0)] == pytest.approx(8 * 0.5 ** (age / HALF_LIFE_WINDOWS))


def test_recent_runs_outweigh_many_older_ones() -> None:
    # 60 runs of 10 s three half-lives ago against 20 runs of 1 s now: counted alike, the
    # old ones would set the median; weighted, they count as 7.5.
    old = NOW - 3 * int(HALF_LIFE_WINDOWS)
    stored = runs((Stage.video, 6, old, 10.0, 60), (Stage.video, 6, NOW, 1.0, 20))
    d = Durations(recent(stored))
    assert d.own(Stage.video, 6, 0.5) == pytest.approx(1.0, rel=0.06)
    assert d.typical(Stage.video) < 5.0  # counted alike: 7.75
    assert d.own(Stage.video, 6, 0.9) == pytest.approx(10.0, rel=0.06)  # still seen in the band


def test_windows_past_those_kept_are_left_out() -> None:
    stored = runs(
        (Stage.images, 2, NOW - WINDOWS_KEPT, 30.0, 1000),
        (Stage.images, 2, NOW - WINDOWS_KEPT + 1, 3.0, 1),
        (Stage.images, 2, NOW, 3.0, 1),
    )
    assert list(recent(stored)[(Stage.images, 2)]) == [duration_bin(3.0)]


def test_age_counts_from_each_stages_newest_run_not_from_now() -> None:
    # After a quiet spell a stage's last runs still count in full: the newest window of a
    # stage weighs 1 whatever the other stages did since.
    stored = runs((Stage.story, 3, NOW, 1.0, 2), (Stage.video, 3, NOW - 40, 5.0, 4))
    h = recent(stored)
    assert h[(Stage.video, 3)] == {duration_bin(5.0): pytest.approx(4.0)}
    assert Durations(h).known(Stage.video)


def test_firestore_shards_are_summed_per_window_and_old_maps_ignored() -> None:
    w = str(NOW)
    docs: list[dict[str, Any]] = [
        {"stage": "video", RECENT: {w: {"4": {"50": 2}}}, "bins": {"4": {"90": 7}}},
        {"stage": "video", RECENT: {w: {"4": {"50": 1, "51": 1}}, str(NOW - 1): {"2": {"40": 3}}}},
        {"stage": "nonsense", RECENT: {w: {"4": {"50": 9}}}},
    ]
    assert runs_of(docs) == {
        (Stage.video, 4, NOW): {50: 3, 51: 1},
        (Stage.video, 2, NOW - 1): {40: 3},
    }


def test_a_firestore_write_deletes_the_windows_just_past_those_read() -> None:
    gone = [int(x) for x in stale_windows(NOW)]
    assert max(gone) == NOW - WINDOWS_KEPT  # the first the readers leave out
    assert all(NOW - w >= WINDOWS_KEPT for w in gone)
    kept = runs((Stage.story, 1, NOW - WINDOWS_KEPT + 1, 1.0, 1))
    assert recent(kept)  # the oldest window read is not among those deleted
