"""The ETA from the whole path ahead: histograms, quantiles, queues of later stages, unknowns."""

from __future__ import annotations

import pytest

from deepflix.pipeline.eta import (
    Durations,
    Histogram,
    PathAhead,
    bin_seconds,
    duration_bin,
    estimate,
)
from deepflix.pipeline.models import STAGES, Stage

pytestmark = pytest.mark.unit
CONCURRENCY = {Stage.story: 4, Stage.images: 2, Stage.video: 1}


def history(runs: dict[tuple[Stage, int], list[float]]) -> dict[tuple[Stage, int], dict[int, int]]:
    out: dict[tuple[Stage, int], dict[int, int]] = {}
    for key, seconds in runs.items():
        for s in seconds:
            b = duration_bin(s)
            out.setdefault(key, {})[b] = out.setdefault(key, {}).get(b, 0) + 1
    return out


def per_scene(scenes: list[int], story: float, images: float, video: float) -> Durations:
    """Runs that take `images` / `video` seconds per scene, `story` whatever the scenes."""
    runs: dict[tuple[Stage, int], list[float]] = {}
    for n in scenes:
        runs[(Stage.story, n)] = [story] * 5
        runs[(Stage.images, n)] = [images * n] * 5
        runs[(Stage.video, n)] = [video * n] * 5
    return Durations(history(runs))


def path(stage: Stage = Stage.story, **kw: object) -> PathAhead:
    args: dict[str, object] = {
        "stage": stage,
        "running": False,
        "elapsed_s": 0.0,
        "ahead": 0,
        "scenes": 4,
        "waiting": dict.fromkeys(STAGES, 0),
        "busy": dict.fromkeys(STAGES, 0),
        "concurrency": CONCURRENCY,
    }
    return PathAhead(**(args | kw))  # type: ignore[arg-type]


def test_bins_are_within_ten_percent() -> None:
    for seconds in (0.002, 0.5, 3.0, 47.0, 600.0):
        assert bin_seconds(duration_bin(seconds)) == pytest.approx(seconds, rel=0.06)


def test_quantiles_ignore_an_outlier_a_mean_would_follow() -> None:
    h = history({(Stage.video, 4): [2.0] * 9 + [200.0]})[(Stage.video, 4)]
    assert Histogram(h).quantile(0.5) == pytest.approx(2.0, rel=0.06)
    assert Histogram(h).trimmed_mean() == pytest.approx(2.0, rel=0.06)


def test_an_empty_path_is_the_sum_of_the_movies_own_runs() -> None:
    eta = estimate(path(), per_scene([4], 0.5, 1.0, 2.0), admission_paused=False)
    assert eta.unknown is None
    assert eta.start_s == 0.0
    assert eta.finish_s == pytest.approx(0.5 + 4 + 8, rel=0.06)
    assert eta.finish_low is not None and eta.finish_high is not None and eta.finish_s
    assert eta.finish_low <= eta.finish_s <= eta.finish_high


def test_durations_follow_the_scene_count_and_fill_gaps_between_counts() -> None:
    d = per_scene([2, 8], 0.5, 1.0, 2.0)
    assert d.own(Stage.video, 8, 0.5) == pytest.approx(16, rel=0.06)
    assert d.own(Stage.video, 5, 0.5) == pytest.approx(10, rel=0.06)  # interpolated
    assert d.own(Stage.video, 12, 0.5) == pytest.approx(24, rel=0.06)  # scaled from 8


def test_the_queue_of_a_later_stage_counts() -> None:
    d = per_scene([4], 0.5, 1.0, 2.0)
    idle = estimate(path(), d, admission_paused=False)
    busy_video = {**dict.fromkeys(STAGES, 0), Stage.video: 5}
    behind = estimate(path(waiting=busy_video), d, admission_paused=False)
    assert idle.finish_s is not None and behind.finish_s is not None
    # Five 8 s renders ahead at one slot: about 40 s, less what passes during story and images.
    assert behind.finish_s - idle.finish_s == pytest.approx(40 - 4.5, rel=0.1)
    assert behind.start_s == idle.start_s == 0.0


def test_movies_ahead_in_its_own_queue_go_through_every_later_stage_first() -> None:
    d = per_scene([4], 0.5, 1.0, 2.0)
    busy = {**dict.fromkeys(STAGES, 0), Stage.story: 4}
    eta = estimate(path(ahead=6, busy=busy), d, admission_paused=False)
    assert eta.start_s is not None and eta.finish_s is not None
    assert eta.start_s == pytest.approx(0.5 * (0.5 + 6 / 4), rel=0.1)
    # Ten movies ahead reach the one video slot first: the render queue dominates.
    assert eta.finish_s >= 10 * 8 * 0.5


def test_a_running_movie_counts_what_its_run_has_left() -> None:
    d = per_scene([4], 0.5, 1.0, 2.0)
    eta = estimate(
        path(Stage.video, running=True, elapsed_s=3.0, busy={**dict.fromkeys(STAGES, 0)}),
        d,
        admission_paused=False,
    )
    assert eta.start_s is None  # no stage left to start
    assert eta.finish_s == pytest.approx(8 - 3, rel=0.1)


def test_paused_admission_and_missing_history_are_unknown_with_a_reason() -> None:
    d = per_scene([4], 0.5, 1.0, 2.0)
    assert estimate(path(), d, admission_paused=True).unknown == "admission_paused"
    assert estimate(path(), d, admission_paused=True).finish_s is None
    # Paused admission holds only movies not yet admitted.
    assert estimate(path(Stage.images), d, admission_paused=True).unknown is None
    no_video = Durations(history({(Stage.story, 4): [0.5], (Stage.images, 4): [4.0]}))
    eta = estimate(path(), no_video, admission_paused=False)
    assert (eta.unknown, eta.finish_s) == ("no_history:video", None)
