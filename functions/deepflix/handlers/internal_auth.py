"""Internal endpoints' callers: a Google ID token for this service, of an allowed account."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from deepflix import logs
from deepflix.pipeline.callers import IdTokenVerifier, InvalidToken

log = logs.get("functions")


@dataclass(frozen=True)
class Refusal:
    status: int  # 401: no acceptable token; 403: a good token of an account not allowed
    code: str
    message: str

    def body(self) -> dict[str, Any]:
        return {"error": {"code": self.code, "message": self.message, "details": None}}

    def headers(self) -> dict[str, str]:
        if self.status != 401:
            return {}
        return {"WWW-Authenticate": 'Bearer realm="deepflix-internal"'}


@dataclass(frozen=True)
class InternalCallers:
    """`audiences`: this deployment's service URLs (a token for another service is refused);
    `allowed`: the service accounts of Cloud Tasks, Cloud Scheduler and Pub/Sub push.

    Cloud Run's IAM invoker check already keeps others out in the cloud; this check is the
    same rule in the code, so a deploy that loses the IAM binding (or an emulator run)
    still refuses a forged task or push (docs/decisions/0018).
    """

    verify: IdTokenVerifier
    audiences: frozenset[str]
    allowed: frozenset[str]

    @classmethod
    def of(
        cls, verify: IdTokenVerifier, *, audiences: Iterable[str], allowed: Iterable[str]
    ) -> InternalCallers:
        return cls(
            verify,
            frozenset(a.rstrip("/") for a in audiences if a),
            frozenset(e.strip().lower() for e in allowed if e.strip()),
        )

    def refusal(self, authorization: str | None) -> Refusal | None:
        """None for a caller to serve; else why not (logged without the token)."""
        scheme, _, token = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return Refusal(401, "unauthenticated", "an internal endpoint needs a Bearer ID token")
        try:
            email = self.verify(token.strip(), self.audiences)
        except InvalidToken as e:
            log.warning("refused an internal call: %s", e)
            return Refusal(401, "unauthenticated", "the ID token is not valid for this service")
        if email.lower() not in self.allowed:
            log.warning("refused an internal call from %s: not an allowed caller", email)
            return Refusal(403, "forbidden", f"{email} may not call the internal endpoints")
        return None
