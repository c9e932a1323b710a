"""Retry policy, stage policy and pipeline config values."""

from __future__ import annotations

import pytest

from deepflix.pipeline.models import Stage
from deepflix.pipeline.policy import MAX_HINT_S, PipelineConfig, RetryPolicy, StagePolicy
from tests.factories import CONFIG

pytestmark = pytest.mark.unit


def test_delays_grow_exponentially_without_jitter_and_stop_when_spent() -> None:
    p = RetryPolicy(max_attempts=4, base_delay_s=1, multiplier=2, max_delay_s=100, jitter=0)
    assert [p.next_delay(n) for n in (1, 2, 3)] == [1, 2, 4]
    assert p.next_delay(4) is None


def test_delay_is_capped() -> None:
    p = RetryPolicy(max_attempts=20, base_delay_s=1, max_delay_s=5, jitter=0)
    assert p.next_delay(10) == 5


def test_jitter_stays_in_range_is_reproducible_and_spreads_keys() -> None:
    p = RetryPolicy(max_attempts=5, base_delay_s=10, jitter=0.5)
    delays = [p.next_delay(1, key=f"movie-{i}") for i in range(200)]
    assert all(d is not None and 5 <= d <= 10 for d in delays)
    assert p.next_delay(1, key="movie-1") == delays[1]
    assert len(set(delays)) > 150


@pytest.mark.parametrize("kwargs", [{"max_attempts": 0}, {"jitter": 1.5}, {"jitter": -0.1}])
def test_invalid_retry_policies_are_refused(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        RetryPolicy(**kwargs)  # type: ignore[arg-type]


def test_invalid_stage_policies_are_refused() -> None:
    with pytest.raises(ValueError):
        StagePolicy(concurrency=0, timeout_s=1)
    with pytest.raises(ValueError):
        StagePolicy(concurrency=1, timeout_s=0)


def test_config_needs_every_stage() -> None:
    with pytest.raises(ValueError, match="video"):
        PipelineConfig(stages={s: CONFIG[s] for s in (Stage.story, Stage.images)})
    assert CONFIG[Stage.images].runs_as_job and not CONFIG[Stage.story].runs_as_job


def test_a_server_retry_hint_sets_the_least_delay_even_past_the_cap() -> None:
    p = RetryPolicy(max_attempts=3, base_delay_s=1, max_delay_s=5, jitter=0)
    assert p.next_delay(1, hint_s=42) == 42  # the server's wait, though above max_delay_s
    assert p.next_delay(2, hint_s=0.5) == 2  # a shorter hint leaves the schedule
    assert p.next_delay(1, hint_s=None) == 1
    assert p.next_delay(1, hint_s=10 * MAX_HINT_S) == MAX_HINT_S  # bounded
    assert p.next_delay(3, hint_s=42) is None  # a hint buys no extra attempt
