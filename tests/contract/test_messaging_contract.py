"""TaskQueue and EventBus contract: delivery, named-task dedup, schedule times, topics."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest

from deepflix.pipeline.ports import EventBus, TaskQueue
from tests.contract.conftest import Delivery, Harness

# Tier marks: on the adapter parameters (conftest.py), `contract` or `emulator`.


def test_a_task_reaches_its_kind_with_its_payload(tasks: Harness[TaskQueue]) -> None:
    q = tasks.port
    assert q.enqueue("dispatch", {"stage": "story"}) is True
    assert q.enqueue("deadline", {"movie_id": "m1", "stage": "images", "attempt": 2}) is True
    got = tasks.deliveries(2)
    assert sorted(got, key=lambda d: d.channel) == [
        Delivery("deadline", {"movie_id": "m1", "stage": "images", "attempt": 2}, {}),
        Delivery("dispatch", {"stage": "story"}, {}),
    ]


def test_a_repeated_name_is_accepted_once(tasks: Harness[TaskQueue]) -> None:
    if not tasks.dedups_names:
        pytest.skip(
            "gcloud-tasks-emulator keeps every task and never answers ALREADY_EXISTS; "
            "CloudTasksQueue's handling of it is tested against a fake Cloud Tasks server"
        )
    q = tasks.port
    assert q.enqueue("dispatch", {"stage": "story"}, name="admit-m1") is True
    assert q.enqueue("dispatch", {"stage": "story"}, name="admit-m1") is False
    assert q.enqueue("dispatch", {"stage": "story"}, name="admit-m2") is True
    time.sleep(0.5)  # room for a wrongly kept duplicate to show up
    assert len(tasks.deliveries(3, timeout_s=1.0)) == 2


def test_a_scheduled_task_waits_for_its_time(tasks: Harness[TaskQueue]) -> None:
    q = tasks.port
    at = datetime.now(UTC) + timedelta(seconds=2)
    assert q.enqueue("deadline", {"movie_id": "m1", "stage": "story", "attempt": 1}, at=at)
    assert tasks.deliveries(1, timeout_s=1.0) == []
    got = tasks.deliveries(1, timeout_s=5.0)
    assert [d.channel for d in got] == ["deadline"]
    assert datetime.now(UTC) >= at


def test_an_event_reaches_its_topic_with_data_and_attributes(events: Harness[EventBus]) -> None:
    bus = events.port
    data = {"movie_id": "m1", "stage": "images", "attempt": 2}
    attributes = {"movie_id": "m1", "stage": "images", "attempt": "2", "trace": "t-123"}
    bus.publish("images.requested", data, attributes)
    assert events.deliveries(1) == [Delivery("images.requested", data, attributes)]


def test_topics_are_separate(events: Harness[EventBus]) -> None:
    bus = events.port
    for stage in ("story", "video", "story"):
        data = {"movie_id": f"m-{stage}", "stage": stage, "attempt": 1}
        attributes = {"movie_id": f"m-{stage}", "stage": stage, "attempt": "1"}
        bus.publish(f"{stage}.requested", data, attributes)
    got = events.deliveries(3)
    assert sorted((d.channel, d.data["stage"]) for d in got) == [
        ("story.requested", "story"),
        ("story.requested", "story"),
        ("video.requested", "video"),
    ]
