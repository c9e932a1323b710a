"""Who may call what: each operation's access level, and the caller a request's
`Authorization: Bearer <token>` names (ADR 0017)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from starlette.requests import Request

from deepflix.handlers.operations import Access, Param
from deepflix.handlers.responses import Forbidden, Unauthenticated
from deepflix.pipeline.errors import NotFound
from deepflix.pipeline.identity import Principal, TokenVerifier
from deepflix.pipeline.models import Movie

OWNER = Param(
    "owner",
    "Whose movies: the caller's own when left out; `all`, or another owner's id, for an "
    "operator (admin) only (403 otherwise).",
)


def _nobody() -> Principal | None:
    return None


@dataclass(frozen=True)
class Authenticator:
    """Turns a request's Authorization header into its caller. `verifiers` are asked in
    turn (Firebase ID tokens, API keys); `anonymous` says who a request without any is:
    the local user while embedded on 127.0.0.1 with no key, else nobody (401)."""

    verifiers: Sequence[TokenVerifier]
    anonymous: Callable[[], Principal | None] = _nobody

    def __call__(self, authorization: str | None) -> Principal:
        if not authorization:
            who = self.anonymous()
            if who is None:
                raise Unauthenticated(
                    "this needs a credential: `Authorization: Bearer <token>` (a Firebase ID "
                    "token, or an API key from `deepflix keys create`)"
                )
            return who
        scheme, _, token = authorization.strip().partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise Unauthenticated("the Authorization header is not `Bearer <token>`")
        for verify in self.verifiers:
            who = verify(token)
            if who is not None:
                return who
        raise Unauthenticated("the bearer token is not valid (malformed, expired or revoked)")

    def admit(self, access: Access, authorization: str | None) -> Principal:
        """The caller, if they may call an operation of this access (401, 403 if not)."""
        who = self(authorization)
        if access is Access.admin and not who.admin:
            raise Forbidden("only an operator (admin) may do this")
        return who


def caller(request: Request) -> Principal:
    """The caller the endpoint authenticated (operations of access user or admin)."""
    who: Principal = request.state.principal
    return who


def visible(movie: Movie | None, who: Principal, movie_id: str) -> Movie:
    """The movie if this caller may see it; another user's movie is not found, exactly as
    a missing one, so ids of other users' movies cannot be probed."""
    if movie is None or not who.may_see(movie.owner):
        raise NotFound(f"no movie with id {movie_id!r}")
    return movie


def listed_owner(who: Principal, asked: str | None) -> str | None:
    """Whose movies a list shows: the caller's own unless an operator asks for `all` (None)
    or for another owner's."""
    if not asked or asked == who.owner:
        return who.owner
    if not who.admin:
        raise Forbidden("only an operator (admin) may list other owners' movies")
    return None if asked == "all" else asked
