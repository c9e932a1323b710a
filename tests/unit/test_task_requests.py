"""Cloud Tasks requests: each kind runs its pipeline call; malformed ones are acknowledged."""

from __future__ import annotations

from typing import Any

import pytest

from deepflix.handlers.task_requests import handle_task
from deepflix.pipeline.errors import Unavailable
from deepflix.pipeline.models import Stage
from deepflix.pipeline.service import Pipeline

pytestmark = pytest.mark.unit


class Recorder:
    def __init__(self, fail: Exception | None = None) -> None:
        self.calls: list[tuple[Any, ...]] = []
        self.fail = fail

    def _record(self, *call: Any) -> None:
        if self.fail is not None:
            raise self.fail
        self.calls.append(call)

    def dispatch(self, stage: Stage) -> int:
        self._record("dispatch", stage)
        return 0

    def check_deadline(self, movie_id: str, stage: Stage, attempt: int) -> None:
        self._record("deadline", movie_id, stage, attempt)

    def time_out_overdue(self) -> None:
        self._record("deadlines")

    def sweep(self) -> None:
        self._record("sweep")

    def prune(self) -> int:
        self._record("prune")
        return 0

    def oldest_waiting_s(self) -> dict[Stage, float]:
        self._record("gauge")
        return {}


def run(path: str, body: Any, rec: Recorder) -> tuple[int, dict[str, Any], dict[str, str]]:
    pipeline: Pipeline = rec  # type: ignore[assignment]
    answer = handle_task(path, body, pipeline=pipeline, prune=rec.prune)
    return answer.status, answer.body, answer.headers


def test_each_kind_runs_its_call() -> None:
    rec = Recorder()
    assert run("/dispatch", {"stage": "images"}, rec)[:2] == (200, {"ok": True})
    assert run("/tasks/deadlines", {}, rec)[0] == 200  # a window's: the overdue, not a sweep
    # One attempt's, as enqueued before deadline windows (ADR 0030): still answered.
    assert run("/deadline/", {"movie_id": "m", "stage": "video", "attempt": "3"}, rec)[0] == 200
    assert run("/tasks/sweep", {}, rec)[0] == 200
    assert rec.calls == [
        ("dispatch", Stage.images),
        ("deadlines",),
        ("deadline", "m", Stage.video, 3),
        ("sweep",),
        ("prune",),
        ("gauge",),
    ]


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/dispatch", {}),
        ("/dispatch", {"stage": "sound"}),
        ("/dispatch", ["images"]),
        ("/deadline", {"movie_id": "m", "stage": "video", "attempt": "third"}),
        ("/reboot", {}),
    ],
)
def test_a_malformed_task_is_acknowledged_and_dropped(path: str, body: Any) -> None:
    rec = Recorder()
    assert run(path, body, rec)[:2] == (200, {"dropped": True})
    assert rec.calls == []


def test_an_outage_answers_503_with_retry_after() -> None:
    rec = Recorder(fail=Unavailable("firestore is unreachable", retry_after_s=9))
    status, body, headers = run("/dispatch", {"stage": "story"}, rec)
    assert status == 503 and headers == {"Retry-After": "9"} and "firestore" in body["error"]
