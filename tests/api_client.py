"""The API in this process, on the embedded store, for tests that talk HTTP to it."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from starlette.testclient import TestClient

from deepflix.adapters.local.api_keys import ApiKeys
from deepflix.adapters.local.artifacts import LocalArtifactStore
from deepflix.adapters.local.db import Database
from deepflix.adapters.local.dead_letters import QueueDeadLetters
from deepflix.adapters.local.job_logs import JobLogFiles
from deepflix.adapters.local.queue import SqliteQueue
from deepflix.adapters.local.store import SqliteMovieStore
from deepflix.handlers.api import Api
from deepflix.handlers.guard import RequestGuard
from deepflix.handlers.writes import PipelineWrites
from deepflix.pipeline.operations import OperatorPorts
from deepflix.pipeline.ports import MovieStore
from deepflix.pipeline.service import Pipeline
from deepflix.runtime import auth
from deepflix.settings import Settings
from tests.pipeline_fakes import Recorder


@dataclass
class InProcess:
    client: TestClient
    api: Api
    pipeline: Pipeline
    artifacts: LocalArtifactStore
    keys: ApiKeys  # none at first: every request is the local user, as `deepflix serve`'s
    queue: SqliteQueue  # the dead letters' queue


# The service's own address, as `deepflix serve` would be bound to, and the header of a
# script's requests: tests that check the guard itself ask for a client without it.
BASE_URL = "http://127.0.0.1:8080"
SCRIPT = {"X-DeepFlix-Client": "tests"}


@contextmanager
def in_process(
    tmp_path: Path,
    *,
    headers: Mapping[str, str] = SCRIPT,
    store: Callable[[SqliteMovieStore], MovieStore] = lambda s: s,
) -> Iterator[InProcess]:
    """`store` may wrap the embedded store (to count what the answers read)."""
    work = Recorder()
    db = Database(tmp_path / "movies.db")
    keys = ApiKeys(db)
    artifacts = LocalArtifactStore(tmp_path / "artifacts")
    queue = SqliteQueue(db)
    pipeline = Pipeline(
        store=store(SqliteMovieStore(db)),
        tasks=work,
        events=work,
        jobs=work,
        config=Settings().pipeline_config(),
        unit_of_work=db.atomically,
        operator=OperatorPorts(
            artifacts=artifacts,
            dead_letters=QueueDeadLetters(queue),
            job_logs=JobLogFiles(tmp_path / "jobs"),
        ),
    )
    api = Api(
        pipeline=pipeline,
        writes=PipelineWrites(pipeline),
        artifacts=artifacts,
        guard=RequestGuard.local(host="127.0.0.1", port=8080, allowed_hosts=[], allowed_origins=[]),
        auth=auth.embedded(Settings(), keys),  # bound to 127.0.0.1, as by default
        local_file=artifacts.resolve,
    )
    app = api.app()
    with TestClient(app, BASE_URL, raise_server_exceptions=False, headers=dict(headers)) as client:
        yield InProcess(client, api, pipeline, artifacts, keys, queue)
