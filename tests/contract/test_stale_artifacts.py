"""A stale Cloud Run execution, still uploading after its attempt was given up, cannot
overwrite the files of the attempt the movie recorded (Cloud Storage's API, a local fake)."""

from __future__ import annotations

from pathlib import Path

import pytest

from deepflix.adapters.gcp.storage import GcsArtifactStore
from deepflix.pipeline.models import STORY, Movie, Stage, StageStatus, scene_image
from deepflix.stages.generators.base import Generators, Scene, Story
from deepflix.stages.generators.instant import InstantStoryGenerator, InstantVideoGenerator
from deepflix.stages.processors import GENERATOR, StageContext, run_images
from tests.contract.test_artifacts_contract import BUCKET, gcs_client
from tests.factories import movie as new_movie
from tests.gcp_fakes import fake_gcs

pytestmark = pytest.mark.contract


class MarkedStills:
    """Stills whose bytes say which attempt drew them."""

    threads = 1

    def __init__(self, mark: bytes) -> None:
        self.mark = mark

    def render_scene(self, *, story: Story, scene: Scene, out_path: Path) -> None:
        out_path.write_bytes(self.mark + b" scene %d" % scene.index)


def at_attempt(movie: Movie, attempt: int) -> Movie:
    st = movie.stages[Stage.images].model_copy(
        update={"status": StageStatus.running, "attempts": attempt}
    )
    return movie.model_copy(update={"stages": {**movie.stages, Stage.images: st}})


def images(movie: Movie, store: GcsArtifactStore, mark: bytes, work: Path) -> dict[str, str]:
    """The stills stored by one run of the images stage (its artifacts, not its generator)."""
    work.mkdir()
    generators = Generators(InstantStoryGenerator(), MarkedStills(mark), InstantVideoGenerator())
    out = run_images(StageContext(movie, generators, store, work, lambda _: None))
    return {name: path for name, path in out.items() if name != GENERATOR}


def test_a_stale_attempt_cannot_overwrite_the_recorded_attempts_stills(tmp_path: Path) -> None:
    with fake_gcs(BUCKET) as gcs:
        store = GcsArtifactStore(bucket=BUCKET, client=lambda: gcs_client(gcs.url))
        base = new_movie(scene_count=2)
        story = InstantStoryGenerator().write_story(
            prompt="p", title=None, style=base.request.style, scene_count=2, seed=base.seed
        )
        source = tmp_path / STORY
        source.write_text(story.model_dump_json())
        base = base.model_copy(update={"artifacts": {STORY: store.put(base.id, STORY, source)}})

        # Attempt 1 timed out; attempt 2 ran and succeeded: the movie records its paths.
        recorded = images(at_attempt(base, 2), store, b"attempt 2", tmp_path / "w2")
        # Then attempt 1's execution, cancelled but not yet stopped, finishes its uploads.
        stale = images(at_attempt(base, 1), store, b"attempt 1", tmp_path / "w1")

        assert set(recorded.values()).isdisjoint(stale.values())
        assert recorded[scene_image(1)] == f"movies/{base.id}/a2/{scene_image(1)}"
        for name, path in recorded.items():
            back = tmp_path / f"back-{name}"
            store.fetch(path, back)  # what the video stage reads: the recorded attempt's own
            assert back.read_bytes().startswith(b"attempt 2"), name
