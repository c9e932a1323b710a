"""Adapters under contract: each port's suite runs against every implementation available."""

from __future__ import annotations

import time
import uuid
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Generic, TypeVar

import pytest

from deepflix.adapters.local.messaging import (
    LocalEventBus,
    LocalTaskQueue,
    task_queue_name,
    topic_queue_name,
)
from deepflix.adapters.local.queue import SqliteQueue
from deepflix.adapters.local.store import SqliteMovieStore
from deepflix.pipeline.models import STAGES
from deepflix.pipeline.ports import EventBus, MovieStore, TaskQueue
from deepflix.pipeline.sender import stage_topic
from devtools.emulators import PROJECT
from tests.gcp_fakes import http_sink

TASK_KINDS = ("dispatch", "deadline")
TOPICS = tuple(stage_topic(s) for s in STAGES)
LOCATION = "us-central1"
P = TypeVar("P")
# The tier of a suite run through these fixtures is the adapter's: the parameter carries it.
EMBEDDED, EMULATED = pytest.mark.contract, pytest.mark.emulator


@pytest.fixture(
    params=[pytest.param("sqlite", marks=EMBEDDED), pytest.param("firestore", marks=EMULATED)]
)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> MovieStore:
    if request.param == "sqlite":
        return SqliteMovieStore(tmp_path / "movies.db")
    if request.param == "firestore":
        from deepflix.adapters.gcp.firestore_store import FirestoreMovieStore

        # Fewer probes than the contract's limits have slot shards: a claim must find
        # freed room by the shards' free counts, not by reading every shard.
        client = request.getfixturevalue("empty_firestore")
        return FirestoreMovieStore(client=client, max_probes=1)
    raise AssertionError(request.param)


@dataclass(frozen=True)
class Delivery:
    channel: str  # the task kind, or the topic
    data: dict[str, Any]
    attributes: dict[str, str]


@dataclass
class Harness(Generic[P]):
    """A port under test, and a way to see what it delivered to the other side."""

    port: P
    poll: Callable[[], list[Delivery]]
    dedups_names: bool = True
    seen: list[Delivery] = field(default_factory=list)

    def deliveries(self, count: int, timeout_s: float = 5.0) -> list[Delivery]:
        """All deliveries so far, once there are `count` or `timeout_s` has passed."""
        deadline = time.monotonic() + timeout_s
        while True:
            self.seen += self.poll()
            if len(self.seen) >= count or time.monotonic() >= deadline:
                return list(self.seen)
            time.sleep(0.05)


def _local_poll(queue: SqliteQueue, names: dict[str, str]) -> Callable[[], list[Delivery]]:
    def poll() -> list[Delivery]:
        out = []
        for message in queue.lease(set(names), 100):
            queue.ack(message)
            body = message.body
            if message.queue.startswith("topic:"):
                out.append(Delivery(names[message.queue], body["data"], body["attributes"]))
            else:
                out.append(Delivery(names[message.queue], body, {}))
        return out

    return poll


@pytest.fixture(
    params=[pytest.param("local", marks=EMBEDDED), pytest.param("cloud_tasks", marks=EMULATED)]
)
def tasks(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Harness[TaskQueue]]:
    if request.param == "local":
        queue = SqliteQueue(tmp_path / "queue.db")
        names = {task_queue_name(k): k for k in TASK_KINDS}
        yield Harness(LocalTaskQueue(queue), _local_poll(queue, names))
        return
    from deepflix.adapters.gcp.tasks import CloudTasksQueue

    client = request.getfixturevalue("cloud_tasks_client")
    queue_id = f"q-{uuid.uuid4().hex[:12]}"
    parent = f"projects/{PROJECT}/locations/{LOCATION}"
    client.create_queue(parent=parent, queue={"name": f"{parent}/queues/{queue_id}"})
    with http_sink() as sink:
        port = CloudTasksQueue(
            project=PROJECT,
            location=LOCATION,
            queue=queue_id,
            target_base_url=f"{sink.url}/tasks",
            client=client,
            service_account_email=f"tasks@{PROJECT}.iam.gserviceaccount.com",
        )
        taken = [0]

        def poll() -> list[Delivery]:
            with sink.lock:
                new, taken[0] = sink.requests[taken[0] :], len(sink.requests)
            return [Delivery(r.path.rsplit("/", 1)[-1], r.json(), {}) for r in new]

        # The emulator keeps every task, named or not: it has no ALREADY_EXISTS.
        yield Harness(port, poll, dedups_names=False)
        client.delete_queue(name=f"{parent}/queues/{queue_id}")


@pytest.fixture(
    params=[pytest.param("local", marks=EMBEDDED), pytest.param("pubsub", marks=EMULATED)]
)
def events(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Harness[EventBus]]:
    if request.param == "local":
        queue = SqliteQueue(tmp_path / "queue.db")
        names = {topic_queue_name(t): t for t in TOPICS}
        yield Harness(LocalEventBus(queue), _local_poll(queue, names))
        return
    from deepflix.adapters.gcp.pubsub import PubSubEventBus
    from deepflix.handlers.stage_requests import parse_push

    publisher = request.getfixturevalue("pubsub_publisher")
    subscriber = request.getfixturevalue("pubsub_subscriber")
    bus = PubSubEventBus(
        project=PROJECT, topic_prefix=f"t{uuid.uuid4().hex[:10]}", publisher=publisher
    )
    subscriptions = {}
    for topic in TOPICS:
        path = bus.topic_path(topic)
        publisher.create_topic(name=path)
        sub = path.replace("/topics/", "/subscriptions/") + "-pull"
        subscriber.create_subscription(name=sub, topic=path)
        subscriptions[sub] = topic

    def poll() -> list[Delivery]:
        out = []
        for sub, topic in subscriptions.items():
            with warnings.catch_warnings():
                # Deprecated for production (it starves consumers), but a test wants to look
                # and not wait: without it the emulator holds an empty pull open for seconds.
                warnings.simplefilter("ignore", DeprecationWarning)
                response = subscriber.pull(
                    request={"subscription": sub, "max_messages": 100, "return_immediately": True},
                    timeout=5,
                )
            if not response.received_messages:
                continue
            subscriber.acknowledge(
                subscription=sub, ack_ids=[m.ack_id for m in response.received_messages]
            )
            for m in response.received_messages:
                # Through the same parser a push subscription's body goes through.
                envelope = {"message": _push_form(m.message), "subscription": sub}
                data, attributes = parse_push(envelope)
                out.append(Delivery(topic, data, attributes))
        return out

    yield Harness(bus, poll)
    for sub in subscriptions:
        subscriber.delete_subscription(subscription=sub)
    for topic in TOPICS:
        publisher.delete_topic(topic=bus.topic_path(topic))


def _push_form(message: Any) -> dict[str, Any]:
    import base64

    return {
        "data": base64.b64encode(message.data).decode(),
        "attributes": dict(message.attributes),
        "messageId": message.message_id,
    }
