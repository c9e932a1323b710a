"""The work of each stage: generate, then store the outputs as the movie's artifacts."""

from __future__ import annotations

import contextvars
from collections.abc import Callable, Generator
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import BaseModel, Field

from deepflix.pipeline import usage
from deepflix.pipeline.models import (
    CAPTIONS,
    POSTER,
    STORY,
    VIDEO,
    ModelUsage,
    Movie,
    Stage,
    scene_image,
)
from deepflix.pipeline.ports import ArtifactStore
from deepflix.stages.generators.base import Generators, ImageGenerator, Scene, Story, made_by


class WorkNote(BaseModel):
    """What stage work records on the movie while it runs (pipeline.events.StageNoted)."""

    notes: dict[str, str] = Field(default_factory=dict)
    usage: list[ModelUsage] = Field(default_factory=list)


def _no_notes(note: WorkNote) -> None:
    """Where nobody keeps notes (a unit test's context): they are dropped."""


@dataclass(frozen=True)
class StageContext:
    movie: Movie
    generators: Generators
    artifacts: ArtifactStore
    workdir: Path
    progress: Callable[[int], None]
    # Recorded on the movie before it returns (it raises if it could not be).
    note: Callable[[WorkNote], None] = field(default=_no_notes)


Outputs = dict[str, str]  # artifact name -> storage path
# Not an artifact: the name of what made the stage's artifacts, among its outputs so it is
# recorded with the outcome (artifact names never start with "@").
GENERATOR = "@generator"


class MovieLedger:
    """The video stage's notes on the movie: what earlier attempts recorded, and each new
    record reported through the pipeline's store before the work goes on."""

    def __init__(self, ctx: StageContext, stage: Stage) -> None:
        self._ctx = ctx
        self._known = dict(ctx.movie.stages[stage].notes)

    def read(self) -> dict[str, str]:
        return dict(self._known)

    def record(self, key: str, value: str) -> None:
        self._ctx.note(WorkNote(notes={key: value}))
        self._known[key] = value


def run_stage(stage: Stage, ctx: StageContext) -> Outputs:
    """The stage's work, its hosted models' usage noted on the movie call by call."""

    def sink(u: ModelUsage) -> None:
        ctx.note(WorkNote(usage=[u]))

    with usage.collecting(sink):
        return PROCESSORS[stage](ctx)


def _put(ctx: StageContext, stage: Stage, name: str, local: Path) -> str:
    """Stored under the attempt that made it: a stale run of an earlier attempt cannot
    overwrite it, and later stages read the paths the winning attempt recorded."""
    attempt = ctx.movie.stages[stage].attempts
    return ctx.artifacts.put(ctx.movie.id, name, local, attempt=attempt)


def _load_story(ctx: StageContext) -> Story:
    local = ctx.workdir / STORY
    ctx.artifacts.fetch(ctx.movie.artifacts[STORY], local)
    return Story.model_validate_json(local.read_bytes())


def run_story(ctx: StageContext) -> Outputs:
    req = ctx.movie.request
    story = ctx.generators.story.write_story(
        prompt=req.prompt,
        title=req.title,
        style=req.style,
        scene_count=req.scene_count,
        seed=ctx.movie.seed,
    )
    local = ctx.workdir / STORY
    # pydantic's own encoder, in Rust: the standard library's json module is much slower.
    local.write_text(story.model_dump_json(indent=2), encoding="utf-8")
    made = made_by(ctx.generators.story, ctx.generators.kind)
    return {STORY: _put(ctx, Stage.story, STORY, local), GENERATOR: made}


def render_images(images: ImageGenerator, story: Story, workdir: Path) -> Generator[Path]:
    """Every scene's still in workdir, `images.threads` at a time, in scene order."""

    def render(scene: Scene) -> Path:
        path = workdir / scene_image(scene.index)
        images.render_scene(story=story, scene=scene, out_path=path)
        return path

    if images.threads <= 1:  # no pool: threads and hand-offs would be all it added
        yield from map(render, story.scenes)
        return
    # Each still in a copy of this context: its model's usage goes to this stage's sink.
    here = contextvars.copy_context()

    def render_here(scene: Scene) -> Path:
        return here.copy().run(render, scene)

    # On a failure or a close, map cancels the stills not yet started.
    with ThreadPoolExecutor(images.threads, thread_name_prefix="images") as pool:
        yield from pool.map(render_here, story.scenes)


def run_images(ctx: StageContext) -> Outputs:
    story = _load_story(ctx)
    out: Outputs = {}
    with closing(render_images(ctx.generators.images, story, ctx.workdir)) as stills:
        for n, local in enumerate(stills, start=1):
            out[local.name] = _put(ctx, Stage.images, local.name, local)
            ctx.progress(n * 100 // len(story.scenes))
    return out | {GENERATOR: made_by(ctx.generators.images, ctx.generators.kind)}


def run_video(ctx: StageContext) -> Outputs:
    story = _load_story(ctx)
    images = []
    for scene in story.scenes:
        local = ctx.workdir / scene_image(scene.index)
        ctx.artifacts.fetch(ctx.movie.artifacts[scene_image(scene.index)], local)
        images.append(local)
    ctx.progress(10)
    result = ctx.generators.video.assemble(
        story=story,
        image_paths=images,
        out_dir=ctx.workdir / "render",
        # The render is most of the stage: 10 % to 95 % as it goes, then storing the files.
        progress=lambda share: ctx.progress(10 + int(85 * share)),
        ledger=MovieLedger(ctx, Stage.video),
    )
    poster = f"{POSTER}{result.poster.suffix}"
    return {
        VIDEO: _put(ctx, Stage.video, VIDEO, result.video),
        poster: _put(ctx, Stage.video, poster, result.poster),
        CAPTIONS: _put(ctx, Stage.video, CAPTIONS, result.captions),
        GENERATOR: made_by(ctx.generators.video, ctx.generators.kind),
    }


PROCESSORS: dict[Stage, Callable[[StageContext], Outputs]] = {
    Stage.story: run_story,
    Stage.images: run_images,
    Stage.video: run_video,
}
