"""Model errors through the stage runner into the movie, against the fake Gemini API: a 429's
retry hint sets when the stage is tried again; a 500 is retried on the schedule; a safety block
or an invalid argument fails the movie with the model's reason."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from deepflix.pipeline.models import Movie, MovieStatus, Stage, StageStatus
from deepflix.runtime.compose import build_embedded
from deepflix.settings import get_settings
from tests.factories import request
from tests.genai_fake import (
    FakeGenai,
    fake_genai,
    invalid_argument,
    prompt_blocked,
    rate_limited,
    server_error,
)

pytestmark = pytest.mark.integration


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[FakeGenai]:
    with fake_genai() as server:
        for k, v in {
            "DEEPFLIX_DATA_DIR": str(tmp_path / "data"),
            "DEEPFLIX_GENERATORS": "gemini",
            "DEEPFLIX_GENAI_API_KEY": "fake-key",
            "DEEPFLIX_GENAI_BASE_URL": server.url,
            "DEEPFLIX_GENAI_CALL_TIMEOUT_S": "10",
            "DEEPFLIX_MAX_ATTEMPTS": "3",
            "DEEPFLIX_RETRY_MAX_DELAY_S": "5",
        }.items():
            monkeypatch.setenv(k, v)
        get_settings.cache_clear()
        yield server


def story_attempt() -> Movie:
    """A movie's first story attempt, run to its outcome."""
    runtime = build_embedded(get_settings())
    movie = runtime.pipeline.create(request(scene_count=2), owner="u", idempotency_key=None)
    runtime.pipeline.dispatch(Stage.story)
    runtime.runner.execute(movie.id, Stage.story, 1)
    return runtime.pipeline.get(movie.id)


def test_a_429_with_a_retry_hint_waits_as_long_as_the_server_asked(fake: FakeGenai) -> None:
    # Longer than the call's budget: not waited out in the call, handed to the policy.
    fake.queue("generateContent", rate_limited(retry_s=120))
    movie = story_attempt()
    st = movie.stages[Stage.story]
    assert movie.status is MovieStatus.story and st.status is StageStatus.waiting
    assert st.last_error is not None and st.last_error.code == "model_rate_limited"
    assert "wait 120s" in st.last_error.message
    # 120 s, though the schedule's cap is 5 s.
    assert st.ready_at == st.last_error.at + timedelta(seconds=120)


def test_a_500_is_retried_on_the_policys_schedule(fake: FakeGenai) -> None:
    fake.queue("generateContent", server_error())
    st = story_attempt().stages[Stage.story]
    assert st.status is StageStatus.waiting and st.last_error is not None
    assert st.last_error.code == "model_unavailable" and st.last_error.retryable
    assert st.ready_at is not None
    assert st.ready_at - st.last_error.at <= timedelta(seconds=5)


@pytest.mark.parametrize(
    ("reply", "code", "reason"),
    [
        (prompt_blocked(), "model_blocked", "blocked the prompt: SAFETY"),
        (
            invalid_argument("Request contains an invalid argument: seed."),
            "model_rejected",
            "400 INVALID_ARGUMENT: Request contains an invalid argument: seed.",
        ),
    ],
)
def test_a_block_or_an_invalid_argument_fails_the_movie_with_the_models_reason(
    fake: FakeGenai, reply: object, code: str, reason: str
) -> None:
    fake.queue("generateContent", reply)  # type: ignore[arg-type]
    movie = story_attempt()
    assert movie.status is MovieStatus.failed
    assert movie.error is not None and movie.error.code == code and not movie.error.retryable
    assert reason in movie.error.message and "gemini-2.5-flash" in movie.error.message
    assert len(fake.calls("generateContent")) == 1  # not tried again
