"""On Firestore: each answer reads each thing once, and the stage means are reused briefly."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from deepflix.adapters.gcp.firestore_store import FirestoreMovieStore
from deepflix.adapters.gcp.stage_means import TTL_S
from deepflix.metering import METER
from deepflix.pipeline.events import Claimed, StageSucceeded
from deepflix.pipeline.models import Stage
from deepflix.pipeline.transitions import apply
from tests.api_client import in_process
from tests.factories import CONFIG, T0, movie
from tests.read_counts import Answers, CountingStore

pytestmark = pytest.mark.emulator
ONCE = {
    "position:story": 1,
    "ahead:images": 1,
    "ahead:video": 1,
    "running_counts": 1,
    "mean_durations": 1,
    "admission_paused": 1,
}


@pytest.fixture
def answers(empty_firestore: Any, tmp_path: Path) -> Iterator[Answers]:
    firestore = CountingStore(FirestoreMovieStore(client=empty_firestore))
    with in_process(tmp_path, store=lambda _: firestore) as api:
        yield Answers(api, firestore)


def test_create_status_and_position_answers_read_each_thing_once(answers: Answers) -> None:
    created, reads = answers("POST", "/api/movies", {"prompt": "a", "scene_count": 2})
    assert created["position"] == 1 and created["longest_wait"] is None
    assert reads == ONCE
    status, reads = answers("GET", f"/api/movies/{created['movie_id']}/status")
    assert status["position"]["ahead"] == 0 and status["position"]["total_waiting"] == 1
    assert reads == ONCE | {"get": 1}
    place, reads = answers("GET", f"/api/queue/{created['movie_id']}/position")
    assert place["position"] == 1
    assert reads == ONCE | {"get": 1}


def test_stage_means_are_read_again_only_after_their_ttl(empty_firestore: Any) -> None:
    store = FirestoreMovieStore(client=empty_firestore)
    clock = [0.0]
    store.stage_means.monotonic = lambda: clock[0]

    def run_story(seconds: float) -> None:
        m = movie()
        store.create(m, idempotency_key=None, fingerprint="f")
        store.claim(Stage.story, 4, T0, lambda x: apply(x, Claimed(Stage.story, T0), CONFIG))
        end = T0 + timedelta(seconds=seconds)
        store.mutate(m.id, lambda x: apply(x, StageSucceeded(Stage.story, 1, (), end), CONFIG))

    run_story(3.0)
    assert store.mean_durations() == {Stage.story: pytest.approx(3.0)}
    run_story(5.0)
    reads = METER.snapshot().get("firestore.reads", 0)
    clock[0] = TTL_S - 0.1
    assert store.mean_durations() == {Stage.story: pytest.approx(3.0)}  # reused
    assert METER.snapshot().get("firestore.reads", 0) == reads  # nothing read
    clock[0] = TTL_S
    assert store.mean_durations() == {Stage.story: pytest.approx(4.0)}
    assert METER.snapshot().get("firestore.reads", 0) == reads + len(Stage)
