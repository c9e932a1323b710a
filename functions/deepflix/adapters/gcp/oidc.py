"""Google-signed OIDC ID tokens (Cloud Tasks, Cloud Scheduler, Pub/Sub push), verified."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Collection, Mapping
from typing import Any

import google.auth.exceptions
import google.auth.transport.requests
from google.auth import jwt
from google.oauth2 import id_token

from deepflix.pipeline.callers import InvalidToken

GOOGLE_CERTS_URL = "https://www.googleapis.com/oauth2/v1/certs"
ISSUERS = frozenset({"accounts.google.com", "https://accounts.google.com"})
Fetch = Callable[[str], Mapping[str, str]]


def fetch_certs(url: str) -> Mapping[str, str]:
    """`{key id: PEM certificate}` from a Google-style certificates URL."""
    request = google.auth.transport.requests.Request()
    certs: Mapping[str, str] = id_token._fetch_certs(request, url)  # type: ignore[no-untyped-call]
    return certs


class GoogleIdTokens:
    """Verifies a token's signature against the certificates at `certs_url` (Google's, or a
    local test issuer's), then its expiry, audience and issuer; answers the caller's email.

    The certificates are kept for `max_age_s` and fetched again at once for a key id they
    do not hold (Google rotates its keys), so a call costs no fetch in the common case.
    """

    def __init__(
        self,
        *,
        certs_url: str = GOOGLE_CERTS_URL,
        fetch: Fetch = fetch_certs,
        max_age_s: float = 3600.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.certs_url = certs_url
        self.fetch = fetch
        self.max_age_s = max_age_s
        self.clock = clock
        self._certs: Mapping[str, str] = {}
        self._fetched_at = -max_age_s
        self._lock = threading.Lock()

    def _current(self, kid: str | None) -> Mapping[str, str]:
        with self._lock:
            stale = self.clock() - self._fetched_at >= self.max_age_s
            if stale or (kid is not None and kid not in self._certs):
                try:
                    self._certs = dict(self.fetch(self.certs_url))
                except (google.auth.exceptions.TransportError, ValueError) as e:
                    raise InvalidToken(f"cannot fetch the signing certificates: {e}") from e
                self._fetched_at = self.clock()
            return self._certs

    def __call__(self, token: str, audiences: Collection[str]) -> str:
        try:
            header: Mapping[str, Any] = jwt.decode_header(token)  # type: ignore[no-untyped-call]
            certs = self._current(header.get("kid"))
            claims: Mapping[str, Any] = jwt.decode(  # type: ignore[no-untyped-call]
                token, certs=certs, audience=list(audiences)
            )
        except (ValueError, google.auth.exceptions.GoogleAuthError) as e:
            raise InvalidToken(str(e)) from e
        if claims.get("iss") not in ISSUERS:
            raise InvalidToken(f"issuer {claims.get('iss')!r} is not Google")
        email = claims.get("email")
        if not isinstance(email, str) or claims.get("email_verified") is False:
            raise InvalidToken("the token names no verified email")
        return email


class TestTokens:
    """Emulator runs only: mints ID tokens as Google would for `email`, signed with a local
    key whose certificate the test issuer serves. Cloud Tasks and Pub/Sub emulators attach
    no token, so the emulator stack's stand-ins attach these (devtools/stack.py)."""

    __test__ = False  # not a test class, whatever its name

    def __init__(self, *, private_key_pem: str, key_id: str, email: str) -> None:
        from google.auth import crypt

        self.email = email
        self._signer = crypt.RSASigner.from_string(private_key_pem, key_id=key_id)  # type: ignore[no-untyped-call]

    @classmethod
    def from_file(cls, path: str) -> TestTokens:
        import json
        from pathlib import Path

        data = json.loads(Path(path).read_text())
        return cls(private_key_pem=data["private_key"], key_id=data["kid"], email=data["email"])

    def __call__(self, audience: str, *, lifetime_s: int = 600) -> str:
        now = int(time.time())
        claims = {
            "iss": "https://accounts.google.com",
            "aud": audience,
            "sub": "1" * 21,
            "email": self.email,
            "email_verified": True,
            "iat": now,
            "exp": now + lifetime_s,
        }
        token: bytes = jwt.encode(self._signer, claims)  # type: ignore[no-untyped-call]
        return token.decode()
