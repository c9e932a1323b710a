"""The hosted-model set: settings, client modes, the story schema and the error mapping."""

from __future__ import annotations

import logging

import pytest
from google.genai import errors

from deepflix.adapters.gcp.genai_models import GenaiConfig, classify, client, retry_hint_s
from deepflix.settings import Settings
from deepflix.stages.generators.hosted import DRAFT_SCHEMA, image_prompt
from deepflix.stages.generators.instant import InstantStoryGenerator

pytestmark = pytest.mark.unit


def config(**overrides: object) -> GenaiConfig:
    fields: dict[str, object] = {
        "api_key": "k",
        "vertex": False,
        "project": "proj",
        "location": "europe-west4",
        "text_model": "gemini-2.5-flash",
        "image_model": "gemini-2.5-flash-image",
        "call_timeout_s": 30.0,
    } | overrides
    return GenaiConfig(**fields)  # type: ignore[arg-type]


def api_error(code: int, status: str, message: str, details: list[object]) -> errors.APIError:
    body = {"error": {"code": code, "status": status, "message": message, "details": details}}
    cls = errors.ServerError if code >= 500 else errors.ClientError
    return cls(code, body)


def test_gemini_needs_a_key_or_vertex_and_a_call_deadline_inside_the_story_timeout(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("DEEPFLIX_GENERATORS", "gemini")
    with pytest.raises(ValueError, match="DEEPFLIX_GENAI_API_KEY"):
        Settings()
    monkeypatch.setenv("DEEPFLIX_GENAI_VERTEX", "true")
    assert Settings().generators == "gemini"
    monkeypatch.setenv("DEEPFLIX_GENAI_CALL_TIMEOUT_S", "60")
    with pytest.raises(ValueError, match="shorter than DEEPFLIX_STORY_TIMEOUT_S"):
        Settings()


def test_http_needs_a_server_url_and_a_call_deadline_inside_the_story_timeout(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("DEEPFLIX_GENERATORS", "http")
    with pytest.raises(ValueError, match="DEEPFLIX_MODEL_SERVER_URL"):
        Settings()
    monkeypatch.setenv("DEEPFLIX_MODEL_SERVER_URL", "https://studio.example/v1")
    assert Settings().generators == "http"
    monkeypatch.setenv("DEEPFLIX_MODEL_SERVER_TIMEOUT_S", "90")
    with pytest.raises(ValueError, match="shorter than DEEPFLIX_STORY_TIMEOUT_S"):
        Settings()


def test_the_api_key_is_a_secret_in_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DEEPFLIX_GENAI_API_KEY", "sk-very-secret")
    s = Settings()
    assert "sk-very-secret" not in repr(s) and "sk-very-secret" not in str(s.model_dump())
    assert s.genai_api_key is not None
    assert s.genai_api_key.get_secret_value() == "sk-very-secret"


def test_vertex_mode_uses_project_and_location_and_no_key() -> None:
    sdk = client(config(api_key=None, vertex=True))
    assert sdk.vertexai
    assert "europe-west4-aiplatform.googleapis.com" in str(sdk._api_client._http_options.base_url)


def test_the_gemini_api_mode_needs_a_key() -> None:
    with pytest.raises(ValueError, match="DEEPFLIX_GENAI_API_KEY"):
        client(config(api_key=None))


def test_rate_limits_and_server_errors_are_retryable_with_the_hint() -> None:
    retry_info = {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "17s"}
    limited = api_error(429, "RESOURCE_EXHAUSTED", "quota", [retry_info])
    assert retry_hint_s(limited) == 17.0
    mapped = classify(limited, "m")
    assert mapped.retryable and mapped.code == "model_rate_limited" and "17s" in mapped.message
    assert retry_hint_s(api_error(429, "RESOURCE_EXHAUSTED", "quota", [])) is None
    for code, status in [(500, "INTERNAL"), (503, "UNAVAILABLE"), (504, "DEADLINE_EXCEEDED")]:
        assert classify(api_error(code, status, "x", []), "m").retryable


def test_bad_requests_are_permanent_with_the_message() -> None:
    for code, status in [(400, "INVALID_ARGUMENT"), (403, "PERMISSION_DENIED"), (404, "NOT_FOUND")]:
        mapped = classify(api_error(code, status, "because", []), "m")
        assert not mapped.retryable and "because" in mapped.message and status in mapped.message


def test_the_story_schema_has_no_refs_and_keeps_the_title_property() -> None:
    assert "$ref" not in str(DRAFT_SCHEMA) and "$defs" not in DRAFT_SCHEMA
    required = DRAFT_SCHEMA["required"]
    assert isinstance(required, list)
    assert set(required) == {"title", "logline", "characters", "scenes"}


def test_an_image_prompt_describes_its_characters_the_same_way_every_time() -> None:
    story = InstantStoryGenerator(scene_seconds=1).write_story(
        prompt="p", title=None, style="ink", scene_count=3, seed=1
    )
    prompts = [image_prompt(story, s) for s in story.scenes]
    for c in story.characters:
        described = [p for p in prompts if c.name in p]
        assert all(f"{c.name} ({c.role}): {c.description}" in p for p in described)
    assert all("ink" in p for p in prompts)


def test_the_key_is_never_logged(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    client(config(api_key="sk-never-in-a-log"))
    assert "sk-never-in-a-log" not in caplog.text
