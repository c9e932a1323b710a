"""CORS: which other sites' pages may call the API from a browser, and their preflights."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from starlette.datastructures import Headers, MutableHeaders
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from deepflix import logs
from deepflix.handlers.responses import Forbidden, error_answer

log = logs.get("api")
METHODS = "GET, HEAD, POST, DELETE, OPTIONS"
# What a page sends: credentials as a Bearer token (never cookies, so no
# Access-Control-Allow-Credentials), JSON bodies, the idempotency key, the client header.
HEADERS = "Authorization, Content-Type, Idempotency-Key, X-DeepFlix-Client"
EXPOSED = "Location, Retry-After, Content-Range, Accept-Ranges, Content-Length"
MAX_AGE_S = 600


@dataclass(frozen=True)
class Cors:
    """`origins`: `scheme://host[:port]` of the sites whose pages may call; each is echoed
    back by name, never `*` (a `*` in the settings is ignored, with a warning)."""

    origins: frozenset[str]

    @classmethod
    def configured(cls, allowed_origins: Iterable[str]) -> Cors:
        given = {o.strip().lower().rstrip("/") for o in allowed_origins if o.strip()}
        if "*" in given:
            log.warning("DEEPFLIX_ALLOWED_ORIGINS: '*' is ignored; list the origins by name")
        return cls(frozenset(given - {"*"}))

    def allows(self, origin: str | None) -> bool:
        return origin is not None and origin.lower().rstrip("/") in self.origins


class CorsMiddleware:
    """Answers preflights (204 with the Access-Control-Allow-* headers for an allowed
    origin; 403 without any for another) and marks the answers to allowed origins."""

    def __init__(self, app: ASGIApp, cors: Cors) -> None:
        self.app = app
        self.cors = cors

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        origin = headers.get("origin")
        preflight = scope["method"] == "OPTIONS" and "access-control-request-method" in headers
        if preflight:
            await self._preflight(origin, scope, receive, send)
            return
        if not self.cors.allows(origin):
            await self.app(scope, receive, send)
            return

        async def marked(message: Message) -> None:
            if message["type"] == "http.response.start":
                out = MutableHeaders(scope=message)
                out["Access-Control-Allow-Origin"] = origin or ""
                out["Access-Control-Expose-Headers"] = EXPOSED
                out.add_vary_header("Origin")
            await send(message)

        await self.app(scope, receive, marked)

    async def _preflight(
        self, origin: str | None, scope: Scope, receive: Receive, send: Send
    ) -> None:
        if not self.cors.allows(origin):
            refused = Forbidden(
                "this origin may not call the API from a browser; an origin that should "
                "belongs in DEEPFLIX_ALLOWED_ORIGINS",
                details={"origin": origin},
            )
            await error_answer(refused)(scope, receive, send)
            return
        answer = Response(
            status_code=204,
            headers={
                "Access-Control-Allow-Origin": origin or "",
                "Access-Control-Allow-Methods": METHODS,
                "Access-Control-Allow-Headers": HEADERS,
                "Access-Control-Max-Age": str(MAX_AGE_S),
                "Vary": "Origin",
            },
        )
        await answer(scope, receive, send)
