"""The images stage's rendering: stills two at a time, handed over in scene order."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from deepflix.stages.generators.base import Scene, Story
from deepflix.stages.generators.story import CpuStoryGenerator
from deepflix.stages.processors import render_images

pytestmark = pytest.mark.integration


def story(scenes: int) -> Story:
    return CpuStoryGenerator().write_story(
        prompt="A kite that refuses to land", title=None, style="anime", scene_count=scenes, seed=9
    )


class Recorder:
    """Writes a file per scene; the first calls wait for each other (proof of overlap)."""

    threads = 2

    def __init__(self, fail_at: int | None = None) -> None:
        self.both_running = threading.Barrier(self.threads, timeout=5)
        self.fail_at = fail_at
        self.rendered: list[int] = []
        self.lock = threading.Lock()

    def render_scene(self, *, story: Story, scene: Scene, out_path: Path) -> None:
        if scene.index < self.threads:
            self.both_running.wait()
        if scene.index == self.fail_at:
            raise RuntimeError(f"scene {scene.index} failed")
        time.sleep(0.02)  # long enough that a failure is seen before the queue drains
        out_path.write_text(str(scene.index))
        with self.lock:
            self.rendered.append(scene.index)


def test_stills_render_concurrently_and_arrive_in_scene_order(tmp_path: Path) -> None:
    gen, s = Recorder(), story(5)
    paths = list(render_images(gen, s, tmp_path))
    assert [p.name for p in paths] == [f"scene-{i:02d}.png" for i in range(1, 6)]
    assert [p.read_text() for p in paths] == [str(i) for i in range(5)]
    assert sorted(gen.rendered) == list(range(5))


def test_a_failed_still_is_raised_and_the_rest_are_not_waited_for(tmp_path: Path) -> None:
    gen, s = Recorder(fail_at=0), story(12)
    stills = render_images(gen, s, tmp_path)
    with pytest.raises(RuntimeError, match="scene 0 failed"):
        list(stills)
    # The two running at the failure may finish; the stills queued behind them are dropped
    # (scene 0 itself is never recorded, so all the others would be 11).
    assert len(gen.rendered) < len(s.scenes) - 1


def test_a_one_thread_generator_renders_on_the_calling_thread(tmp_path: Path) -> None:
    class Inline:
        threads = 1

        def __init__(self) -> None:
            self.threads_seen: set[threading.Thread] = set()

        def render_scene(self, *, story: Story, scene: Scene, out_path: Path) -> None:
            self.threads_seen.add(threading.current_thread())
            out_path.write_text(str(scene.index))

    gen, s = Inline(), story(4)
    assert [p.read_text() for p in render_images(gen, s, tmp_path)] == ["0", "1", "2", "3"]
    assert gen.threads_seen == {threading.current_thread()}
