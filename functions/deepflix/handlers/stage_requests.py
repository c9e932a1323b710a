"""Stage requests as Pub/Sub pushes them: the envelope parsed, the request checked, run."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Mapping
from typing import Any

from pydantic import ValidationError

from deepflix import logs, tracing
from deepflix.pipeline.errors import BadRequest
from deepflix.pipeline.messages import StageRequest
from deepflix.pipeline.models import Stage

log = logs.get("functions")


def handle_push(stage: Stage, envelope: Any, run: Callable[[dict[str, Any]], None]) -> None:
    """Run the `stage` request a push carries.

    A message that cannot be one is logged and acknowledged: it will not parse on
    redelivery either. What `run` raises (an outage) goes up, so that the answer is not a
    2xx and Pub/Sub delivers the message again.
    """
    try:
        data, attributes = parse_push(envelope)
        request = StageRequest.model_validate(data)
        if request.stage is not stage:
            raise BadRequest(f"a {request.stage.value} request reached the {stage.value} function")
    except (BadRequest, ValidationError) as e:
        log.error("dropping malformed %s message: %s", stage.value, e)
        return
    extra = {"movie_id": request.movie_id, "stage": stage.value, "attempt": request.attempt}
    # The publisher's trace (the movie's): this work, its log lines and its job join it.
    with tracing.start(f"{stage.value}.requested", attributes.get(tracing.HEADER)):
        log.info("stage request received", extra=extra)
        run(data)


def parse_push(envelope: Any) -> tuple[dict[str, Any], dict[str, str]]:
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


def _message(envelope: Any) -> Mapping[str, Any]:
    if not isinstance(envelope, Mapping):
        raise BadRequest("pubsub push body is not a JSON object")
    message = envelope.get("message")
    inner = envelope.get("data")
    if message is None and isinstance(inner, Mapping):
        message = inner.get("message")  # a whole CloudEvent
    if not isinstance(message, Mapping):
        raise BadRequest("not a pubsub push: no message object")
    return message
