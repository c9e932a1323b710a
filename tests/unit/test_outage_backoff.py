"""The wait between tries of something that must happen in the end, while the store is down."""

from __future__ import annotations

import pytest

from deepflix.pipeline.policy import outage_backoff_s

pytestmark = pytest.mark.unit


def test_the_wait_doubles_from_a_tenth_of_a_second_to_at_most_five() -> None:
    waits = [outage_backoff_s(n) for n in range(1, 10)]
    assert waits[:4] == [0.1, 0.2, 0.4, 0.8]
    assert waits[-1] == 5.0 and waits == sorted(waits)
    assert outage_backoff_s(10_000) == 5.0  # a long outage: no overflow, the cap
