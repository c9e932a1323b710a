"""Veo clips through the real google-genai SDK against the fake Gemini API: operations started
once, polled with backoff, resumed by name after a deadline (a killed job: test_veo_stage)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from google.oauth2.credentials import Credentials
from PIL import Image

from deepflix.adapters.gcp.genai_models import GenaiConfig, VeoVideo, client
from deepflix.pipeline.errors import StageWorkError
from deepflix.stages.generators.base import Story
from deepflix.stages.generators.clips import film_clips
from deepflix.stages.generators.instant import InstantStoryGenerator
from tests.genai_fake import FakeGenai, Reply, clip_bytes, fake_genai

pytestmark = pytest.mark.integration

MODEL = "veo-3.0-fast-generate-001"


@pytest.fixture
def fake() -> Iterator[FakeGenai]:
    with fake_genai() as server:
        yield server


def veo(url: str) -> VeoVideo:
    cfg = GenaiConfig(
        api_key=None,
        vertex=True,
        project="proj",
        location="us-central1",
        text_model="t",
        image_model="i",
        call_timeout_s=10,
        base_url=url,
        credentials=Credentials(token="fake-token"),
    )
    return VeoVideo(cfg, client(cfg), MODEL)


def story_and_stills(tmp_path: Path, scenes: int = 3) -> tuple[Story, list[Path]]:
    story = InstantStoryGenerator(scene_seconds=4).write_story(
        prompt="p", title=None, style="ink", scene_count=scenes, seed=3
    )
    stills = []
    for scene in story.scenes:
        path = tmp_path / f"scene-{scene.index}.png"
        Image.new("RGB", (1280, 720), (scene.index * 40, 80, 120)).save(path)
        stills.append(path)
    return story, stills


class DictLedger:
    """The movie's notes as a dict (the stage keeps them on the movie: test_veo_stage)."""

    def __init__(self) -> None:
        self.notes: dict[str, str] = {}

    def read(self) -> dict[str, str]:
        return dict(self.notes)

    def record(self, key: str, value: str) -> None:
        self.notes[key] = value


def started(fake: FakeGenai) -> list[dict[str, object]]:
    return fake.calls("predictLongRunning")


def test_clips_are_started_once_and_polled_with_growing_pauses(
    fake: FakeGenai, tmp_path: Path
) -> None:
    story, stills = story_and_stills(tmp_path)
    pauses: list[float] = []
    ledger = DictLedger()
    clips = film_clips(
        model=veo(fake.url),
        story=story,
        stills=stills,
        out_dir=tmp_path / "clips",
        ledger=ledger,
        seconds=4,
        deadline=time.monotonic() + 60,
        first_poll_s=1.0,
        sleep=pauses.append,
    )
    assert [c.read_bytes() for c in clips] == [clip_bytes(f"op{i}") for i in (1, 2, 3)]
    assert len(started(fake)) == 3
    assert pauses == [1.0, 1.5]  # two "not done" rounds, then all three done
    prefix = f"projects/proj/locations/us-central1/publishers/google/models/{MODEL}"
    assert sorted(ledger.read().values()) == [f"{prefix}/operations/op{i}" for i in (1, 2, 3)]
    path, headers, _ = fake.requests[0]
    assert path.endswith(f"{prefix}:predictLongRunning")
    assert headers.get("Authorization") == "Bearer fake-token"
    body = started(fake)[0]
    instance = body["instances"][0]  # type: ignore[index]
    assert instance["image"]["mimeType"] == "image/png" and instance["image"]["bytesBase64Encoded"]
    assert body["parameters"] == {
        "aspectRatio": "16:9",
        "durationSeconds": 4,
        "sampleCount": 1,
        "generateAudio": False,
    }


def test_an_attempt_out_of_time_fails_retryable_and_the_next_resumes(
    fake: FakeGenai, tmp_path: Path
) -> None:
    story, stills = story_and_stills(tmp_path, scenes=2)
    fake.polls_before_done = 50
    ledger = DictLedger()
    now = [0.0]

    def sleep(s: float) -> None:
        now[0] += s

    kwargs = {
        "story": story,
        "stills": stills,
        "out_dir": tmp_path / "clips",
        "ledger": ledger,
        "seconds": 4,
        "clock": lambda: now[0],
        "sleep": sleep,
    }
    with pytest.raises(StageWorkError) as err:
        film_clips(model=veo(fake.url), deadline=20.0, **kwargs)  # type: ignore[arg-type]
    assert err.value.retryable and err.value.code == "model_still_running"
    with fake.lock:
        fake.operations = dict.fromkeys(fake.operations, 0)
    clips = film_clips(model=veo(fake.url), deadline=1000.0, **kwargs)  # type: ignore[arg-type]
    assert all(c.exists() for c in clips)
    assert len(started(fake)) == 2


@pytest.mark.parametrize(
    ("done", "retryable", "text"),
    [
        ({"error": {"code": 13, "message": "Internal error"}}, True, "Internal error"),
        ({"error": {"code": 3, "message": "Bad image"}}, False, "Bad image"),
        (
            {
                "response": {
                    "raiMediaFilteredCount": 1,
                    "raiMediaFilteredReasons": ["The image depicts a minor."],
                }
            },
            False,
            "depicts a minor",
        ),
    ],
)
def test_a_failed_operation_maps_to_the_retry_policy(
    fake: FakeGenai, tmp_path: Path, done: dict[str, object], retryable: bool, text: str
) -> None:
    model = veo(fake.url)
    name = model.start_clip(prompt="p", image=b"png", seconds=4)
    fake.queue("operation", Reply(200, {"name": name, "done": True, **done}))
    with pytest.raises(StageWorkError) as err:
        model.clip(name)
    assert err.value.retryable is retryable and text in err.value.message


def test_a_rate_limited_start_is_retryable(fake: FakeGenai) -> None:
    from tests.genai_fake import rate_limited

    fake.queue("predictLongRunning", rate_limited(retry_s=None))
    with pytest.raises(StageWorkError) as err:
        veo(fake.url).start_clip(prompt="p", image=b"png", seconds=4)
    assert err.value.retryable and err.value.code == "model_rate_limited"
