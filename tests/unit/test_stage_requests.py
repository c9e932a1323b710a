"""Stage requests pushed by Pub/Sub: envelopes parsed, malformed ones dropped, outages raised."""

from __future__ import annotations

import base64
import json
import logging
from typing import Any

import pytest

from deepflix.handlers.stage_requests import handle_push, parse_push
from deepflix.pipeline.errors import BadRequest, Unavailable
from deepflix.pipeline.models import Stage

pytestmark = pytest.mark.unit
DATA = {"movie_id": "0a1b", "stage": "images", "attempt": 2}
# What a Pub/Sub push subscription POSTs (field names as documented, both spellings).
PUSH: dict[str, Any] = {
    "message": {
        "attributes": {"movie_id": "0a1b", "stage": "images", "attempt": "2"},
        "data": base64.b64encode(json.dumps(DATA).encode()).decode(),
        "messageId": "2070443601311540",
        "message_id": "2070443601311540",
        "publishTime": "2026-11-29T12:00:00.749Z",
        "publish_time": "2026-11-29T12:00:00.749Z",
    },
    "subscription": "projects/demo-deepflix/subscriptions/deepflix-images-requested-push",
    "deliveryAttempt": 3,
}
# A structured CloudEvent from Pub/Sub (what functions-framework hands a CloudEvent function).
CLOUD_EVENT: dict[str, Any] = {
    "specversion": "1.0",
    "type": "google.cloud.pubsub.topic.v1.messagePublished",
    "source": "//pubsub.googleapis.com/projects/demo-deepflix/topics/deepflix-images-requested",
    "id": "2070443601311540",
    "time": "2026-11-29T12:00:00.749Z",
    "datacontenttype": "application/json",
    "data": {"message": PUSH["message"], "subscription": PUSH["subscription"]},
}


def push_of(data: Any) -> dict[str, Any]:
    return {"message": {"data": base64.b64encode(json.dumps(data).encode()).decode()}}


def test_a_push_envelope_gives_data_and_attributes() -> None:
    assert parse_push(PUSH) == (DATA, {"movie_id": "0a1b", "stage": "images", "attempt": "2"})


def test_a_cloud_event_or_its_data_gives_the_same() -> None:
    assert parse_push(CLOUD_EVENT) == parse_push(PUSH)
    assert parse_push(CLOUD_EVENT["data"]) == parse_push(PUSH)


@pytest.mark.parametrize(
    "envelope",
    [
        {},
        [],
        {"message": "text"},
        {"message": {"data": "not base64!"}},
        {"message": {"data": base64.b64encode(b"[1, 2]").decode()}},
        {"message": {"data": base64.b64encode(b"{oops").decode()}},
        {"message": {"data": 12}},
        {"message": {"attributes": ["a"]}},
    ],
)
def test_a_malformed_push_is_a_bad_request(envelope: Any) -> None:
    with pytest.raises(BadRequest):
        parse_push(envelope)


def test_a_message_without_data_has_empty_data() -> None:
    assert parse_push({"message": {"attributes": {"k": "v"}}}) == ({}, {"k": "v"})


def test_a_stage_request_is_run_with_its_data() -> None:
    ran: list[dict[str, Any]] = []
    handle_push(Stage.images, CLOUD_EVENT["data"], ran.append)
    assert ran == [DATA]


@pytest.mark.parametrize(
    "envelope",
    [
        {"message": "text"},
        push_of({"movie_id": "0a1b", "stage": "images"}),  # no attempt
        push_of({"movie_id": "0a1b", "stage": "sound", "attempt": 1}),
        push_of({**DATA, "stage": "story"}),  # another stage's request
    ],
)
def test_what_cannot_be_a_request_is_dropped_and_logged(
    envelope: Any, caplog: pytest.LogCaptureFixture
) -> None:
    ran: list[dict[str, Any]] = []
    with caplog.at_level(logging.ERROR):
        handle_push(Stage.images, envelope, ran.append)
    assert ran == []
    assert any("dropping malformed images message" in r.getMessage() for r in caplog.records)


def test_an_outage_is_raised_so_the_message_comes_again() -> None:
    def down(data: dict[str, Any]) -> None:
        raise Unavailable("firestore is unreachable")

    with pytest.raises(Unavailable):
        handle_push(Stage.images, PUSH, down)
