"""Firebase ID tokens as the Auth emulator issues them: unsigned, which firebase-admin accepts
only while FIREBASE_AUTH_EMULATOR_HOST is set (tests and the emulator stack, never production:
settings.py refuses that variable there)."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Mapping

from devtools.emulators import PROJECT


def _part(value: dict[str, object]) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()


def emulator_id_token(
    uid: str,
    *,
    admin: bool = False,
    project: str = PROJECT,
    lifetime_s: int = 3600,
    extra: Mapping[str, object] | None = None,
) -> str:
    """An ID token of user `uid` of `project`, with the custom claim `admin: true` if asked
    (and any `extra` claims): the claims a real one carries, `alg: none` and no signature,
    as the emulator's."""
    now = int(time.time())
    claims: dict[str, object] = {
        "iss": f"https://securetoken.google.com/{project}",
        "aud": project,
        "auth_time": now,
        "user_id": uid,
        "sub": uid,
        "iat": now,
        "exp": now + lifetime_s,
        "firebase": {"identities": {}, "sign_in_provider": "custom"},
    }
    if admin:
        claims["admin"] = True
    claims |= dict(extra or {})
    return f"{_part({'alg': 'none', 'typ': 'JWT'})}.{_part(claims)}."
