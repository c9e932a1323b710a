"""The ffmpeg render reports how far it got while it runs: the video stage's bar moves."""

from __future__ import annotations

from pathlib import Path

import pytest

from deepflix.stages.generators.images import CpuImageGenerator
from deepflix.stages.generators.story import CpuStoryGenerator
from deepflix.stages.generators.video import CpuVideoGenerator, make_timeline

pytestmark = pytest.mark.integration


def test_the_render_reports_its_share_done_as_it_goes(tmp_path: Path) -> None:
    story = CpuStoryGenerator().write_story(
        prompt="A kite learns to fly", title=None, style="cinematic", scene_count=2, seed=3
    )
    images = CpuImageGenerator()
    stills = []
    for scene in story.scenes:
        path = tmp_path / f"scene-{scene.index}.png"
        images.render_scene(story=story, scene=scene, out_path=path)
        stills.append(path)
    heard: list[float] = []
    gen = CpuVideoGenerator(scene_seconds=2.0, fps=24)
    out = gen.assemble(
        story=story, image_paths=stills, out_dir=tmp_path / "r", progress=heard.append
    )
    assert out.video.is_file()
    assert heard, "no progress was reported"
    assert heard == sorted(heard) and all(0.0 <= share <= 1.0 for share in heard)
    # The last report is ffmpeg's final one: every frame of the film.
    frames = make_timeline(2, 2.0, 24, 0.5).frames
    assert heard[-1] == pytest.approx(1.0, abs=1 / frames)


def test_a_failing_progress_listener_stops_the_render(tmp_path: Path) -> None:
    story = CpuStoryGenerator().write_story(
        prompt="A kite learns to fly", title=None, style="cinematic", scene_count=1, seed=3
    )
    path = tmp_path / "scene-0.png"
    CpuImageGenerator().render_scene(story=story, scene=story.scenes[0], out_path=path)

    def refuse(share: float) -> None:
        raise RuntimeError("cancelled")

    gen = CpuVideoGenerator(scene_seconds=2.0, fps=24)
    with pytest.raises(RuntimeError, match="cancelled"):
        gen.assemble(story=story, image_paths=[path], out_dir=tmp_path / "r", progress=refuse)
    assert not (tmp_path / "r" / "movie.mp4").exists()
