"""The cloud's token check (firebase-admin) on emulator-style ID tokens, and its refusal of
them without the Auth emulator; the embedded mode's loopback rule."""

from __future__ import annotations

import pytest

from deepflix.adapters.gcp.firebase_auth import EMULATOR_HOST, FirebaseTokens
from deepflix.pipeline.identity import Principal
from deepflix.runtime.auth import is_loopback
from devtools.emulators import PROJECT
from devtools.firebase_tokens import emulator_id_token

pytestmark = pytest.mark.integration


def test_the_auth_emulators_tokens_name_the_user_and_the_admin_claim(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(EMULATOR_HOST, "127.0.0.1:9099")
    verify = FirebaseTokens(PROJECT)
    assert verify(emulator_id_token("alice")) == Principal("alice", admin=False)
    assert verify(emulator_id_token("ops", admin=True)) == Principal("ops", admin=True)
    assert verify(emulator_id_token("x", extra={"admin": "true"})) == Principal("x")
    assert verify(emulator_id_token("alice", project="another-project")) is None
    assert verify("not.a.token") is None
    assert verify("garbage") is None


def test_without_the_emulator_an_unsigned_token_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(EMULATOR_HOST, raising=False)
    # Refused on its header (no key id, no RS256), before any key would be fetched.
    assert FirebaseTokens(PROJECT)(emulator_id_token("ops", admin=True)) is None


@pytest.mark.parametrize(
    ("host", "local"),
    [
        ("127.0.0.1", True),
        ("127.0.0.2", True),
        ("localhost", True),
        ("::1", True),
        ("[::1]", True),
        ("0.0.0.0", False),
        ("::", False),
        ("192.168.1.20", False),
        ("deepflix.example", False),
    ],
)
def test_only_loopback_addresses_may_serve_the_local_user(host: str, local: bool) -> None:
    assert is_loopback(host) is local
