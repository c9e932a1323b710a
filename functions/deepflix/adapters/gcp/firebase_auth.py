"""Firebase Authentication ID tokens checked with firebase-admin: the cloud's bearer tokens."""

from __future__ import annotations

import os
import threading
from typing import Any

from deepflix import logs
from deepflix.pipeline.errors import Unavailable
from deepflix.pipeline.identity import Principal

log = logs.get("auth")
EMULATOR_HOST = "FIREBASE_AUTH_EMULATOR_HOST"
APP_NAME = "deepflix-auth"  # our own app (one per project): never a default one


class FirebaseTokens:
    """`TokenVerifier` for Firebase ID tokens of `project`: owner = the token's uid, admin =
    its custom claim `admin: true`.

    In production firebase-admin checks the signature against Google's published keys
    (fetched once and cached by their expiry), the audience (the project) and the issuer.
    With FIREBASE_AUTH_EMULATOR_HOST set it accepts the Auth emulator's unsigned tokens:
    that variable must never be set in production, and the emulator stack sets it only
    beside the other emulator hosts. The app is made on first use, not at import.
    """

    def __init__(self, project: str) -> None:
        self.project = project
        self._app: Any = None
        self._lock = threading.Lock()

    def __call__(self, token: str) -> Principal | None:
        from firebase_admin import auth

        try:
            claims = auth.verify_id_token(token, app=self._get_app())
        except auth.CertificateFetchError as e:
            # Google's keys could not be fetched: not the caller's fault, so no 401.
            raise Unavailable("cannot check the ID token now (Google's keys unreachable)") from e
        except (ValueError, auth.InvalidIdTokenError) as e:
            # Expired, revoked and malformed tokens are all InvalidIdTokenError (or ValueError).
            log.info("refused an ID token: %s", str(e)[:200])
            return None
        uid = claims.get("uid")
        if not isinstance(uid, str) or not uid:
            return None
        return Principal(uid, admin=claims.get("admin") is True)

    def _get_app(self) -> Any:
        with self._lock:
            if self._app is None:
                import firebase_admin

                name = f"{APP_NAME}-{self.project}"
                try:
                    self._app = firebase_admin.get_app(name)
                except ValueError:  # none yet in this process
                    self._app = firebase_admin.initialize_app(
                        _anonymous() if os.environ.get(EMULATOR_HOST) else None,
                        {"projectId": self.project},
                        name=name,
                    )
            return self._app


def _anonymous() -> Any:
    """Credentials that are never looked up: against the emulator there is nothing to prove,
    and a test machine must not probe for Google's."""
    from firebase_admin import credentials
    from google.auth.credentials import AnonymousCredentials

    class Anonymous(credentials.Base):  # type: ignore[misc]
        def get_credential(self) -> Any:
            return AnonymousCredentials()  # type: ignore[no-untyped-call]

    return Anonymous()
