"""The API in this process, on the embedded store, for tests that talk HTTP to it."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from starlette.testclient import TestClient

from deepflix.adapters.local.artifacts import LocalArtifactStore
from deepflix.adapters.local.store import SqliteMovieStore
from deepflix.handlers.api import Api
from deepflix.handlers.writes import PipelineWrites
from deepflix.pipeline.service import Pipeline
from deepflix.settings import Settings
from tests.pipeline_fakes import Recorder


@dataclass
class InProcess:
    client: TestClient
    api: Api
    pipeline: Pipeline
    artifacts: LocalArtifactStore


@contextmanager
def in_process(tmp_path: Path) -> Iterator[InProcess]:
    work = Recorder()
    pipeline = Pipeline(
        store=SqliteMovieStore(tmp_path / "movies.db"),
        tasks=work,
        events=work,
        jobs=work,
        config=Settings().pipeline_config(),
    )
    artifacts = LocalArtifactStore(tmp_path / "artifacts")
    api = Api(
        pipeline=pipeline,
        writes=PipelineWrites(pipeline),
        artifacts=artifacts,
        local_file=artifacts.resolve,
    )
    with TestClient(api.app(), raise_server_exceptions=False) as client:
        yield InProcess(client, api, pipeline, artifacts)
