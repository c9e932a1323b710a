"""Picks the story/images/video generator set by name ("local" renders, "instant" benchmarks)."""

from __future__ import annotations

from deepflix.stages.base import Generators

KINDS = ("local", "instant")


def load_generators(kind: str, *, scene_seconds: float = 3.0, fps: int = 24) -> Generators:
    # Imports are deferred so the instant set never pays for Pillow or the ffmpeg lookup.
    if kind == "local":
        from deepflix.stages.images_local import LocalImageGenerator
        from deepflix.stages.story_local import LocalStoryGenerator
        from deepflix.stages.video_local import LocalVideoGenerator

        return Generators(
            story=LocalStoryGenerator(scene_seconds=scene_seconds),
            images=LocalImageGenerator(),
            video=LocalVideoGenerator(scene_seconds=scene_seconds, fps=fps),
        )
    if kind == "instant":
        from deepflix.stages.instant import (
            InstantImageGenerator,
            InstantStoryGenerator,
            InstantVideoGenerator,
        )

        return Generators(
            story=InstantStoryGenerator(scene_seconds=scene_seconds),
            images=InstantImageGenerator(),
            video=InstantVideoGenerator(scene_seconds=scene_seconds, fps=fps),
        )
    raise ValueError(f"unknown generators kind {kind!r}; expected one of: {', '.join(KINDS)}")
