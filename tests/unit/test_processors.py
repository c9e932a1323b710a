"""The stages' work on their artifacts: what the story file holds and how later stages read it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from deepflix.adapters.local.artifacts import LocalArtifactStore
from deepflix.pipeline.models import Stage
from deepflix.stages.executors import InlineExecutor
from deepflix.stages.generators.base import Generators
from deepflix.stages.generators.instant import (
    InstantImageGenerator,
    InstantStoryGenerator,
    InstantVideoGenerator,
)
from tests.factories import movie as make_movie

pytestmark = pytest.mark.unit


def test_the_story_file_is_indented_utf8_json_that_the_next_stages_read_back(
    tmp_path: Path,
) -> None:
    artifacts = LocalArtifactStore(tmp_path / "artifacts")
    gens = Generators(InstantStoryGenerator(), InstantImageGenerator(), InstantVideoGenerator())
    work = InlineExecutor(gens, artifacts, tmp_path)
    movie = make_movie(prompt="Café au lait — 東京の夜", scene_count=2)
    story = work.run(Stage.story, movie, lambda pct: None, 30)
    raw = (tmp_path / "artifacts" / story["story.json"]).read_bytes()
    assert "東京".encode() in raw  # UTF-8 as it is, not \u escapes
    assert raw.startswith(b'{\n  "')  # indented for people who open it
    assert json.loads(raw)["prompt"] == "Café au lait — 東京の夜"
    movie = movie.model_copy(update={"artifacts": story})
    images = work.run(Stage.images, movie, lambda pct: None, 30)
    assert sorted(images) == ["@generator", "scene-01.png", "scene-02.png"]
