"""Quotas (429 rate_limited with Retry-After) and CORS (preflight, allowed origins) on the API
over the embedded store."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from deepflix.adapters.local.artifacts import LocalArtifactStore
from deepflix.adapters.local.store import SqliteMovieStore
from deepflix.handlers.api import Api
from deepflix.handlers.cors import Cors
from deepflix.handlers.guard import RequestGuard
from deepflix.handlers.identity import Authenticator
from deepflix.handlers.writes import PipelineWrites
from deepflix.pipeline.identity import Principal
from deepflix.pipeline.quotas import Quotas, RateLimited
from deepflix.pipeline.service import Pipeline
from deepflix.settings import Settings
from tests.api_client import BASE_URL, SCRIPT
from tests.pipeline_fakes import Recorder

pytestmark = pytest.mark.integration
APP = "https://app.example"


def token_t(token: str) -> Principal | None:
    return Principal("anonymous") if token == "t" else None


@contextmanager
def served(tmp_path: Path, **options: Any) -> Iterator[tuple[TestClient, Pipeline]]:
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
        guard=RequestGuard.local(
            host="127.0.0.1", port=8080, allowed_hosts=[], allowed_origins=[APP]
        ),
        local_file=artifacts.resolve,
        # Without a token, or with the token "t": the owner "anonymous".
        auth=Authenticator([token_t], anonymous=lambda: Principal("anonymous")),
        **options,
    )
    with TestClient(api.app(), BASE_URL, raise_server_exceptions=False, headers=SCRIPT) as c:
        yield c, pipeline


def create(client: TestClient, prompt: str = "a kite") -> Any:
    return client.post("/api/movies", json={"prompt": prompt})


def test_the_creates_past_the_window_quota_get_429_with_retry_after(tmp_path: Path) -> None:
    with served(tmp_path, quotas=Quotas(creates_per_window=3)) as (client, _):
        for i in range(3):
            assert create(client, f"movie {i}").status_code == 202
        answer = create(client)
        assert answer.status_code == 429
        assert answer.json()["error"]["code"] == "rate_limited"
        assert 1 <= int(answer.headers["Retry-After"]) <= 60
        assert answer.json()["error"]["details"]["limit"] == 3


def test_the_window_frees_as_the_oldest_create_leaves_it(tmp_path: Path) -> None:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    quotas = Quotas(creates_per_window=2, window_s=60)
    with served(tmp_path) as (client, pipeline):
        for seconds in (0, 40):
            pipeline.clock = lambda s=seconds: now + timedelta(seconds=s)  # type: ignore[misc]
            assert create(client).status_code == 202
        store = pipeline.store
        with pytest.raises(RateLimited, match="at most 2 movies") as info:
            quotas.check(store, "anonymous", now + timedelta(seconds=45))  # type: ignore[arg-type]
        assert info.value.retry_after_s == 15
        quotas.check(store, "anonymous", now + timedelta(seconds=61))  # type: ignore[arg-type]


def test_over_the_active_cap_gets_429_until_one_finishes(tmp_path: Path) -> None:
    with served(tmp_path, quotas=Quotas(active_per_owner=2)) as (client, _):
        first = create(client).json()["movie_id"]
        assert create(client).status_code == 202
        refused = create(client)
        assert refused.status_code == 429 and "Retry-After" in refused.headers
        assert refused.json()["error"]["details"] == {"limit": 2, "active": 2}
        assert client.post(f"/api/movies/{first}/cancel").status_code == 200
        assert create(client).status_code == 202  # a cancelled movie is no longer active


def test_the_global_queue_cap_refuses_everyone(tmp_path: Path) -> None:
    with served(tmp_path, quotas=Quotas(queue_cap=1)) as (client, pipeline):
        for _ in range(2):
            create(client)
        assert sum(c.waiting for c in pipeline.counts().values()) >= 1
        answer = create(client)
        assert answer.status_code == 429
        assert answer.json()["error"]["details"]["queue_cap"] == 1


def test_no_quota_by_default(tmp_path: Path) -> None:
    with served(tmp_path) as (client, _):
        assert all(create(client).status_code == 202 for _ in range(5))


def test_settings_give_the_quotas() -> None:
    s = Settings.model_validate(
        {"quota_active_movies": 3, "quota_creates_per_minute": 10, "queue_cap": 500}
    )
    assert s.quotas() == Quotas(active_per_owner=3, creates_per_window=10, queue_cap=500)


PREFLIGHT = {
    "Access-Control-Request-Method": "POST",
    "Access-Control-Request-Headers": "authorization",
}


def test_a_preflight_from_an_allowed_origin_gets_204_with_the_headers(tmp_path: Path) -> None:
    with served(tmp_path, cors=Cors.configured([APP + "/"])) as (client, _):
        answer = client.options("/api/movies", headers={"Origin": APP, **PREFLIGHT})
        assert answer.status_code == 204
        h = answer.headers
        assert h["Access-Control-Allow-Origin"] == APP
        assert "POST" in h["Access-Control-Allow-Methods"]
        allowed = {x.strip().lower() for x in h["Access-Control-Allow-Headers"].split(",")}
        assert {"authorization", "content-type", "idempotency-key"} <= allowed
        assert "Access-Control-Allow-Credentials" not in h
        assert "Origin" in h["Vary"]


def test_another_origin_gets_no_cors_headers(tmp_path: Path) -> None:
    with served(tmp_path, cors=Cors.configured([APP])) as (client, _):
        answer = client.options(
            "/api/movies", headers={"Origin": "https://evil.example", **PREFLIGHT}
        )
        assert answer.status_code == 403
        assert not [k for k in answer.headers if k.lower().startswith("access-control-")]
        read = client.get("/api/movies", headers={"Origin": "https://evil.example"})
        assert read.status_code == 200 and "Access-Control-Allow-Origin" not in read.headers


def test_answers_to_an_allowed_origin_name_it_never_a_wildcard(tmp_path: Path) -> None:
    with served(tmp_path, cors=Cors.configured(["*", APP])) as (client, _):
        read = client.get("/api/movies", headers={"Origin": APP})
        assert read.headers["Access-Control-Allow-Origin"] == APP
        assert "Retry-After" in read.headers["Access-Control-Expose-Headers"]
        made = client.post(
            "/api/movies",
            json={"prompt": "x"},
            headers={"Origin": APP, "Authorization": "Bearer t"},
        )
        assert made.status_code == 202 and made.headers["Access-Control-Allow-Origin"] == APP
        other = client.options("/api/movies", headers={"Origin": "https://x.example", **PREFLIGHT})
        assert other.status_code == 403  # '*' in the settings allows nobody
    assert Cors.configured(["*"]).origins == frozenset()
