"""EventBus on Pub/Sub: one topic per pipeline topic."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

from google.cloud.pubsub_v1 import PublisherClient

from deepflix import tracing
from deepflix.adapters.gcp.clients import Lazy, translate_outages
from deepflix.metering import METER

# Copied from the data into the attributes when the caller did not set them, so push
# subscriptions, filters and logs can route on them without decoding the body.
ROUTING_KEYS = ("movie_id", "stage", "attempt")


def topic_id(prefix: str, topic: str) -> str:
    """The Pub/Sub topic id of a pipeline topic: "images.requested" -> "<prefix>-images-requested".

    Dashes keep ids readable in the console and valid in Terraform resource names.
    """
    return f"{prefix}-{topic.replace('.', '-')}"


class PubSubEventBus:
    """`EventBus` on Pub/Sub: JSON data, string attributes, one publisher per instance.

    `publish` waits until Pub/Sub has the message (or `timeout_s` passes): a caller that
    returns has handed the work on; one that gets `Unavailable` must retry.
    """

    def __init__(
        self,
        *,
        project: str,
        topic_prefix: str = "deepflix",
        publisher: Any | Callable[[], Any] = PublisherClient,
        timeout_s: float = 10.0,
    ) -> None:
        self.project = project
        self.topic_prefix = topic_prefix
        self.timeout_s = timeout_s
        self._publisher: Lazy[Any] = Lazy(publisher)

    def topic_path(self, topic: str) -> str:
        return f"projects/{self.project}/topics/{topic_id(self.topic_prefix, topic)}"

    @translate_outages("pubsub")
    def publish(self, topic: str, data: Mapping[str, Any], attributes: Mapping[str, str]) -> None:
        attrs = {k: str(data[k]) for k in ROUTING_KEYS if data.get(k) is not None}
        attrs.update({k: str(v) for k, v in attributes.items()})
        parent = tracing.traceparent()  # the subscriber's work joins the sender's trace
        if parent is not None:
            attrs.setdefault(tracing.HEADER, parent)
        body = json.dumps(dict(data), separators=(",", ":")).encode()
        future = self._publisher.get().publish(
            self.topic_path(topic), body, timeout=self.timeout_s, **attrs
        )
        # The publisher batches in the background; the margin lets its own deadline fire
        # first, with the clearer error.
        future.result(timeout=self.timeout_s + 1.0)
        METER.add("pubsub.publishes")
