"""Identity on the API over Firestore (the emulator), with Firebase ID tokens as the Auth
emulator issues them: the owner and operator matrix of ADR 0017."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from starlette.testclient import TestClient

from deepflix.adapters.gcp.firebase_auth import EMULATOR_HOST, FirebaseTokens
from deepflix.adapters.gcp.firestore_store import FirestoreMovieStore
from deepflix.adapters.local.artifacts import LocalArtifactStore
from deepflix.handlers.api import Api
from deepflix.handlers.guard import RequestGuard
from deepflix.handlers.identity import Authenticator
from deepflix.handlers.writes import PipelineWrites
from deepflix.pipeline.service import Pipeline
from deepflix.settings import Settings
from devtools.emulators import PROJECT
from devtools.firebase_tokens import emulator_id_token
from tests.api_client import BASE_URL, SCRIPT
from tests.pipeline_fakes import Recorder

pytestmark = pytest.mark.emulator
BODY = {"prompt": "a lighthouse keeper befriends a storm"}


def bearer(uid: str, **claims: Any) -> dict[str, str]:
    return {"Authorization": f"Bearer {emulator_id_token(uid, **claims)}"}


ALICE, BOB, OPS = bearer("alice-uid"), bearer("bob-uid"), bearer("ops-uid", admin=True)


@pytest.fixture
def client(
    empty_firestore: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> Iterator[TestClient]:
    # Nothing listens there: verifying an emulator token contacts nothing.
    monkeypatch.setenv(EMULATOR_HOST, "127.0.0.1:9099")
    work = Recorder()
    pipeline = Pipeline(
        store=FirestoreMovieStore(client=empty_firestore),
        tasks=work,
        events=work,
        jobs=work,
        config=Settings().pipeline_config(),
    )
    api = Api(
        pipeline=pipeline,
        writes=PipelineWrites(pipeline),
        artifacts=LocalArtifactStore(tmp_path / "artifacts"),
        guard=RequestGuard.configured(allowed_hosts=[], allowed_origins=[]),
        auth=Authenticator([FirebaseTokens(PROJECT)]),  # as the api function's (runtime/auth.py)
        read_in_threads=True,
    )
    with TestClient(api.app(), BASE_URL, raise_server_exceptions=False, headers=SCRIPT) as c:
        yield c


def create(client: TestClient, who: dict[str, str], key: str | None = None) -> str:
    headers = who | ({"Idempotency-Key": key} if key else {})
    r = client.post("/api/movies", json=BODY, headers=headers)
    assert r.status_code == 202, r.text
    return str(r.json()["movie_id"])


def test_no_token_or_one_of_another_project_is_401(client: TestClient) -> None:
    for headers in (
        {},
        bearer("alice-uid", project="someone-elses"),
        {"Authorization": "Bearer x"},
    ):
        r = client.get("/api/movies", headers=headers)
        assert r.status_code == 401, headers
        assert r.json()["error"]["code"] == "unauthenticated"
    assert client.get("/healthz").status_code == 200


def test_another_users_movie_is_not_found(client: TestClient) -> None:
    movie_id = create(client, ALICE)
    for path in (
        f"/api/movies/{movie_id}",
        f"/api/movies/{movie_id}/status",
        f"/api/queue/{movie_id}/position",
    ):
        assert client.get(path, headers=ALICE).status_code == 200, path
        theirs = client.get(path, headers=BOB)
        assert theirs.status_code == 404 and theirs.json()["error"]["code"] == "not_found"
    for action in ("cancel", "retry"):
        theirs = client.post(f"/api/movies/{movie_id}/{action}", headers=BOB)
        assert theirs.status_code == 404, theirs.text
    assert client.get(f"/api/movies/{movie_id}", headers=ALICE).json()["status"] != "cancelled"
    assert client.get(f"/api/movies/{movie_id}", headers=OPS).status_code == 200


def test_lists_and_idempotency_keys_are_each_owners_own(client: TestClient) -> None:
    alices = create(client, ALICE, key="nightly-7")
    bobs = create(client, BOB, key="nightly-7")
    assert bobs != alices
    assert create(client, BOB, key="nightly-7") == bobs

    def listed(who: dict[str, str], query: str = "") -> set[str]:
        r = client.get(f"/api/movies{query}", headers=who)
        assert r.status_code == 200, r.text
        return {m["movie_id"] for m in r.json()["movies"]}

    assert listed(ALICE) == {alices}
    assert listed(BOB) == {bobs}
    assert listed(OPS, "?owner=all") == {alices, bobs}
    assert client.get("/api/movies?owner=all", headers=BOB).status_code == 403


def test_the_admin_claim_makes_an_operator(client: TestClient) -> None:
    refused = client.post("/api/admission/pause", headers=ALICE)
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "forbidden"
    assert client.get("/api/queues", headers=ALICE).status_code == 403
    # Only the boolean claim counts: a string "true" is no operator.
    assert (
        client.post(
            "/api/admission/pause", headers=bearer("x", extra={"admin": "true"})
        ).status_code
        == 403
    )
    paused = client.post("/api/admission/pause", headers=OPS)
    assert paused.status_code == 200 and paused.json()["admission_paused"] is True
    assert client.post("/api/admission/resume", headers=OPS).status_code == 200
