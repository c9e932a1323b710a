"""infra/firestore.rules (the file firebase.json deploys) on the gcloud Firestore emulator started
with --rules: what a client may read and write with a Firebase ID token, over the REST API."""

from __future__ import annotations

import base64
import json
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from devtools import emulators
from devtools.emulators import PROJECT, Emulator

pytestmark = pytest.mark.emulator
ROOT = Path(__file__).resolve().parents[2]
DOCS = f"/v1/projects/{PROJECT}/databases/(default)/documents"
# The service's own documents (adapters/gcp): slots, statistics, idempotency keys, admission,
# queue counters. No client reads any of them.
INTERNAL = (
    "queues/story-0",
    "stats/story-0",
    "idempotency/0f1e2d",
    "control/admission",
    "queue_counts/story-0",
    "queue_buckets/story-1-0-0",
)


def rules_file() -> Path:
    """The rules firebase.json deploys: the test follows the file it names."""
    firebase = json.loads((ROOT / "firebase.json").read_text())
    return ROOT / str(firebase["firestore"]["rules"])


@pytest.fixture(scope="module")
def ruled() -> Iterator[Emulator]:
    try:
        emulator = emulators.firestore_with_rules(rules_file())
    except emulators.EmulatorMissing as e:
        pytest.skip(f"no Firestore emulator to check the rules on: {e}")
    try:
        seed(emulator)
        yield emulator
    finally:
        emulator.stop()


def id_token(uid: str, *, admin: bool = False) -> str:
    """A Firebase ID token as the emulator accepts it: unsigned (alg none)."""

    def part(value: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")

    now = int(time.time())
    claims: dict[str, Any] = {
        "iss": f"https://securetoken.google.com/{PROJECT}",
        "aud": PROJECT,
        "sub": uid,
        "user_id": uid,
        "auth_time": now,
        "iat": now,
        "exp": now + 3600,
        "firebase": {"sign_in_provider": "custom", "identities": {}},
    }
    if admin:
        claims["admin"] = True
    return f"{part({'alg': 'none', 'typ': 'JWT'})}.{part(claims)}."


def call(emulator: Emulator, method: str, path: str, token: str | None, body: Any = None) -> int:
    req = urllib.request.Request(
        f"http://{emulator.address}{DOCS}/{path}",
        data=json.dumps(body).encode() if body is not None else None,
        method=method,
        headers={"Content-Type": "application/json"},
    )
    if token is not None:
        req.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return int(resp.status)
    except urllib.error.HTTPError as e:
        return int(e.code)


def fields(**values: str) -> dict[str, Any]:
    return {"fields": {k: {"stringValue": v} for k, v in values.items()}}


def seed(emulator: Emulator) -> None:
    """Written as the service writes (the emulator's `owner` token bypasses the rules)."""
    for movie_id, owner in (("m-alice", "alice"), ("m-bob", "bob")):
        status = call(emulator, "PATCH", f"movies/{movie_id}", "owner", fields(owner=owner))
        assert status == 200, status
    for path in INTERNAL:
        assert call(emulator, "PATCH", path, "owner", fields(owner="alice")) == 200


def test_the_owner_reads_their_movie_and_nobody_else_does(ruled: Emulator) -> None:
    assert call(ruled, "GET", "movies/m-alice", id_token("alice")) == 200
    assert call(ruled, "GET", "movies/m-alice", id_token("bob")) == 403
    assert call(ruled, "GET", "movies/m-alice", None) == 403
    assert call(ruled, "GET", "movies/m-bob", id_token("alice")) == 403


def test_an_admin_reads_and_lists_and_a_user_cannot_list_everyone(ruled: Emulator) -> None:
    admin = id_token("operator", admin=True)
    assert call(ruled, "GET", "movies/m-alice", admin) == 200
    assert call(ruled, "GET", "movies/m-bob", admin) == 200
    assert call(ruled, "GET", "movies", admin) == 200
    assert call(ruled, "GET", "movies", id_token("alice")) == 403  # would include bob's


def test_every_client_write_is_refused(ruled: Emulator) -> None:
    for token in (id_token("alice"), id_token("operator", admin=True), None):
        assert call(ruled, "PATCH", "movies/m-alice", token, fields(owner="alice")) == 403
        assert call(ruled, "PATCH", "movies/m-new", token, fields(owner="alice")) == 403
        assert call(ruled, "DELETE", "movies/m-alice", token) == 403
    assert call(ruled, "GET", "movies/m-alice", "owner") == 200  # all still there


def test_the_services_own_collections_are_closed_to_clients(ruled: Emulator) -> None:
    for path in INTERNAL:
        for token in (id_token("alice"), id_token("operator", admin=True)):
            assert call(ruled, "GET", path, token) == 403, path
            assert call(ruled, "PATCH", path, token, fields(owner="alice")) == 403, path
