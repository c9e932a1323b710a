"""Internal endpoints verify Google ID tokens in the code: tokens signed by a local RSA key whose
certificate a local certificates URL serves, checked by the real verifier."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import flask
import pytest
from google.auth import crypt, jwt

from deepflix.adapters.gcp.oidc import GoogleIdTokens, TestTokens
from deepflix.entrypoints import cloud_functions as functions
from deepflix.handlers.internal_auth import InternalCallers
from deepflix.pipeline.callers import InvalidToken
from deepflix.runtime.edge import internal_callers
from deepflix.settings import Settings
from devtools.test_issuer import TestIssuer, issuer

pytestmark = pytest.mark.integration
SERVICE_URL = "https://us-central1-acme.cloudfunctions.net/tasks"
STORY_URL = "https://us-central1-acme.cloudfunctions.net/story_requested"
TASKS_SA = "deepflix-tasks-oidc@acme.iam.gserviceaccount.com"
SCHEDULER_SA = "deepflix-scheduler@acme.iam.gserviceaccount.com"
PUSH_SA = "deepflix-push@acme.iam.gserviceaccount.com"
STRANGER_SA = "someone@acme.iam.gserviceaccount.com"


@pytest.fixture(scope="module")
def local_issuer() -> Iterator[TestIssuer]:
    with issuer() as running:
        yield running


def tokens(iss: TestIssuer, email: str) -> TestTokens:
    return TestTokens(private_key_pem=iss.private_key, key_id=iss.kid, email=email)


def signed(issuer_: TestIssuer, **claims: Any) -> str:
    signer = crypt.RSASigner.from_string(issuer_.private_key, key_id=issuer_.kid)
    now = int(time.time())
    body = {"iat": now, "exp": now + 300, "email_verified": True} | claims
    token: bytes = jwt.encode(signer, body)
    return token.decode()


@pytest.fixture
def callers(local_issuer: TestIssuer) -> InternalCallers:
    return InternalCallers.of(
        GoogleIdTokens(certs_url=local_issuer.certs_url),
        audiences=[SERVICE_URL, STORY_URL],
        allowed=[TASKS_SA, SCHEDULER_SA, PUSH_SA],
    )


@pytest.fixture
def served(monkeypatch: pytest.MonkeyPatch, callers: InternalCallers) -> list[str]:
    """The tasks and stage functions over a stand-in service that records what ran."""
    calls: list[str] = []

    class Service:
        pipeline = SimpleNamespace(
            sweep=lambda: calls.append("sweep"),
            dispatch=lambda stage: calls.append(f"dispatch {stage.value}"),
            check_deadline=lambda movie_id, stage, attempt: calls.append(f"deadline {movie_id}"),
            time_out_overdue=lambda: calls.append("deadlines"),
            oldest_waiting_s=lambda: {},  # the sweep's queue-age gauge
        )
        runner = SimpleNamespace(handle=lambda data: calls.append(f"run {data['movie_id']}"))

        def prune(self) -> int:
            return 0

    monkeypatch.setattr(functions, "service", Service)
    monkeypatch.setattr(functions, "_callers", callers)
    return calls


TASKS = [
    ("/dispatch", {"stage": "story"}, "dispatch story"),
    ("/deadlines", {}, "deadlines"),
    ("/deadline", {"movie_id": "m1", "stage": "story", "attempt": 1}, "deadline m1"),
    ("/sweep", {}, "sweep"),
]


def call_tasks(path: str, body: Any, token: str | None) -> Any:
    headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
    with flask.Flask("tasks").test_request_context(path, method="POST", json=body, headers=headers):
        return functions.tasks(flask.request)


@pytest.mark.parametrize(("path", "body", "ran"), TASKS)
def test_each_task_endpoint_answers_401_401_403_then_200(
    served: list[str], local_issuer: TestIssuer, path: str, body: Any, ran: str
) -> None:
    assert call_tasks(path, body, None).status_code == 401
    wrong_audience = tokens(local_issuer, TASKS_SA)("https://elsewhere.example/tasks")
    answer = call_tasks(path, body, wrong_audience)
    assert answer.status_code == 401
    assert answer.get_json()["error"]["code"] == "unauthenticated"
    assert answer.headers["WWW-Authenticate"].startswith("Bearer")
    stranger = call_tasks(path, body, tokens(local_issuer, STRANGER_SA)(SERVICE_URL))
    assert stranger.status_code == 403 and stranger.get_json()["error"]["code"] == "forbidden"
    assert served == []  # nothing ran for any of them
    for caller in (TASKS_SA, SCHEDULER_SA):
        assert call_tasks(path, body, tokens(local_issuer, caller)(SERVICE_URL)).status_code == 200
    assert served == [ran, ran]


def push_body(movie_id: str) -> dict[str, Any]:
    data = {"movie_id": movie_id, "stage": "story", "attempt": 1}
    return {
        "message": {"data": base64.b64encode(json.dumps(data).encode()).decode()},
        "subscription": "projects/acme/subscriptions/deepflix-story-requested-push",
    }


def test_the_push_handler_answers_401_401_403_then_204(
    served: list[str], local_issuer: TestIssuer
) -> None:
    def push(token: str | None) -> int:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        ctx = flask.Flask("push").test_request_context(
            "/", method="POST", json=push_body("m7"), headers=headers
        )
        with ctx:
            answer: Any = functions.story_requested(flask.request)
            return int(answer.status_code)

    assert push(None) == 401
    assert push(tokens(local_issuer, PUSH_SA)("https://elsewhere.example")) == 401
    assert push(tokens(local_issuer, STRANGER_SA)(STORY_URL)) == 403
    assert served == []
    assert push(tokens(local_issuer, PUSH_SA)(STORY_URL)) == 204
    assert served == ["run m7"]


def test_tokens_google_would_not_issue_are_refused(
    callers: InternalCallers, local_issuer: TestIssuer
) -> None:
    good = {"aud": SERVICE_URL, "email": TASKS_SA}
    assert (
        callers.refusal(f"Bearer {signed(local_issuer, iss='accounts.google.com', **good)}") is None
    )
    refused = {
        "another issuer": signed(local_issuer, iss="https://evil.example", **good),
        "expired": signed(
            local_issuer, iss="https://accounts.google.com", exp=int(time.time()) - 600, **good
        ),
        "no email": signed(local_issuer, iss="https://accounts.google.com", aud=SERVICE_URL),
        "unverified email": signed(
            local_issuer, iss="https://accounts.google.com", email_verified=False, **good
        ),
        "garbage": "not.a.token",
    }
    for why, token in refused.items():
        answer = callers.refusal(f"Bearer {token}")
        assert answer is not None and answer.status == 401, why
    assert callers.refusal("Basic dXNlcjpwYXNz") is not None  # not a Bearer token


def test_a_key_the_certificates_do_not_hold_is_refused(callers: InternalCallers) -> None:
    with issuer() as other:  # another key, same claims: a forged token
        forged = tokens(other, TASKS_SA)(SERVICE_URL)
    answer = callers.refusal(f"Bearer {forged}")
    assert answer is not None and answer.status == 401


def test_certificates_are_fetched_once_until_a_new_key_id(local_issuer: TestIssuer) -> None:
    fetched: list[str] = []
    certs = {local_issuer.kid: local_issuer.certificate}

    def fetch(url: str) -> dict[str, str]:
        fetched.append(url)
        return certs

    verify = GoogleIdTokens(certs_url="http://certs.invalid", fetch=fetch)
    mint = tokens(local_issuer, TASKS_SA)
    for _ in range(3):
        assert verify(mint(SERVICE_URL), [SERVICE_URL]) == TASKS_SA
    assert fetched == ["http://certs.invalid"]
    with pytest.raises(InvalidToken):
        verify(
            TestTokens(private_key_pem=local_issuer.private_key, key_id="rotated", email=TASKS_SA)(
                SERVICE_URL
            ),
            [SERVICE_URL],
        )
    assert len(fetched) == 2  # an unknown key id fetches again (Google rotates its keys)


def test_settings_build_the_check_or_none_outside_production(local_issuer: TestIssuer) -> None:
    base = {"backend": "embedded", "tasks_url": SERVICE_URL}
    assert internal_callers(Settings.model_validate(base)) is None
    built = internal_callers(
        Settings.model_validate(
            base
            | {
                "internal_callers": f"{TASKS_SA}, {PUSH_SA}",
                "oidc_certs_url": local_issuer.certs_url,
            }
        )
    )
    assert built is not None
    assert built.audiences == {SERVICE_URL} and built.allowed == {TASKS_SA, PUSH_SA}
    assert built.refusal(f"Bearer {tokens(local_issuer, PUSH_SA)(SERVICE_URL)}") is None


def test_tasks_carry_the_service_url_audience_and_test_tokens_only_on_emulators(
    local_issuer: TestIssuer, tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from deepflix.adapters.gcp.factory import build_ports, test_tokens

    key = local_issuer.write_key(tmp_path / "key.json", TASKS_SA)
    base = {
        "backend": "gcp",
        "tasks_url": SERVICE_URL + "/",
        "tasks_service_account": TASKS_SA,
        "test_token_key_file": str(key),
    }
    monkeypatch.delenv("FIRESTORE_EMULATOR_HOST", raising=False)
    monkeypatch.delenv("PUBSUB_EMULATOR_HOST", raising=False)
    emulated = Settings.model_validate(base | {"tasks_emulator_host": "127.0.0.1:1"})
    # The same settings without the emulator (production refuses them; built unvalidated).
    outside = emulated.model_copy(update={"tasks_emulator_host": None})
    assert not outside.emulated() and test_tokens(outside) is None  # no emulator: no minting
    queue = build_ports(emulated).tasks
    task = queue.build_task("dispatch", {"stage": "story"})
    http = task.http_request
    assert http.url == SERVICE_URL + "/dispatch"
    assert http.oidc_token.audience == SERVICE_URL  # the service URL, not the task's
    token = http.headers["Authorization"].removeprefix("Bearer ")
    verify = GoogleIdTokens(certs_url=local_issuer.certs_url)
    assert verify(token, [SERVICE_URL]) == TASKS_SA
