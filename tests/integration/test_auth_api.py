"""Who may see and do what on the embedded API: API keys, owners, operators (ADR 0017)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from deepflix.handlers.operations import OPERATIONS, Access
from deepflix.pipeline.transitions import Decision
from tests.api_client import InProcess, in_process

pytestmark = pytest.mark.integration
BODY = {"prompt": "a lighthouse keeper befriends a storm"}


@dataclass
class Callers:
    api: InProcess
    alice: dict[str, str]
    bob: dict[str, str]
    ops: dict[str, str]

    def create(self, who: dict[str, str], key: str | None = None) -> dict[str, Any]:
        headers = who | ({"Idempotency-Key": key} if key else {})
        r = self.api.client.post("/api/movies", json=BODY, headers=headers)
        assert r.status_code == 202, r.text
        return dict(r.json())


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


@pytest.fixture
def callers(tmp_path: Path) -> Iterator[Callers]:
    with in_process(tmp_path) as api:
        keys = api.keys
        alice = bearer(keys.create(name="alice-laptop", owner="alice", admin=False)[1])
        bob = bearer(keys.create(name="bob-ci", owner="bob", admin=False)[1])
        ops = bearer(keys.create(name="oncall", owner="ops", admin=True)[1])
        yield Callers(api, alice, bob, ops)


def with_story(api: InProcess, movie_id: str, tmp_path: Path) -> str:
    """Give the movie a stored story artifact, as its story stage would: its name."""
    source = tmp_path / "story.json"
    source.write_text('{"scenes": []}')
    path = api.artifacts.put(movie_id, "story.json", source)

    def add(movie: Any) -> Decision:
        return Decision(movie.model_copy(update={"artifacts": {"story": path}}))

    api.pipeline.store.mutate(movie_id, add)
    return "story"


def test_without_any_key_every_request_is_the_local_operator(tmp_path: Path) -> None:
    with in_process(tmp_path) as api:
        movie_id = api.client.post("/api/movies", json=BODY).json()["movie_id"]
        assert api.pipeline.get(movie_id).owner == "local"
        assert api.client.post("/api/admission/pause").status_code == 200
        # Once a key exists, the same request from this machine needs one.
        api.keys.create(name="first", owner="alice", admin=False)
        refused = api.client.get(f"/api/movies/{movie_id}")
        assert refused.status_code == 401
        assert refused.json()["error"]["code"] == "unauthenticated"
        assert refused.headers["WWW-Authenticate"] == "Bearer"


@pytest.mark.parametrize(
    "authorization",
    [None, "Bearer dfx_not-a-key", "Bearer", "Basic YWxpY2U6cw==", "Bearer not-even-dfx"],
)
def test_no_or_a_bad_credential_is_401(callers: Callers, authorization: str | None) -> None:
    headers = {"Authorization": authorization} if authorization is not None else {}
    for method, path in (("GET", "/api/movies"), ("POST", "/api/movies")):
        r = callers.api.client.request(method, path, json=BODY, headers=headers)
        assert r.status_code == 401, (method, path, r.text)
        assert r.json()["error"]["code"] == "unauthenticated"
    assert callers.api.pipeline.list_movies(owner=None, limit=10, cursor=None).movies == []


def test_health_and_the_document_stay_public(callers: Callers) -> None:
    assert callers.api.client.get("/healthz").status_code == 200
    assert callers.api.client.get("/openapi.json").status_code == 200
    assert callers.api.client.get("/").status_code == 200  # the page; its data needs a key


def test_another_users_movie_is_not_found_on_every_route(callers: Callers, tmp_path: Path) -> None:
    client = callers.api.client
    movie_id = callers.create(callers.alice)["movie_id"]
    name = with_story(callers.api, movie_id, tmp_path)
    reads = [
        f"/api/movies/{movie_id}",
        f"/api/movies/{movie_id}/status",
        f"/api/queue/{movie_id}/position",
        f"/api/movies/{movie_id}/artifacts/{name}",
    ]
    for path in reads:
        assert client.get(path, headers=callers.alice).status_code == 200, path
        theirs = client.get(path, headers=callers.bob)
        assert theirs.status_code == 404, path
        assert theirs.json()["error"]["code"] == "not_found"
        assert "alice" not in theirs.text
    for path in (f"/api/movies/{movie_id}/cancel", f"/api/movies/{movie_id}/retry"):
        r = client.post(path, headers=callers.bob)
        assert r.status_code == 404, (path, r.text)
        assert r.json()["error"]["code"] == "not_found"
    # Not cancelled; and the retry was refused as not found, not as a movie in no state
    # to retry (409), which its owner would hear.
    assert callers.api.pipeline.get(movie_id).status.value == "queued"
    # Its owner may cancel it.
    cancelled = client.post(f"/api/movies/{movie_id}/cancel", headers=callers.alice)
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
    # Its job logs, its live events and its removal are its owner's too.
    assert client.get(f"/api/movies/{movie_id}/events", headers=callers.bob).status_code == 404
    assert client.get(f"/api/movies/{movie_id}/logs", headers=callers.bob).status_code == 404
    assert client.delete(f"/api/movies/{movie_id}", headers=callers.bob).status_code == 404
    assert callers.api.pipeline.find(movie_id) is not None
    assert client.delete(f"/api/movies/{movie_id}", headers=callers.alice).status_code == 204
    assert callers.api.pipeline.find(movie_id) is None


def test_an_operator_sees_and_acts_on_every_movie(callers: Callers) -> None:
    client = callers.api.client
    movie_id = callers.create(callers.alice)["movie_id"]
    assert client.get(f"/api/movies/{movie_id}", headers=callers.ops).status_code == 200
    cancelled = client.post(f"/api/movies/{movie_id}/cancel", headers=callers.ops)
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"


def test_a_list_shows_only_the_callers_movies_unless_an_operator_asks_for_all(
    callers: Callers,
) -> None:
    client = callers.api.client

    def listed(who: dict[str, str], query: str = "") -> set[str]:
        r = client.get(f"/api/movies{query}", headers=who)
        assert r.status_code == 200, r.text
        return {m["movie_id"] for m in r.json()["movies"]}

    alices = {callers.create(callers.alice)["movie_id"] for _ in range(2)}
    bobs = {callers.create(callers.bob)["movie_id"]}
    assert listed(callers.alice) == alices
    assert listed(callers.bob) == bobs
    assert listed(callers.bob, "?owner=bob") == bobs
    assert listed(callers.ops) == set()  # an operator's own, unless asked
    assert listed(callers.ops, "?owner=all") == alices | bobs
    assert listed(callers.ops, "?owner=alice") == alices
    for query in ("?owner=all", "?owner=alice"):
        refused = client.get(f"/api/movies{query}", headers=callers.bob)
        assert refused.status_code == 403
        assert refused.json()["error"]["code"] == "forbidden"


def test_reusing_another_users_idempotency_key_makes_the_callers_own_movie(
    callers: Callers,
) -> None:
    client = callers.api.client
    alices = callers.create(callers.alice, key="nightly-42")["movie_id"]
    bobs = callers.create(callers.bob, key="nightly-42")["movie_id"]
    assert bobs != alices
    assert callers.api.pipeline.get(bobs).owner == "bob"
    assert client.get(f"/api/movies/{bobs}", headers=callers.bob).status_code == 200
    # Each key still returns its owner's first movie, and a conflict names only theirs.
    assert callers.create(callers.alice, key="nightly-42")["movie_id"] == alices
    assert callers.create(callers.bob, key="nightly-42")["movie_id"] == bobs
    other = client.post(
        "/api/movies",
        json={"prompt": "another story"},
        headers=callers.bob | {"Idempotency-Key": "nightly-42"},
    )
    assert other.status_code == 409
    assert other.json()["error"]["details"] == {"movie_id": bobs}


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/api/admission/pause"),
        ("POST", "/api/admission/resume"),
        ("GET", "/api/queues"),
    ],
)
def test_operator_routes_are_403_to_users_and_200_to_operators(
    callers: Callers, method: str, path: str
) -> None:
    client = callers.api.client
    refused = client.request(method, path, headers=callers.alice)
    assert refused.status_code == 403
    assert refused.json()["error"]["code"] == "forbidden"
    assert client.request(method, path).status_code == 401
    allowed = client.request(method, path, headers=callers.ops)
    assert allowed.status_code == 200, allowed.text
    if path.endswith("pause"):
        assert allowed.json()["admission_paused"] is True


def test_a_user_pause_changes_nothing(callers: Callers) -> None:
    callers.api.client.post("/api/admission/pause", headers=callers.alice)
    assert callers.api.pipeline.admission_paused() is False


def test_a_revoked_key_is_refused(callers: Callers) -> None:
    assert callers.api.client.get("/api/movies", headers=callers.bob).status_code == 200
    assert callers.api.keys.revoke("bob-ci")
    assert callers.api.client.get("/api/movies", headers=callers.bob).status_code == 401
    # Revoking every key does not open the service again.
    for k in callers.api.keys.listed():
        callers.api.keys.revoke(k.id)
    assert callers.api.client.get("/api/movies").status_code == 401


def test_the_document_shows_who_may_call_each_operation(callers: Callers) -> None:
    doc = callers.api.client.get("/openapi.json").json()
    scheme = doc["components"]["securitySchemes"]["bearerAuth"]
    assert (scheme["type"], scheme["scheme"]) == ("http", "bearer")
    seen = set()
    for op in OPERATIONS:
        documented = doc["paths"][op.path][op.method.lower()]
        responses = set(documented["responses"])
        if op.access is Access.public:
            assert documented["security"] == [] and "401" not in responses, op.path
        else:
            assert documented["security"] == [{"bearerAuth": []}], op.path
            assert "401" in responses, op.path
        if op.access is Access.admin:
            assert "403" in responses, op.path
        seen.add((op.method, op.path, op.access))
    # The operator routes include these; a route is public only by being added here on purpose.
    assert {(m, p) for m, p, a in seen if a is Access.admin} >= {
        ("POST", "/api/admission/pause"),
        ("POST", "/api/admission/resume"),
        ("GET", "/api/queues"),
    }
    assert {(m, p) for m, p, a in seen if a is Access.public} == {
        ("GET", "/"),
        ("GET", "/healthz"),
        ("GET", "/openapi.json"),
    }
