"""Identity on a real `deepflix serve`: the local user, then API keys made by `deepflix keys`
while it runs, the owner and operator checks through the API process and its write channel,
and the refusal to serve other machines without a key (ADR 0017)."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

import pytest

from devtools.emulators import free_port
from devtools.service import service_env
from tests.e2e.conftest import Service
from tests.e2e.helpers import keys, new_key

pytestmark = pytest.mark.e2e
TERMINAL = {"succeeded", "failed", "cancelled"}


def test_the_matrix_on_a_running_service(make_service: Callable[..., Service]) -> None:
    service = make_service(generators="instant")

    def ask(method: str, path: str, who: dict[str, str], **kw: Any) -> tuple[int, Any]:
        return service.request(method, path, headers=who, **kw)

    code, local = ask("POST", "/api/movies", {}, body={"prompt": "made by the local user"})
    assert code == 202, local
    alice = new_key(service, "alice-laptop", "alice")
    bob = new_key(service, "bob-ci", "bob")
    ops = new_key(service, "oncall", "ops", "--admin")
    listed = keys(service, "list")
    assert "alice-laptop" in listed.stdout and "dfx_" in listed.stdout
    assert alice["Authorization"][7:] not in listed.stdout  # never the key itself

    # Keys exist: this machine's requests need one too.
    code, refused = ask("GET", "/api/movies", {})
    assert code == 401 and refused["error"]["code"] == "unauthenticated"
    assert ask("GET", "/healthz", {})[0] == 200

    code, created = ask(
        "POST",
        "/api/movies",
        alice | {"Idempotency-Key": "k-1"},
        body={"prompt": "a kite over the dunes", "scene_count": 1},
    )
    assert code == 202, created
    movie_id = created["movie_id"]
    deadline = time.monotonic() + 120
    while True:
        status = ask("GET", f"/api/movies/{movie_id}/status", alice)[1]
        if status["status"] in TERMINAL:
            break
        assert time.monotonic() < deadline, status
        time.sleep(0.1)
    assert status["status"] == "succeeded", status
    video = status["artifacts"]["video"]
    assert ask("GET", video, alice)[0] == 200

    for path in (
        f"/api/movies/{movie_id}",
        f"/api/movies/{movie_id}/status",
        f"/api/queue/{movie_id}/position",
        video,
    ):
        code, answer = ask("GET", path, bob)
        assert code == 404 and answer["error"]["code"] == "not_found", (path, answer)
    for action in ("cancel", "retry"):  # through the write channel, which carries the owner
        code, answer = ask("POST", f"/api/movies/{movie_id}/{action}", bob)
        assert code == 404 and answer["error"]["code"] == "not_found", (action, answer)
    # Its owner hears why a retry is refused: the owner check came first for Bob.
    assert ask("POST", f"/api/movies/{movie_id}/retry", alice)[0] == 409

    def ids(who: dict[str, str], query: str = "") -> set[str]:
        code, page = ask("GET", f"/api/movies{query}", who)
        assert code == 200, page
        return {m["movie_id"] for m in page["movies"]}

    code, bobs = ask(
        "POST",
        "/api/movies",
        bob | {"Idempotency-Key": "k-1"},
        body={"prompt": "a kite over the dunes", "scene_count": 1},
    )
    assert code == 202 and bobs["movie_id"] != movie_id
    assert ids(alice) == {movie_id}
    assert ids(bob) == {bobs["movie_id"]}
    assert ids(ops, "?owner=all") == {movie_id, bobs["movie_id"], local["movie_id"]}
    assert ask("GET", "/api/movies?owner=all", bob)[0] == 403

    code, answer = ask("POST", "/api/admission/pause", bob)
    assert code == 403 and answer["error"]["code"] == "forbidden"
    code, queues = ask("POST", "/api/admission/pause", ops)
    assert code == 200 and queues["admission_paused"] is True
    assert ask("POST", "/api/admission/resume", ops)[0] == 200

    revoked = keys(service, "revoke", "bob-ci")
    assert revoked.returncode == 0 and "revoked dfx_" in revoked.stdout
    assert ask("GET", "/api/movies", bob)[0] == 401


def serve_on_every_address(env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "deepflix.entrypoints.cli", "serve"],
        env=env | {"DEEPFLIX_HOST": "0.0.0.0", "PORT": str(free_port())},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_serving_other_machines_needs_a_key_first(tmp_path: Any) -> None:
    data = tmp_path / "data"
    env = service_env(data, generators="instant")
    proc = serve_on_every_address(env)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 1, out + err
    (line,) = err.strip().splitlines()
    assert "DEEPFLIX_HOST=0.0.0.0" in line and "deepflix keys create" in line
    # With a key, it starts (and still answers no one without one).
    service = Service(data, env)
    made = keys(service, "create", "--name", "ops", "--owner", "ops", "--admin")
    assert made.returncode == 0, made.stderr
    service.env = env | {"DEEPFLIX_HOST": "0.0.0.0"}
    with service:
        assert service.request("GET", "/api/movies")[0] == 401
        headers = {"Authorization": f"Bearer {made.stdout.strip()}"}
        assert service.request("GET", "/api/queues", headers=headers)[0] == 200
