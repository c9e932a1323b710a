"""Artifacts reach clients through the owner-checked route: no storage path in a status answer,
no signing on a status read, one signing per download (a redirect) in the cloud."""

from __future__ import annotations

from pathlib import Path

import pytest
from starlette.testclient import TestClient

from deepflix.adapters.local.store import SqliteMovieStore
from deepflix.handlers.api import Api
from deepflix.handlers.guard import RequestGuard
from deepflix.handlers.identity import Authenticator
from deepflix.handlers.writes import PipelineWrites
from deepflix.pipeline.identity import Principal
from deepflix.pipeline.service import Pipeline
from deepflix.settings import Settings
from tests.api_client import BASE_URL, SCRIPT
from tests.factories import movie
from tests.pipeline_fakes import Recorder

pytestmark = pytest.mark.integration
STORED = {
    "story.json": "movies/{id}/story.json",
    "scene-01.png": "movies/{id}/scene-01.png",
    "movie.mp4": "movies/{id}/a2/movie.mp4",  # an attempt's own name (ADR 0023)
}


class SigningBucket:
    """An ArtifactStore of a bucket whose url() signs (and counts each signing)."""

    def __init__(self) -> None:
        self.signed: list[str] = []

    def put(self, movie_id: str, name: str, source: Path, *, attempt: int | None = None) -> str:
        raise AssertionError("the API stores nothing")

    def fetch(self, path: str, dest: Path) -> None:
        raise AssertionError("the API fetches nothing")

    def url(self, path: str) -> str:
        self.signed.append(path)
        return f"https://storage.googleapis.com/bucket/{path}?X-Goog-Expires=900&X-Goog-Signature=s"

    def delete(self, movie_id: str) -> int:
        raise AssertionError("the API deletes nothing here")


def test_status_links_the_route_and_a_download_signs_once(tmp_path: Path) -> None:
    work = Recorder()
    store = SqliteMovieStore(tmp_path / "movies.db")
    pipeline = Pipeline(
        store=store, tasks=work, events=work, jobs=work, config=Settings().pipeline_config()
    )
    m = movie()
    m = m.model_copy(update={"artifacts": {k: v.format(id=m.id) for k, v in STORED.items()}})
    store.create(m, idempotency_key=None, fingerprint="f")
    bucket = SigningBucket()
    api = Api(
        pipeline=pipeline,
        writes=PipelineWrites(pipeline),
        artifacts=bucket,
        guard=RequestGuard.local(host="127.0.0.1", port=8080, allowed_hosts=[], allowed_origins=[]),
        auth=Authenticator([], anonymous=lambda: Principal(m.owner)),  # the movie's owner
        local_file=None,  # the cloud: artifacts live in a bucket
    )
    with TestClient(api.app(), BASE_URL, headers=SCRIPT) as client:
        for _ in range(3):
            status = client.get(f"/api/movies/{m.id}/status")
            assert status.status_code == 200
            # Neither gs:// nor a bare object name (a link starts /api/movies/...).
            assert "gs://" not in status.text and f'"movies/{m.id}' not in status.text
        assert bucket.signed == []  # a status read signs nothing
        links = status.json()["artifacts"]
        assert links["video"] == f"/api/movies/{m.id}/artifacts/movie.mp4"
        assert links["images"] == [f"/api/movies/{m.id}/artifacts/scene-01.png"]
        download = client.get(links["video"], follow_redirects=False)
        assert download.status_code == 307
        assert download.headers["Location"].startswith("https://storage.googleapis.com/")
        assert download.headers["Cache-Control"] == "private, no-store"
        assert bucket.signed == [f"movies/{m.id}/a2/movie.mp4"]  # one signing, this download's
        missing = client.get(f"/api/movies/{m.id}/artifacts/nothing.mp4", follow_redirects=False)
        assert missing.status_code == 404 and len(bucket.signed) == 1
