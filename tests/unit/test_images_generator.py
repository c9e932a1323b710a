"""The procedural scene painter: right size, distinct scenes, caption band, fast enough."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from PIL import Image, ImageChops, ImageStat

from deepflix.stages.generators.base import Story
from deepflix.stages.generators.images import CAPTION_BAND, CpuImageGenerator
from deepflix.stages.generators.story import MOODS, CpuStoryGenerator

pytestmark = pytest.mark.unit

STYLES = ("cinematic", "noir", "anime", "watercolor", "documentary", "retro")


def story(style: str = "cinematic", scenes: int = 4, seed: int = 3) -> Story:
    return CpuStoryGenerator().write_story(
        prompt="A lonely robot learns to paint sunsets on Mars",
        title=None,
        style=style,
        scene_count=scenes,
        seed=seed,
    )


def render(s: Story, index: int, path: Path) -> Image.Image:
    CpuImageGenerator().render_scene(story=s, scene=s.scenes[index], out_path=path)
    with Image.open(path) as im:
        assert im.format == "PNG"
        return im.convert("RGB")


def picture(im: Image.Image) -> Image.Image:
    return im.crop((0, 0, im.width, im.height - CAPTION_BAND))


def distance(a: Image.Image, b: Image.Image) -> float:
    """Mean absolute per-channel difference, 0..255."""
    return sum(ImageStat.Stat(ImageChops.difference(a, b)).mean) / 3


def test_each_scene_is_a_1280x720_png(tmp_path: Path) -> None:
    s = story()
    for i in range(len(s.scenes)):
        im = render(s, i, tmp_path / "nested" / f"scene_{i}.png")
        assert im.size == (1280, 720)


def test_scenes_differ_from_each_other(tmp_path: Path) -> None:
    s = story(scenes=4)
    images = [render(s, i, tmp_path / f"{i}.png") for i in range(4)]
    for i in range(4):
        for j in range(i + 1, 4):
            assert distance(picture(images[i]), picture(images[j])) > 8, (i, j)


def test_mood_changes_the_palette(tmp_path: Path) -> None:
    s = story(scenes=2)
    means = []
    for mood in MOODS:
        scene = s.scenes[1].model_copy(update={"mood": mood})
        changed = s.model_copy(update={"scenes": [s.scenes[0], scene]})
        means.append(tuple(ImageStat.Stat(picture(render(changed, 1, tmp_path / "m.png"))).mean))
    assert len(set(means)) == len(MOODS)


def test_rendering_is_deterministic(tmp_path: Path) -> None:
    s = story()
    render(s, 2, tmp_path / "a.png")
    render(s, 2, tmp_path / "b.png")
    assert (tmp_path / "a.png").read_bytes() == (tmp_path / "b.png").read_bytes()


def test_narration_lives_only_in_the_caption_band(tmp_path: Path) -> None:
    s = story()
    other = s.scenes[1].model_copy(update={"narration": "A completely different caption here."})
    a = render(s, 1, tmp_path / "a.png")
    b = render(s.model_copy(update={"scenes": [s.scenes[0], other]}), 1, tmp_path / "b.png")
    # The picture is untouched by the caption; the band differs because the text does.
    assert ImageChops.difference(picture(a), picture(b)).getbbox() is None
    band = (0, 720 - CAPTION_BAND, 1280, 720)
    assert ImageChops.difference(a.crop(band), b.crop(band)).getbbox() is not None
    # White text on a dark band: the band has both very dark and very bright pixels.
    lo, hi = a.crop(band).convert("L").getextrema()
    assert isinstance(lo, int) and isinstance(hi, int)
    assert lo < 40 and hi > 220


@pytest.mark.parametrize("style", STYLES)
def test_every_style_renders_and_looks_different(style: str, tmp_path: Path) -> None:
    im = render(story(style=style), 1, tmp_path / f"{style}.png")
    base = render(story(style="documentary"), 1, tmp_path / "base.png")
    assert im.size == (1280, 720)
    if style != "documentary":
        assert distance(picture(im), picture(base)) > 2


def test_noir_is_greyscale(tmp_path: Path) -> None:
    im = picture(render(story(style="noir"), 2, tmp_path / "noir.png"))
    r, g, b = im.split()
    assert ImageChops.difference(r, g).getbbox() is None
    assert ImageChops.difference(g, b).getbbox() is None


def test_unknown_mood_and_style_fall_back(tmp_path: Path) -> None:
    s = story(style="vaporwave")
    odd = s.scenes[1].model_copy(update={"mood": "bewildered", "narration": "Café — naïve 東京"})
    im = render(s.model_copy(update={"scenes": [s.scenes[0], odd]}), 1, tmp_path / "odd.png")
    assert im.size == (1280, 720)


def test_rendering_is_fast(tmp_path: Path) -> None:
    s = story(scenes=6)
    gen = CpuImageGenerator()
    gen.render_scene(story=s, scene=s.scenes[0], out_path=tmp_path / "warm.png")  # font load
    start = time.perf_counter()
    for scene in s.scenes:
        gen.render_scene(story=s, scene=scene, out_path=tmp_path / f"{scene.index}.png")
    per_image = (time.perf_counter() - start) / len(s.scenes)
    assert per_image < 0.5, f"{per_image:.3f}s per image"  # ~0.08s on 2 cores; CI slack
