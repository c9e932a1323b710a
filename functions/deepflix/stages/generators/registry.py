"""Picks the story/images/video generator set by name ("cpu" renders, "instant" benchmarks,
"gemini" calls hosted models given by the composition root)."""

from __future__ import annotations

from deepflix.stages.generators.base import Generators, Models

KINDS = ("cpu", "instant", "gemini")


def load_generators(
    kind: str, *, scene_seconds: float = 3.0, fps: int = 24, models: Models | None = None
) -> Generators:
    # Imports are deferred so the instant set never pays for Pillow or the ffmpeg lookup.
    if kind == "cpu":
        from deepflix.stages.generators.images import CpuImageGenerator
        from deepflix.stages.generators.story import CpuStoryGenerator
        from deepflix.stages.generators.video import CpuVideoGenerator

        return Generators(
            story=CpuStoryGenerator(scene_seconds=scene_seconds),
            images=CpuImageGenerator(),
            video=CpuVideoGenerator(scene_seconds=scene_seconds, fps=fps),
        )
    if kind == "instant":
        from deepflix.stages.generators.instant import (
            InstantImageGenerator,
            InstantStoryGenerator,
            InstantVideoGenerator,
        )

        return Generators(
            story=InstantStoryGenerator(scene_seconds=scene_seconds),
            images=InstantImageGenerator(),
            video=InstantVideoGenerator(scene_seconds=scene_seconds, fps=fps),
        )
    if kind == "gemini":
        if models is None:
            raise ValueError("the gemini generators need their hosted models")
        from deepflix.stages.generators.hosted import HostedImageGenerator, HostedStoryGenerator
        from deepflix.stages.generators.video import CpuVideoGenerator

        return Generators(
            story=HostedStoryGenerator(text=models.text, scene_seconds=scene_seconds),
            images=HostedImageGenerator(image=models.image),
            video=CpuVideoGenerator(scene_seconds=scene_seconds, fps=fps),
        )
    raise ValueError(f"unknown generators kind {kind!r}; expected one of: {', '.join(KINDS)}")
