"""The `gemini` generator set: a hosted model writes the story and paints the stills.

The models are ports (base.TextModel, base.ImageModel); the Google clients behind them live in
adapters/gcp/ and are given here by the composition root. The film is the CPU renderer's.
"""

from __future__ import annotations

import io
from pathlib import Path

from PIL import Image, ImageOps
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from deepflix.pipeline.errors import RetryableStageError
from deepflix.stages.generators.base import (
    Character,
    ImageModel,
    Scene,
    Story,
    TextModel,
)

WIDTH, HEIGHT = 1280, 720


class _DraftScene(BaseModel):
    model_config = ConfigDict(extra="ignore")

    heading: str = Field(description="A screenplay slug line, e.g. EXT. HARBOUR - DAWN")
    description: str = Field(description="What the camera sees, naming the characters in it")
    narration: str = Field(description="One or two sentences read over the scene")
    shot: str = Field(description="Camera notes: framing, lens, movement")
    mood: str = Field(description="One or two words")


# What the model is asked for: the story without the fields the service fills itself.
class _Draft(BaseModel):
    model_config = ConfigDict(extra="ignore")

    title: str
    logline: str
    characters: list[Character] = Field(min_length=1)
    scenes: list[_DraftScene] = Field(min_length=1)


def _schema() -> dict[str, object]:
    """The draft's JSON Schema, inlined: the response schema takes no `$ref`s."""
    schema = _Draft.model_json_schema()
    defs = schema.pop("$defs", {})

    def inline(node: object) -> object:
        if isinstance(node, dict):
            if "$ref" in node:
                return inline(defs[node["$ref"].rsplit("/", 1)[-1]])
            # Drop pydantic's "title" labels (strings), never a property named "title".
            skip = {k for k, v in node.items() if k == "title" and isinstance(v, str)}
            skip |= {"additionalProperties"}
            return {k: inline(v) for k, v in node.items() if k not in skip}
        if isinstance(node, list):
            return [inline(v) for v in node]
        return node

    out = inline(schema)
    assert isinstance(out, dict)  # nosec B101 # an invariant, not a check of input
    return out


DRAFT_SCHEMA = _schema()


def story_prompt(*, prompt: str, title: str | None, style: str, scene_count: int) -> str:
    lines = [
        "Write a short film as JSON for this idea:",
        prompt,
        f"Exactly {scene_count} scenes, in order. Visual style: {style}.",
        "Give every character a fixed visual description (age, build, face, hair, clothes):",
        "the same words will be used to draw them in every scene.",
    ]
    if title:
        lines.append(f"The title is {title!r}.")
    return "\n".join(lines)


class HostedStoryGenerator:
    """Asks the text model for a draft in the story's schema and validates it into a Story."""

    def __init__(self, *, text: TextModel, scene_seconds: float) -> None:
        self.text = text
        self.scene_seconds = scene_seconds

    @property
    def source(self) -> str:
        return self.text.name

    def write_story(
        self, *, prompt: str, title: str | None, style: str, scene_count: int, seed: int
    ) -> Story:
        answer = self.text.generate_json(
            prompt=story_prompt(prompt=prompt, title=title, style=style, scene_count=scene_count),
            schema=DRAFT_SCHEMA,
            seed=seed,
        )
        return story_from_draft(
            answer,
            source=self.text.name,
            prompt=prompt,
            title=title,
            style=style,
            scene_count=scene_count,
            seed=seed,
            scene_seconds=self.scene_seconds,
        )


def story_from_draft(
    answer: str | bytes,
    *,
    source: str,
    prompt: str,
    title: str | None,
    style: str,
    scene_count: int,
    seed: int,
    scene_seconds: float,
) -> Story:
    """A model's JSON draft (DRAFT_SCHEMA) as the Story, with `scene_count` scenes."""
    try:
        draft = _Draft.model_validate_json(answer)
    except ValidationError as e:
        # The schema was given, so this is the model's slip; another try may well pass.
        raise RetryableStageError(
            f"{source} answered JSON that is not a story: {e.error_count()} errors,"
            f" first: {e.errors()[0]['msg']}",
            code="model_bad_output",
        ) from e
    if len(draft.scenes) < scene_count:
        raise RetryableStageError(
            f"{source} wrote {len(draft.scenes)} scenes of the {scene_count} asked",
            code="model_bad_output",
        )
    scenes = [
        Scene(index=i, duration_s=scene_seconds, **s.model_dump())
        for i, s in enumerate(draft.scenes[:scene_count])
    ]
    return Story(
        prompt=prompt,
        title=title or draft.title,
        logline=draft.logline,
        style=style,
        seed=seed,
        characters=draft.characters,
        scenes=scenes,
    )


def image_prompt(story: Story, scene: Scene) -> str:
    """The scene's picture, with every character it names described as in every other scene."""
    text = f"{scene.description} {scene.narration}".lower()
    cast = [c for c in story.characters if c.name.split()[0].lower() in text] or story.characters
    lines = [
        f"A film still, 16:9, in this style: {story.style}. Film: {story.title}.",
        f"Scene: {scene.heading}. {scene.description}",
        f"Camera: {scene.shot}. Mood: {scene.mood}.",
        *(f"{c.name} ({c.role}): {c.description}" for c in cast),
        "No text, captions or watermarks in the picture.",
    ]
    return "\n".join(lines)


def to_still(data: bytes, out_path: Path) -> None:
    """Any picture the model sends, scaled and centre-cropped to the 1280x720 RGB PNG the
    video stage takes."""
    try:
        with Image.open(io.BytesIO(data)) as img:
            still = ImageOps.fit(img.convert("RGB"), (WIDTH, HEIGHT), Image.Resampling.LANCZOS)
    except OSError as e:
        raise RetryableStageError(
            f"the image model sent bytes that are not a picture: {e}", code="model_bad_output"
        ) from e
    tmp = out_path.with_suffix(".tmp.png")
    still.save(tmp, format="PNG")
    tmp.replace(out_path)


class HostedImageGenerator:
    """One still per scene from the image model. Calls wait on the network, so a few run at
    once."""

    def __init__(self, *, image: ImageModel, threads: int = 4) -> None:
        self.image = image
        self.threads = threads

    @property
    def source(self) -> str:
        return self.image.name

    def render_scene(self, *, story: Story, scene: Scene, out_path: Path) -> None:
        data = self.image.generate_image(prompt=image_prompt(story, scene), aspect_ratio="16:9")
        to_still(data, out_path)
