"""The video stage filming with Veo through the job entry point, against the fake Gemini API:
operation names recorded on the movie, a job killed mid-poll resumes them, the clips joined
into the film; usage and generators on the movie."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import imageio_ffmpeg
import pytest
from prometheus_client.parser import text_string_to_metric_families

from deepflix.adapters.local.figures import SqliteFigures
from deepflix.entrypoints.job import main
from deepflix.handlers.metrics import exposition
from deepflix.handlers.views import movie_view
from deepflix.pipeline.models import VIDEO, Movie, MovieStatus, Stage, StageStatus
from deepflix.runtime.api_process import service_figures
from deepflix.runtime.compose import build_embedded, build_reader
from deepflix.settings import get_settings
from tests.factories import request
from tests.genai_fake import FakeGenai, fake_genai, real_clip

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
VEO = "veo-3.0-fast-generate-001"


@pytest.fixture
def fake() -> Iterator[FakeGenai]:
    with fake_genai() as server:
        server.clip = lambda _id: real_clip()
        yield server


@pytest.fixture
def running_video(fake: FakeGenai, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> str:
    """A movie whose story and stills the fake made, its video stage running attempt 1."""
    env = {
        "DEEPFLIX_DATA_DIR": str(tmp_path / "data"),
        "DEEPFLIX_GENERATORS": "gemini",
        "DEEPFLIX_GENAI_VERTEX": "true",
        "DEEPFLIX_GENAI_API_KEY": "fake-key",  # Vertex AI express mode: no credentials
        "DEEPFLIX_GENAI_BASE_URL": fake.url,
        "DEEPFLIX_GENAI_VIDEO": "veo",
        "DEEPFLIX_GENAI_VIDEO_MODEL": VEO,
        "DEEPFLIX_GENAI_POLL_S": "0.05",
        "DEEPFLIX_FAULTS_FILE": str(tmp_path / "faults.json"),
    }
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    get_settings.cache_clear()
    runtime = build_embedded(get_settings())
    pipeline = runtime.pipeline
    movie = pipeline.create(request(scene_count=3), owner="u", idempotency_key=None)
    pipeline.dispatch(Stage.story)
    runtime.runner.execute(movie.id, Stage.story, 1)
    runtime.runner.execute(movie.id, Stage.images, 1)
    assert pipeline.get(movie.id).stages[Stage.video].status is StageStatus.running
    monkeypatch.setenv("DEEPFLIX_JOB_MOVIE_ID", movie.id)
    monkeypatch.setenv("DEEPFLIX_JOB_STAGE", "video")
    monkeypatch.setenv("DEEPFLIX_JOB_ATTEMPT", "1")
    return movie.id


def stored(movie_id: str) -> Movie:
    return build_embedded(get_settings()).pipeline.get(movie_id)


def test_a_job_killed_mid_poll_resumes_the_operations_noted_on_the_movie(
    fake: FakeGenai, running_video: str
) -> None:
    fake.polls_before_done = 10_000
    env = {**os.environ, "PYTHONPATH": f"{ROOT}:{ROOT / 'functions'}"}
    job = subprocess.Popen([sys.executable, "-m", "deepflix.entrypoints.job"], cwd=ROOT, env=env)
    try:
        deadline = time.monotonic() + 60
        while len(fake.polls) < 9 and time.monotonic() < deadline and job.poll() is None:
            time.sleep(0.05)
        assert job.poll() is None, "the job ended before it was killed"
        assert len(fake.polls) >= 9, "the job never polled"
    finally:
        os.kill(job.pid, signal.SIGKILL)
        job.wait(10)
    started = fake.calls("predictLongRunning")
    assert len(started) == 3
    notes = stored(running_video).stages[Stage.video].notes
    assert sorted(notes) == ["scene-000", "scene-001", "scene-002"]
    assert all(
        name.startswith(f"publishers/google/models/{VEO}/operations/") for name in notes.values()
    )
    with fake.lock:
        fake.operations = dict.fromkeys(fake.operations, 2)  # two more lookups each
    polls_before = len(fake.polls)

    assert main() == 0  # the same attempt's job, started again

    assert len(fake.calls("predictLongRunning")) == 3  # resumed: nothing started twice
    assert set(fake.polls[polls_before:]) == set(notes.values())
    movie = stored(running_video)
    assert movie.status is MovieStatus.succeeded
    video = movie.stages[Stage.video]
    assert video.notes == notes
    assert video.generator == f"{VEO}+ffmpeg"
    (veo_usage,) = video.usage.values()
    assert (veo_usage.model, veo_usage.calls, veo_usage.video_seconds) == (VEO, 3, 12.0)
    assert movie.stages[Stage.story].generator == "gemini-2.5-flash"
    assert movie.stages[Stage.images].generator == "gemini-2.5-flash-image"
    story_usage = movie.stages[Stage.story].usage["gemini-2.5-flash"]
    assert (story_usage.input_tokens, story_usage.output_tokens) == (120, 640)
    assert movie.stages[Stage.images].usage["gemini-2.5-flash-image"].images == 3
    film = get_settings().media_root() / "artifacts" / movie.artifacts[VIDEO]
    assert probe_seconds(film) == pytest.approx(3 * 4 - 2 * 0.5, abs=0.05)


def probe_seconds(path: Path) -> float:
    """The MP4's duration by decoding it (imageio-ffmpeg's frame count and rate)."""
    frames, seconds = imageio_ffmpeg.count_frames_and_secs(str(path))
    assert frames > 0
    return float(seconds)


def test_a_safety_filtered_clip_fails_the_movie_with_the_models_reason(
    fake: FakeGenai, running_video: str
) -> None:
    fake.polls_before_done = 0
    from tests.genai_fake import Reply

    reasons = ["The prompt could not be submitted: it may violate the usage guidelines."]
    filtered = {"raiMediaFilteredCount": 1, "raiMediaFilteredReasons": reasons}
    fake.queue("operation", Reply(200, {"name": "x", "done": True, "response": filtered}))
    assert main() == 0  # recorded: a permanent failure is no job failure
    movie = stored(running_video)
    assert movie.status is MovieStatus.failed
    assert movie.error is not None and movie.error.code == "model_blocked"
    assert "violate the usage guidelines" in movie.error.message and VEO in movie.error.message


def test_the_usage_is_summed_in_metrics_and_the_status_names_each_generator(
    fake: FakeGenai, running_video: str
) -> None:
    fake.polls_before_done = 1
    assert main() == 0
    reader = build_reader(get_settings())
    text = exposition(
        reader.pipeline, service_figures(SqliteFigures(reader.queue.db), reader, None)
    )
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }

    def at(name: str, stage: str, model: str) -> float:
        return samples[(name, (("model", model), ("stage", stage)))]

    assert at("deepflix_model_video_seconds", "video", VEO) == 12.0
    assert at("deepflix_model_calls", "video", VEO) == 3
    assert at("deepflix_model_images", "images", "gemini-2.5-flash-image") == 3
    assert at("deepflix_model_input_tokens", "story", "gemini-2.5-flash") == 120
    assert at("deepflix_model_output_tokens", "story", "gemini-2.5-flash") == 640
    view = movie_view(stored(running_video), None, str)
    assert {s: v["generator"] for s, v in view["stages"].items()} == {
        "story": "gemini-2.5-flash",
        "images": "gemini-2.5-flash-image",
        "video": f"{VEO}+ffmpeg",
    }
    assert view["stages"]["video"]["usage"] == [
        {
            "model": VEO,
            "calls": 3,
            "input_tokens": 0,
            "output_tokens": 0,
            "images": 0,
            "video_seconds": 12.0,
        }
    ]
    assert len(view["stages"]["video"]["notes"]) == 3
