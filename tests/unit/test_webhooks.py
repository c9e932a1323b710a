"""Webhook notices: queued when a movie is done, retried with backoff up to a limit, signed as
Standard Webhooks signs."""

from __future__ import annotations

from datetime import timedelta

import pytest
from pydantic import ValidationError

from deepflix.pipeline.models import Movie, MovieCreate, MovieStatus, WebhookAttempt, WebhookState
from deepflix.pipeline.webhooks import (
    WebhookConfig,
    announce,
    due,
    recorded,
    secret_bytes,
    signature,
)
from tests.factories import T0, movie

pytestmark = pytest.mark.unit

CONFIG = WebhookConfig(max_attempts=3, base_delay_s=2.0, max_delay_s=3.0)


def hooked(status: MovieStatus = MovieStatus.video) -> Movie:
    return movie().model_copy(
        update={"status": status, "webhook": WebhookState(url="http://127.0.0.1:9/hook")}
    )


def done(status: MovieStatus = MovieStatus.succeeded) -> Movie:
    before = hooked()
    return announce(before, before.model_copy(update={"status": status}), T0)


def test_the_standard_webhooks_example_signature() -> None:
    secret = secret_bytes("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
    got = signature(secret, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, b'{"test": 2432232314}')
    assert got == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


@pytest.mark.parametrize("status", [MovieStatus.succeeded, MovieStatus.failed])
def test_a_finished_movie_queues_its_first_attempt(status: MovieStatus) -> None:
    after = done(status)
    (entry,) = after.outbox
    assert entry.kind == "webhook" and entry.attempt == 1 and entry.at == T0
    assert after.webhook is not None and after.webhook.message_id == f"msg_{after.id}_1"
    assert due(after, 1) and not due(after, 2)


def test_a_cancelled_or_unchanged_movie_or_one_without_a_webhook_queues_none() -> None:
    before = hooked()
    assert (
        announce(before, before.model_copy(update={"status": MovieStatus.cancelled}), T0).outbox
        == ()
    )
    assert announce(before, before, T0).outbox == ()
    plain = movie()
    assert (
        announce(plain, plain.model_copy(update={"status": MovieStatus.succeeded}), T0).outbox == ()
    )


def test_a_failed_attempt_queues_the_next_after_a_doubling_capped_backoff() -> None:
    m = done()
    for attempt, wait in ((1, 2.0), (2, 3.0)):
        at = T0 + timedelta(seconds=10 * attempt)
        d = recorded(m, attempt, WebhookAttempt(at=at, status_code=500), CONFIG)
        assert d.applied
        m = d.movie
        (entry,) = m.outbox
        assert entry.attempt == attempt + 1 and entry.at == at + timedelta(seconds=wait)
    assert m.webhook is not None and not m.webhook.delivered
    last = recorded(m, 3, WebhookAttempt(at=T0, error="ConnectionRefusedError"), CONFIG).movie
    assert last.outbox == () and last.webhook is not None and len(last.webhook.attempts) == 3
    assert not last.webhook.delivered and not due(last, 4)


def test_a_2xx_delivers_and_a_repeated_attempt_changes_nothing() -> None:
    m = done()
    ok = recorded(m, 1, WebhookAttempt(at=T0, status_code=204), CONFIG)
    assert ok.applied and ok.movie.outbox == ()
    assert ok.movie.webhook is not None and ok.movie.webhook.delivered
    again = recorded(ok.movie, 1, WebhookAttempt(at=T0, status_code=200), CONFIG)
    assert not again.applied and again.movie == ok.movie


def test_a_movie_retried_after_a_failure_sends_a_new_notice_with_its_own_attempts() -> None:
    first = recorded(done(MovieStatus.failed), 1, WebhookAttempt(at=T0, status_code=200), CONFIG)
    running = first.movie.model_copy(update={"status": MovieStatus.video})
    again = announce(running, running.model_copy(update={"status": MovieStatus.succeeded}), T0)
    assert again.webhook is not None and again.webhook.message_id == f"msg_{again.id}_2"
    m = again
    for attempt in (2, 3, 4):  # three attempts of this notice, whatever came before
        m = recorded(m, attempt, WebhookAttempt(at=T0, status_code=503), CONFIG).movie
    assert m.outbox == () and m.webhook is not None and len(m.webhook.attempts) == 4


@pytest.mark.parametrize(
    "url", ["ftp://example.com/x", "example.com/hook", "http://", "javascript:x"]
)
def test_a_webhook_must_be_an_http_url(url: str) -> None:
    with pytest.raises(ValidationError):
        MovieCreate(prompt="a", webhook=url)
    assert MovieCreate(prompt="a", webhook="https://example.com/hook").webhook
