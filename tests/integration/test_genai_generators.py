"""The gemini generators through the real google-genai SDK against a fake Gemini API server."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image

from deepflix.adapters.gcp.genai_models import GenaiConfig, models
from deepflix.pipeline.errors import StageWorkError
from deepflix.stages.generators.base import Generators, Models
from deepflix.stages.generators.registry import load_generators
from tests.genai_fake import (
    API_KEY,
    FakeGenai,
    fake_genai,
    image_filtered,
    invalid_argument,
    prompt_blocked,
    rate_limited,
    server_error,
)

pytestmark = pytest.mark.integration


@pytest.fixture
def fake() -> Iterator[FakeGenai]:
    with fake_genai() as server:
        yield server


def generators(fake: FakeGenai, *, call_timeout_s: float = 10.0) -> Generators:
    text, image, _ = models(
        GenaiConfig(
            api_key=API_KEY,
            vertex=False,
            project="p",
            location="l",
            text_model="gemini-2.5-flash",
            image_model="gemini-2.5-flash-image",
            call_timeout_s=call_timeout_s,
            base_url=fake.url,
        )
    )
    return load_generators("gemini", scene_seconds=2.0, models=Models(text=text, image=image))


def write(gens: Generators, scene_count: int = 4):  # type: ignore[no-untyped-def]
    return gens.story.write_story(
        prompt="A lighthouse keeper befriends a storm",
        title=None,
        style="watercolour",
        scene_count=scene_count,
        seed=2**40 + 7,
    )


def test_story_is_structured_output_validated_into_the_story_model(fake: FakeGenai) -> None:
    story = write(generators(fake), scene_count=4)

    assert [s.index for s in story.scenes] == [0, 1, 2, 3]
    assert all(s.duration_s == 2.0 for s in story.scenes)
    assert story.style == "watercolour" and story.seed == 2**40 + 7
    assert story.title == "The Keeper and the Storm"
    (body,) = fake.calls("generateContent")
    config = body["generationConfig"]
    assert config["responseMimeType"] == "application/json"
    assert "scenes" in config["responseJsonSchema"]["properties"]
    assert config["seed"] == (2**40 + 7) % 2**31
    prompt = body["contents"][0]["parts"][0]["text"]
    assert "Exactly 4 scenes" in prompt and "watercolour" in prompt
    path, headers, _ = fake.requests[0]
    assert path.endswith("/models/gemini-2.5-flash:generateContent")
    assert headers.get("x-goog-api-key") == API_KEY


def test_a_rate_limit_with_a_short_retry_hint_is_waited_out(fake: FakeGenai) -> None:
    fake.queue("generateContent", rate_limited(retry_s=0.5))
    started = time.monotonic()
    story = write(generators(fake))
    assert time.monotonic() - started >= 0.5
    assert len(story.scenes) == 4
    assert len(fake.calls("generateContent")) == 2


def test_a_rate_limit_longer_than_the_call_budget_is_retryable(fake: FakeGenai) -> None:
    fake.queue("generateContent", rate_limited(retry_s=30))
    with pytest.raises(StageWorkError) as err:
        write(generators(fake, call_timeout_s=5))
    assert err.value.retryable and err.value.code == "model_rate_limited"
    assert "429 RESOURCE_EXHAUSTED" in err.value.message and "wait 30s" in err.value.message
    assert len(fake.calls("generateContent")) == 1


def test_a_server_error_is_retryable(fake: FakeGenai) -> None:
    fake.queue("generateContent", server_error())
    with pytest.raises(StageWorkError) as err:
        write(generators(fake))
    assert err.value.retryable and err.value.code == "model_unavailable"


def test_a_safety_block_is_permanent_with_the_models_reason(fake: FakeGenai) -> None:
    fake.queue("generateContent", prompt_blocked())
    with pytest.raises(StageWorkError) as err:
        write(generators(fake))
    assert not err.value.retryable and err.value.code == "model_blocked"
    assert "SAFETY" in err.value.message


def test_an_invalid_argument_is_permanent_with_the_models_message(fake: FakeGenai) -> None:
    fake.queue("generateContent", invalid_argument("seed must be an int32"))
    with pytest.raises(StageWorkError) as err:
        write(generators(fake))
    assert not err.value.retryable and err.value.code == "model_rejected"
    assert "INVALID_ARGUMENT" in err.value.message and "seed must be an int32" in err.value.message


def test_a_dead_endpoint_is_retryable(tmp_path: Path) -> None:
    with fake_genai() as gone:
        url = gone.url
    text, _, _ = models(
        GenaiConfig(
            api_key=API_KEY,
            vertex=False,
            project="p",
            location="l",
            text_model="gemini-2.5-flash",
            image_model="imagen",
            call_timeout_s=2,
            base_url=url,
        )
    )
    with pytest.raises(StageWorkError) as err:
        text.generate_json(prompt="x", schema={"type": "object"}, seed=1)
    assert err.value.retryable


def test_each_scene_gets_a_1280x720_still_with_the_same_character_words(
    fake: FakeGenai, tmp_path: Path
) -> None:
    gens = generators(fake)
    story = write(gens, scene_count=3)
    for scene in story.scenes:
        gens.images.render_scene(story=story, scene=scene, out_path=tmp_path / f"{scene.index}.png")
        with Image.open(tmp_path / f"{scene.index}.png") as img:
            assert (img.size, img.mode, img.format) == ((1280, 720), "RGB", "PNG")
    calls = fake.calls("generateContent")[1:]
    assert len(calls) == 3
    assert all(c["generationConfig"]["responseModalities"] == ["IMAGE"] for c in calls)
    assert all(c["generationConfig"]["imageConfig"]["aspectRatio"] == "16:9" for c in calls)
    mara = "Mara (keeper): a woman of sixty, grey braid, yellow oilskin coat"
    assert all(mara in c["contents"][0]["parts"][0]["text"] for c in calls)


def test_a_filtered_image_is_permanent_with_the_reason(fake: FakeGenai, tmp_path: Path) -> None:
    gens = generators(fake)
    story = write(gens, scene_count=1)
    fake.queue("generateContent", image_filtered())
    with pytest.raises(StageWorkError) as err:
        gens.images.render_scene(story=story, scene=story.scenes[0], out_path=tmp_path / "0.png")
    assert not err.value.retryable and "IMAGE_SAFETY" in err.value.message
    assert "HARM_CATEGORY_DANGEROUS_CONTENT" in err.value.message
    assert not (tmp_path / "0.png").exists()
