"""EventBus on Pub/Sub (one topic per pipeline topic), and the parser for pushed messages."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Mapping
from typing import Any

from google.cloud.pubsub_v1 import PublisherClient

from deepflix.adapters.gcp.clients import Lazy, translate_outages
from deepflix.metering import METER
from deepflix.pipeline.errors import BadRequest

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
        body = json.dumps(dict(data), separators=(",", ":")).encode()
        future = self._publisher.get().publish(
            self.topic_path(topic), body, timeout=self.timeout_s, **attrs
        )
        # The publisher batches in the background; the margin lets its own deadline fire
        # first, with the clearer error.
        future.result(timeout=self.timeout_s + 1.0)
        METER.add("pubsub.publishes")


def parse_push(envelope: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
    """(data, attributes) of a Pub/Sub push request body or a `messagePublished` CloudEvent.

    Accepts the push envelope `{"message": {...}, "subscription": ...}`, which is also the
    `data` of a CloudEvent from Pub/Sub, and a whole structured CloudEvent holding one.
    The data must be a base64-encoded JSON object; anything else is a `BadRequest`,
    a permanent error (redelivering it cannot help).
    """
    message = _message(envelope)
    raw = message.get("data")
    data: dict[str, Any] = {}
    if raw:
        if not isinstance(raw, str):
            raise BadRequest("pubsub message data is not base64 text")
        try:
            decoded = json.loads(base64.b64decode(raw, validate=True))
        except (binascii.Error, ValueError) as e:
            raise BadRequest(f"pubsub message data is not base64 JSON: {e}") from e
        if not isinstance(decoded, dict):
            raise BadRequest("pubsub message data is not a JSON object")
        data = decoded
    attributes = message.get("attributes") or {}
    if not isinstance(attributes, Mapping):
        raise BadRequest("pubsub message attributes are not an object")
    return data, {str(k): str(v) for k, v in attributes.items()}


def delivery_attempt(envelope: Mapping[str, Any]) -> int | None:
    """How often Pub/Sub has delivered this message (only set with a dead-letter policy)."""
    for where in (envelope, envelope.get("data")):
        if isinstance(where, Mapping):
            value = where.get("deliveryAttempt", where.get("delivery_attempt"))
            if isinstance(value, int) or (isinstance(value, str) and value.isdigit()):
                return int(value)
    return None


def message_id(envelope: Mapping[str, Any]) -> str | None:
    message = _message(envelope)
    value = message.get("messageId", message.get("message_id"))
    return str(value) if value is not None else None


def _message(envelope: Mapping[str, Any]) -> Mapping[str, Any]:
    if not isinstance(envelope, Mapping):
        raise BadRequest("pubsub push body is not a JSON object")
    message = envelope.get("message")
    inner = envelope.get("data")
    if message is None and isinstance(inner, Mapping):
        message = inner.get("message")  # a whole CloudEvent
    if not isinstance(message, Mapping):
        raise BadRequest("not a pubsub push: no message object")
    return message
