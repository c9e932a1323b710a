"""Picks the story/images/video generator set by name ("cpu" renders, "instant" benchmarks,
"gemini" calls hosted models given by the composition root, "http" a studio's model server)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from deepflix.stages.generators.base import Generators, Models

if TYPE_CHECKING:
    from deepflix.stages.generators.http import ModelServer

KINDS = ("cpu", "instant", "gemini", "http")


def load_generators(
    kind: str,
    *,
    scene_seconds: float = 3.0,
    fps: int = 24,
    models: Models | None = None,
    server: ModelServer | None = None,
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
    if kind == "http":
        if server is None:
            raise ValueError("the http generators need their model server")
        from deepflix.stages.generators.http import HttpImageGenerator, HttpStoryGenerator
        from deepflix.stages.generators.video import CpuVideoGenerator

        return Generators(
            story=HttpStoryGenerator(server=server, scene_seconds=scene_seconds),
            images=HttpImageGenerator(server=server),
            video=CpuVideoGenerator(scene_seconds=scene_seconds, fps=fps),
        )
    raise ValueError(f"unknown generators kind {kind!r}; expected one of: {', '.join(KINDS)}")
