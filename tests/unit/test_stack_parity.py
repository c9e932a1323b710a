"""The emulator stack's Pub/Sub subscriptions take the delivery settings infra/ declares."""

from __future__ import annotations

import re

import pytest

from deepflix.pipeline.models import STAGES
from devtools import stack
from tests.unit.test_infra import _default, _function_timeout, _module, _resources

pytestmark = pytest.mark.unit


def _seconds(duration: str) -> int:
    match = re.fullmatch(r"(\d+)s", duration)
    assert match, duration
    return int(match.group(1))


def test_push_subscriptions_retry_and_dead_letter_as_terraform_declares() -> None:
    push = _resources("google_pubsub_subscription")["push"]
    (retry,) = push["retry_policy"]
    assert (_seconds(retry["minimum_backoff"]), _seconds(retry["maximum_backoff"])) == (
        stack.RETRY_BACKOFF_S
    )
    (dead,) = push["dead_letter_policy"]
    assert dead["max_delivery_attempts"] == stack.MAX_DELIVERY_ATTEMPTS
    assert dead["dead_letter_topic"] == "${google_pubsub_topic.dead_letter.id}"
    topic = _resources("google_pubsub_topic")["dead_letter"]
    assert topic["name"] == "${var.topic_prefix}-dead-letter"
    assert f"{_default('topic_prefix')}-dead-letter" == stack.DEAD_LETTER
    assert _default("topic_prefix") == stack.TOPIC_PREFIX


def test_ack_deadlines_follow_the_function_timeouts_as_terraform_derives_them() -> None:
    timeouts = _default("stage_timeout_s")
    ack = _module()["locals"]["ack_deadline_s"]
    assert f"min({stack.MAX_ACK_DEADLINE_S}" in ack
    for stage in STAGES:
        declared = min(stack.MAX_ACK_DEADLINE_S, _function_timeout(f"{stage}_requested", timeouts))
        assert stack.ack_deadline_s(timeouts[stage]) == declared, stage
