"""Picks the story/images/video generator set by name ("cpu" renders, "instant" benchmarks,
"gemini" calls hosted models given by the composition root, "http" a studio's model server)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from deepflix.stages.generators.base import Generators, Models

if TYPE_CHECKING:
    from deepflix.stages.generators.http import ModelServer

KINDS = ("cpu", "instant", "gemini", "http")


@dataclass(frozen=True)
class ClipSettings:
    """How the gemini set films clips, where it has a video model."""

    seconds: int = 4
    first_poll_s: float = 5.0
    deadline_s: float = 450.0


def load_generators(
    kind: str,
    *,
    scene_seconds: float = 3.0,
    fps: int = 24,
    models: Models | None = None,
    server: ModelServer | None = None,
    clips: ClipSettings | None = None,
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
            kind=kind,
        )
    if kind == "gemini":
        if models is None:
            raise ValueError("the gemini generators need their hosted models")
        from deepflix.stages.generators.base import VideoGenerator
        from deepflix.stages.generators.clips import ClipFilmGenerator
        from deepflix.stages.generators.hosted import HostedImageGenerator, HostedStoryGenerator
        from deepflix.stages.generators.video import CpuVideoGenerator

        film: VideoGenerator = CpuVideoGenerator(scene_seconds=scene_seconds, fps=fps)
        if models.video is not None:
            clip = clips or ClipSettings()
            film = ClipFilmGenerator(
                model=models.video,
                seconds=clip.seconds,
                fps=fps,
                first_poll_s=clip.first_poll_s,
                deadline_s=clip.deadline_s,
            )
        return Generators(
            story=HostedStoryGenerator(text=models.text, scene_seconds=scene_seconds),
            images=HostedImageGenerator(image=models.image),
            video=film,
            kind=kind,
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
            kind=kind,
        )
    raise ValueError(f"unknown generators kind {kind!r}; expected one of: {', '.join(KINDS)}")
