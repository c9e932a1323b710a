"""PubSubEventBus on the Pub/Sub emulator: topic names, attributes, and failures."""

from __future__ import annotations

import base64
import time
import uuid
from typing import Any

import grpc
import pytest
from google.api_core import exceptions as gexc

from deepflix.adapters.gcp.pubsub import PubSubEventBus, topic_id
from deepflix.handlers.stage_requests import parse_push
from deepflix.pipeline.errors import Unavailable
from devtools import emulators as servers
from devtools.emulators import PROJECT

pytestmark = pytest.mark.emulator


def test_topic_ids_name_the_prefix_and_the_pipeline_topic() -> None:
    assert topic_id("deepflix", "images.requested") == "deepflix-images-requested"
    bus = PubSubEventBus(project="p", topic_prefix="df")
    assert bus.topic_path("story.requested") == "projects/p/topics/df-story-requested"


def test_routing_attributes_come_from_the_data_unless_given(
    pubsub_publisher: Any, pubsub_subscriber: Any
) -> None:
    bus = PubSubEventBus(
        project=PROJECT, topic_prefix=f"t{uuid.uuid4().hex[:8]}", publisher=pubsub_publisher
    )
    topic = bus.topic_path("video.requested")
    sub = topic.replace("/topics/", "/subscriptions/")
    pubsub_publisher.create_topic(name=topic)
    pubsub_subscriber.create_subscription(name=sub, topic=topic)
    bus.publish("video.requested", {"movie_id": "m9", "stage": "video", "attempt": 3}, {})
    bus.publish("video.requested", {"movie_id": "m9", "stage": "video"}, {"trace": "abc"})
    received: list[Any] = []
    deadline = time.monotonic() + 10
    while len(received) < 2 and time.monotonic() < deadline:
        response = pubsub_subscriber.pull(subscription=sub, max_messages=10, timeout=5)
        received += response.received_messages
    envelopes = [
        {
            "message": {
                "data": base64.b64encode(m.message.data).decode(),
                "attributes": dict(m.message.attributes),
            }
        }
        for m in received
    ]
    parsed = sorted((parse_push(e) for e in envelopes), key=lambda p: "trace" in p[1])
    assert parsed == [
        (
            {"movie_id": "m9", "stage": "video", "attempt": 3},
            {"movie_id": "m9", "stage": "video", "attempt": "3"},
        ),
        (
            {"movie_id": "m9", "stage": "video"},
            {"movie_id": "m9", "stage": "video", "trace": "abc"},
        ),
    ]
    assert all(b" " not in m.message.data for m in received)  # compact JSON


def test_a_missing_topic_is_a_configuration_error(pubsub_publisher: Any) -> None:
    bus = PubSubEventBus(project=PROJECT, topic_prefix="absent", publisher=pubsub_publisher)
    with pytest.raises(gexc.NotFound):
        bus.publish("story.requested", {"movie_id": "m"}, {})


def test_an_unreachable_pubsub_is_unavailable() -> None:
    from google.cloud.pubsub_v1 import PublisherClient
    from google.pubsub_v1.services.publisher.transports import PublisherGrpcTransport

    channel = grpc.insecure_channel(f"127.0.0.1:{servers.free_port()}")
    bus = PubSubEventBus(
        project=PROJECT,
        publisher=lambda: PublisherClient(transport=PublisherGrpcTransport(channel=channel)),
        timeout_s=1.0,
    )
    started = time.monotonic()
    with pytest.raises(Unavailable):
        bus.publish("story.requested", {"movie_id": "m"}, {})
    assert time.monotonic() - started < 10
