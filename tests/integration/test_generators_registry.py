"""Generator sets by name, and the benchmark-only instant set end to end."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest
from PIL import Image

from deepflix.stages.generators.base import Generators
from deepflix.stages.generators.images import CpuImageGenerator
from deepflix.stages.generators.instant import (
    InstantImageGenerator,
    InstantStoryGenerator,
    InstantVideoGenerator,
    tiny_png,
)
from deepflix.stages.generators.registry import KINDS, load_generators
from deepflix.stages.generators.story import CpuStoryGenerator
from deepflix.stages.generators.video import CpuVideoGenerator

pytestmark = pytest.mark.integration


def test_local_kind_wires_the_local_generators_with_timing() -> None:
    gens = load_generators("cpu", scene_seconds=1.5, fps=30)
    assert isinstance(gens, Generators)
    assert isinstance(gens.story, CpuStoryGenerator)
    assert isinstance(gens.images, CpuImageGenerator)
    assert isinstance(gens.video, CpuVideoGenerator)
    assert gens.story.scene_seconds == gens.video.scene_seconds == 1.5
    assert gens.video.fps == 30


def test_instant_kind_wires_the_instant_generators() -> None:
    gens = load_generators("instant", scene_seconds=2.0, fps=10)
    assert isinstance(gens.story, InstantStoryGenerator)
    assert isinstance(gens.images, InstantImageGenerator)
    assert isinstance(gens.video, InstantVideoGenerator)


def test_unknown_kind_lists_the_allowed_values() -> None:
    assert set(KINDS) == {"cpu", "instant", "gemini", "http"}
    with pytest.raises(ValueError, match=r"'gpu'.*cpu, instant, gemini, http"):
        load_generators("gpu")
    with pytest.raises(ValueError, match="hosted models"):
        load_generators("gemini")
    with pytest.raises(ValueError, match="model server"):
        load_generators("http")


def test_instant_set_runs_end_to_end(tmp_path: Path) -> None:
    gens = load_generators("instant", scene_seconds=2.0, fps=10)
    story = gens.story.write_story(
        prompt="a <tiny> benchmark", title=None, style="retro", scene_count=3, seed=9
    )
    assert [s.index for s in story.scenes] == [0, 1, 2]
    assert story == gens.story.write_story(
        prompt="a <tiny> benchmark", title=None, style="retro", scene_count=3, seed=9
    )
    paths = []
    for scene in story.scenes:
        path = tmp_path / "img" / f"{scene.index}.png"
        gens.images.render_scene(story=story, scene=scene, out_path=path)
        with Image.open(path) as im:
            im.load()
            assert im.size == (16, 9)
        paths.append(path)
    out = gens.video.assemble(story=story, image_paths=paths, out_dir=tmp_path / "out")
    assert (out.video.name, out.poster.name, out.captions.name) == (
        "movie.mp4",
        "poster.png",
        "captions.vtt",
    )
    assert out.video.read_bytes()[4:8] == b"ftyp"
    assert out.duration_s == 6.0 and out.frames == 60
    vtt = out.captions.read_text()
    assert vtt.startswith("WEBVTT") and vtt.count(" --> ") == 3
    assert "&lt;tiny&gt;" in vtt and "<tiny>" not in vtt


def test_tiny_png_is_valid_and_colourable() -> None:
    path = Path("tiny.png")  # conftest runs each test in its own folder
    path.write_bytes(tiny_png(10, 20, 30))
    with Image.open(path) as im:
        assert im.convert("RGB").getpixel((3, 3)) == (10, 20, 30)


def test_instant_generators_are_fast(tmp_path: Path) -> None:
    gens = load_generators("instant")
    start = time.perf_counter()
    for n in range(20):
        story = gens.story.write_story(
            prompt="bench", title="t", style="noir", scene_count=6, seed=n
        )
        paths = [tmp_path / f"{n}_{s.index}.png" for s in story.scenes]
        for scene, path in zip(story.scenes, paths, strict=True):
            gens.images.render_scene(story=story, scene=scene, out_path=path)
        gens.video.assemble(story=story, image_paths=paths, out_dir=tmp_path / str(n))
    assert (time.perf_counter() - start) / 20 < 0.05  # ~1 ms a movie


def test_instant_set_never_imports_pillow_or_ffmpeg() -> None:
    code = (
        "import sys\n"
        "from deepflix.stages.generators.registry import load_generators\n"
        "load_generators('instant')\n"
        "bad = [m for m in ('PIL', 'imageio_ffmpeg') if m in sys.modules]\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


class _Named:
    def __init__(self, name: str) -> None:
        self.name = name


def test_the_gemini_set_films_with_its_video_model_if_it_has_one() -> None:
    from deepflix.stages.generators.base import Models, made_by
    from deepflix.stages.generators.clips import ClipFilmGenerator
    from deepflix.stages.generators.registry import ClipSettings

    text, image, veo = _Named("t"), _Named("i"), _Named("veo")
    stills = load_generators("gemini", models=Models(text, image))  # type: ignore[arg-type]
    assert isinstance(stills.video, CpuVideoGenerator)
    assert made_by(stills.video, stills.kind) == "ffmpeg"
    assert made_by(stills.story, stills.kind) == "t" and made_by(stills.images, "x") == "i"
    clips = ClipSettings(seconds=6, first_poll_s=2.0, deadline_s=100.0)
    films = load_generators("gemini", models=Models(text, image, veo), clips=clips)  # type: ignore[arg-type]
    assert isinstance(films.video, ClipFilmGenerator)
    assert (films.video.seconds, films.video.first_poll_s, films.video.deadline_s) == (
        6,
        2.0,
        100.0,
    )
    assert made_by(films.video, films.kind) == "veo+ffmpeg"
    assert made_by(load_generators("cpu").story, "cpu") == "cpu"
