"""End to end on the emulators with the cloud generators: the `gemini` set (Veo filming) in
the stage functions and jobs, against the fake Gemini API; the movie's artifacts are checked."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image

from devtools import emulators, stack
from tests.emulator.test_stack_e2e import call, wait
from tests.genai_fake import FakeGenai, fake_genai, real_clip

pytestmark = pytest.mark.emulator
VEO = "veo-3.0-fast-generate-001"


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeGenai]:
    with fake_genai() as server:
        server.clip = lambda _id: real_clip()
        yield server


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory, fake: FakeGenai) -> Iterator[stack.Stack]:
    data = tmp_path_factory.mktemp("emulator-genai")
    try:
        s = stack.start(
            data,
            fps=12,
            retry_base_delay_s=0.1,
            max_attempts=2,
            generators="gemini",
            genai_vertex="true",
            genai_api_key="fake-key",  # Vertex AI express mode: no credentials needed
            genai_base_url=fake.url,
            genai_video="veo",
            genai_video_model=VEO,
            genai_poll_s=0.05,
        )
    except emulators.EmulatorMissing as e:
        pytest.skip(str(e))
    yield s
    s.stop()


def test_a_movie_made_by_the_cloud_generators_has_their_artifacts(
    running: stack.Stack, fake: FakeGenai, tmp_path: Path
) -> None:
    import av

    code, created = call(
        running, "POST", "/api/movies", {"prompt": "A keeper and a storm", "scene_count": 2}
    )
    assert code == 202, created
    done = wait(running, created["movie_id"], timeout=240)
    assert done["status"] == "succeeded", done["error"]
    stages = done["stages"]
    assert stages["story"]["generator"] == "gemini-2.5-flash"
    assert stages["images"]["generator"] == "gemini-2.5-flash-image"
    assert stages["video"]["generator"] == f"{VEO}+ffmpeg"
    assert stages["video"]["usage"][0]["video_seconds"] == 8.0  # two 4 s clips
    assert len(stages["video"]["notes"]) == 2
    assert len(fake.calls("predictLongRunning")) == 2  # one start per scene, none repeated

    code, story = call(running, "GET", done["artifacts"]["story"])
    assert code == 200
    story = json.loads(story) if isinstance(story, bytes) else story
    assert story["title"] == "The Keeper and the Storm" and len(story["scenes"]) == 2
    for url in done["artifacts"]["images"]:
        code, png = call(running, "GET", url)
        assert code == 200
        (tmp_path / "still.png").write_bytes(png)
        with Image.open(tmp_path / "still.png") as still:
            assert still.size == (1280, 720)  # the model's 1344x768, fitted
    code, video = call(running, "GET", done["artifacts"]["video"])
    assert code == 200
    (tmp_path / "v.mp4").write_bytes(video)
    with av.open(str(tmp_path / "v.mp4")) as container:
        frames = sum(1 for _ in container.decode(video=0))
    assert frames == 2 * 4 * 12 - 6  # two 4 s scenes at 12 fps, a 0.5 s crossfade
    code, captions = call(running, "GET", done["artifacts"]["captions"])
    assert code == 200 and b"Mara answered" in captions
