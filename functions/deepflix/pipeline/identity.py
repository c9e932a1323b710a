"""Who a request is: the owner its movies carry, whether it may operate the service, and the
port that turns a bearer token into one."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

# The embedded mode's one user on 127.0.0.1 while no API key exists (ADR 0017).
LOCAL_OWNER = "local"


@dataclass(frozen=True)
class Principal:
    """A caller: `owner` is the owner of the movies it makes and may see (a Firebase uid, an
    API key's owner, or `local`); `admin` may see and act on every movie and the queues."""

    owner: str
    admin: bool = False

    def may_see(self, owner: str) -> bool:
        return self.admin or owner == self.owner

    @property
    def limited_to(self) -> str | None:
        """The only owner whose movies this caller may change; None: any (an operator)."""
        return None if self.admin else self.owner


LOCAL_USER = Principal(LOCAL_OWNER, admin=True)


class TokenVerifier(Protocol):
    """Checks a bearer token: the caller it names, or None when the token is not one this
    verifier accepts (malformed, expired, revoked, signed by someone else)."""

    def __call__(self, token: str) -> Principal | None: ...
