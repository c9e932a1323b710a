"""The wait between tries of something that must happen in the end, while the store is down."""

from __future__ import annotations

import pytest

from deepflix.pipeline.policy import outage_backoff_s
from deepflix.runtime.status_channel import problems

pytestmark = pytest.mark.unit


def test_the_wait_doubles_from_a_tenth_of_a_second_to_at_most_five() -> None:
    waits = [outage_backoff_s(n) for n in range(1, 10)]
    assert waits[:4] == [0.1, 0.2, 0.4, 0.8]
    assert waits[-1] == 5.0 and waits == sorted(waits)
    assert outage_backoff_s(10_000) == 5.0  # a long outage: no overflow, the cap


def report(**changes: object) -> dict[str, object]:
    healthy = {
        "store": {"writable": True, "error": None},
        "delivery": {"threads": 4, "threads_alive": 4, "sweeper_alive": True},
    }
    for key, value in changes.items():
        part, _, name = key.partition("__")
        healthy[part] = {**healthy[part], name: value}  # type: ignore[dict-item]
    return healthy


def test_a_healthy_runtime_has_no_problems() -> None:
    assert problems(report()) == []


def test_each_thing_that_stops_work_is_a_problem() -> None:
    found = problems(
        report(
            store__writable=False,
            store__error="database is locked",
            delivery__threads_alive=1,
            delivery__sweeper_alive=False,
        )
    )
    assert found == [
        "the database takes no writes: database is locked",
        "3 delivery threads died",
        "the sweeper thread died",
    ]
    assert problems({"error": "KeyError: 'x'"}) == ["the runtime could not report: KeyError: 'x'"]
