"""Who may call the internal endpoints: the port that verifies a caller's ID token."""

from __future__ import annotations

from collections.abc import Collection
from typing import Protocol


class InvalidToken(Exception):
    """The token is not one to accept: unsigned, expired, for another audience or issuer."""


class IdTokenVerifier(Protocol):
    def __call__(self, token: str, audiences: Collection[str]) -> str:
        """The verified caller's email; raises InvalidToken."""
        ...
