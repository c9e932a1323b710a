"""A movie's last stage failing for good sends a `webhook` task; the task handler (as Cloud
Tasks calls it) makes the attempt, records it, and sends the next one after a 5xx."""

from __future__ import annotations

import threading
from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path

import orjson
import pytest

from deepflix.adapters.local.store import SqliteMovieStore
from deepflix.handlers.task_requests import handle_task
from deepflix.pipeline.events import StageFailed
from deepflix.pipeline.models import Movie, MovieStatus, Stage
from deepflix.pipeline.service import Pipeline
from deepflix.pipeline.webhooks import WebhookConfig, WebhookSetup, signature
from tests.factories import CONFIG, request
from tests.integration.test_service import Clock
from tests.pipeline_fakes import Recorder

pytestmark = pytest.mark.integration


class Receiver:
    def __init__(self, answers: list[int]) -> None:
        self.answers = answers
        self.calls: list[tuple[str, bytes, dict[str, str]]] = []

    def __call__(self, url: str, body: bytes, headers: Mapping[str, str], timeout_s: float) -> int:
        self.calls.append((url, body, dict(headers)))
        return self.answers.pop(0)


def test_a_failure_for_good_is_posted_and_a_503_retried_by_task(tmp_path: Path) -> None:
    rec, hook = Recorder(), Receiver([503, 200])
    pipeline = Pipeline(
        store=SqliteMovieStore(tmp_path / "m.db"),
        tasks=rec,
        events=rec,
        jobs=rec,
        config=CONFIG,
        clock=Clock(),
        webhooks=WebhookSetup(
            post=hook,
            render=lambda m: orjson.dumps({"movie_id": m.id, "status": m.status.value}),
            config=WebhookConfig(secret=b"k", base_delay_s=2.0),
            default_url="https://hooks.example/default",
        ),
    )
    movie = pipeline.create(request(), owner="u", idempotency_key=None)
    pipeline.dispatch(Stage.story)
    failed = StageFailed(Stage.story, 1, "bad", "no story", retryable=False, at=pipeline.clock())
    pipeline.report(movie.id, failed)
    assert pipeline.get(movie.id).status is MovieStatus.failed

    def webhook_tasks() -> list[tuple[str, dict[str, object], str | None, object]]:
        return [t for t in rec.tasks if t[0] == "webhook"]

    ((_, payload, name, _),) = webhook_tasks()
    assert payload == {"movie_id": movie.id, "attempt": 1} and name is not None
    assert handle_task("/webhook", payload, pipeline=pipeline, prune=lambda: 0).status == 200

    (url, body, headers) = hook.calls[0]
    assert url == "https://hooks.example/default"
    assert orjson.loads(body) == {"movie_id": movie.id, "status": "failed"}
    stamp = int(headers["webhook-timestamp"])
    assert headers["webhook-signature"] == signature(b"k", headers["webhook-id"], stamp, body)
    after: Movie = pipeline.get(movie.id)
    assert after.webhook is not None and [a.status_code for a in after.webhook.attempts] == [503]
    (_, second, _, at) = webhook_tasks()[1]
    assert second == {"movie_id": movie.id, "attempt": 2}
    assert at == after.webhook.attempts[0].at + timedelta(seconds=2)

    handle_task("/webhook", payload, pipeline=pipeline, prune=lambda: 0)  # a repeat: nothing
    assert len(hook.calls) == 1
    handle_task("/webhook", second, pipeline=pipeline, prune=lambda: 0)
    done = pipeline.get(movie.id)
    assert done.webhook is not None and done.webhook.delivered and done.outbox == ()
    assert len(hook.calls) == 2 and hook.calls[1][2]["webhook-id"] == headers["webhook-id"]


def test_the_same_attempt_delivered_again_while_it_is_made_posts_once(tmp_path: Path) -> None:
    """At least once: a task handed over again while its POST is still out (a slow receiver,
    a busy machine) finds the attempt being made and posts nothing."""
    rec = Recorder()
    started, release = threading.Event(), threading.Event()
    calls: list[str] = []

    def slow(url: str, body: bytes, headers: Mapping[str, str], timeout_s: float) -> int:
        calls.append(url)
        started.set()
        assert release.wait(10)
        return 200

    pipeline = Pipeline(
        store=SqliteMovieStore(tmp_path / "m.db"),
        tasks=rec,
        events=rec,
        jobs=rec,
        config=CONFIG,
        clock=Clock(),
        webhooks=WebhookSetup(
            post=slow,
            render=lambda m: orjson.dumps({"movie_id": m.id}),
            config=WebhookConfig(),
            default_url="https://hooks.example/slow",
        ),
    )
    movie = pipeline.create(request(), owner="u", idempotency_key=None)
    pipeline.dispatch(Stage.story)
    failed = StageFailed(Stage.story, 1, "bad", "no story", retryable=False, at=pipeline.clock())
    pipeline.report(movie.id, failed)
    payload = {"movie_id": movie.id, "attempt": 1}
    first = threading.Thread(
        target=handle_task, args=("/webhook", payload), kwargs={"pipeline": pipeline, "prune": int}
    )
    first.start()
    assert started.wait(10)
    handle_task("/webhook", payload, pipeline=pipeline, prune=lambda: 0)  # while it is out
    release.set()
    first.join(10)
    assert calls == ["https://hooks.example/slow"]
    done = pipeline.get(movie.id)
    assert done.webhook is not None and done.webhook.delivered
