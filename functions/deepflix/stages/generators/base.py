"""Generator interfaces and the story document shared by the stage processors."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from pydantic import BaseModel, ConfigDict, Field


class Character(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    role: str
    description: str


class Scene(BaseModel):
    model_config = ConfigDict(extra="forbid")

    index: int = Field(ge=0)
    heading: str
    description: str
    narration: str
    shot: str
    mood: str
    duration_s: float = Field(gt=0)


class Story(BaseModel):
    model_config = ConfigDict(extra="forbid")

    prompt: str
    title: str
    logline: str
    style: str
    seed: int
    characters: list[Character]
    scenes: list[Scene]


@dataclass(frozen=True)
class VideoOutputs:
    video: Path  # H.264 MP4, yuv420p, faststart
    poster: Path  # JPEG or PNG still
    captions: Path  # WebVTT
    duration_s: float
    frames: int


class StoryGenerator(Protocol):
    def write_story(
        self, *, prompt: str, title: str | None, style: str, scene_count: int, seed: int
    ) -> Story: ...


class ImageGenerator(Protocol):
    # Stills worth rendering at once: more than 1 where the work runs outside the GIL.
    threads: int

    def render_scene(self, *, story: Story, scene: Scene, out_path: Path) -> None: ...


class Ledger(Protocol):
    """Where a stage keeps what it must find again after a restart (operation names by key):
    on the movie, through the pipeline's store."""

    def read(self) -> dict[str, str]: ...

    def record(self, key: str, value: str) -> None:
        """Durably recorded when this returns; raises if it could not be."""
        ...


class VideoGenerator(Protocol):
    def assemble(
        self,
        *,
        story: Story,
        image_paths: list[Path],
        out_dir: Path,
        progress: Callable[[float], None] | None = None,
        ledger: Ledger | None = None,
    ) -> VideoOutputs:
        """The film from the stills; `progress` hears the share rendered (0 to 1) as it goes."""
        ...


class TextModel(Protocol):
    """A hosted language model answering with JSON that follows `schema` (a JSON Schema)."""

    name: str

    def generate_json(self, *, prompt: str, schema: dict[str, Any], seed: int) -> str: ...


class ImageModel(Protocol):
    """A hosted image model: one picture for a prompt, as encoded bytes (PNG, JPEG...)."""

    name: str

    def generate_image(self, *, prompt: str, aspect_ratio: str) -> bytes: ...


class VideoModel(Protocol):
    """A hosted image-to-video model working as long-running operations."""

    name: str

    def start_clip(self, *, prompt: str, image: bytes, seconds: int) -> str:
        """Start one clip from a still; returns the operation's name."""
        ...

    def clip(self, operation: str) -> bytes | None:
        """The finished clip (MP4), or None while the operation still runs."""
        ...


@dataclass(frozen=True)
class Models:
    """The hosted models the `gemini` generator set calls (built by the composition root);
    `video` only where clips are filmed (DEEPFLIX_GENAI_VIDEO=veo)."""

    text: TextModel
    image: ImageModel
    video: VideoModel | None = None


@dataclass(frozen=True)
class Generators:
    story: StoryGenerator
    images: ImageGenerator
    video: VideoGenerator
    kind: str = "cpu"  # the set's name: what made an artifact, unless its generator says


def made_by(generator: object, kind: str) -> str:
    """The name a status view shows for the generator: its `source` (a hosted model's
    name), else the set's."""
    return str(getattr(generator, "source", None) or kind)
