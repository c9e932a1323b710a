"""Reading the API's requests: a trailing slash forgiven, JSON bodies bounded and parsed once."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from typing import TypeVar

from pydantic import BaseModel, ValidationError
from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from deepflix.handlers.responses import PayloadTooLarge, RequestTimeout, UnsupportedMediaType
from deepflix.pipeline.errors import BadRequest, ValidationFailed
from deepflix.pipeline.models import MovieCreate

MAX_BODY = 64 * 1024
# A body that has not all arrived by then is refused: a client sending a byte now and then
# would otherwise hold its connection, and the memory of its half body, for ever.
BODY_TIMEOUT_S = 10.0
IDEMPOTENCY_KEY = re.compile(r"^[\x21-\x7e]{1,200}$")

B = TypeVar("B", bound=BaseModel)


class ForgiveTrailingSlash:
    """One trailing slash is forgiven (`/api/movies/` is `/api/movies`), without a redirect."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if scope["type"] == "http" and len(path) > 1 and path.endswith("/"):
            scope = {**scope, "path": path[:-1]}
        await self.app(scope, receive, send)


async def json_body(request: Request) -> bytes:
    """The body of a JSON request, read no further than MAX_BODY."""
    ctype = request.headers.get("content-type")
    if (ctype or "").partition(";")[0].strip().lower() != "application/json":
        raise UnsupportedMediaType(
            "send the request body as application/json", details={"content_type": ctype}
        )
    length = request.headers.get("content-length", "")
    if length.isascii() and length.isdigit() and int(length) > MAX_BODY:
        raise PayloadTooLarge(f"the request body is over {MAX_BODY} bytes")
    try:
        return await asyncio.wait_for(_read(request.stream()), BODY_TIMEOUT_S)
    except TimeoutError:
        raise RequestTimeout(
            f"the request body did not arrive within {BODY_TIMEOUT_S:g} s"
        ) from None


async def _read(stream: AsyncIterator[bytes]) -> bytes:
    chunks, size = [], 0
    async for chunk in stream:
        size += len(chunk)
        if size > MAX_BODY:
            raise PayloadTooLarge(f"the request body is over {MAX_BODY} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def parse_body(model: type[B], body: bytes, *, what: str = "valid") -> B:
    """A JSON body as `model`: JSON that does not parse is a 400, a wrong one a 422 naming
    each field; `what` the body should have been ("the request body is not <what>")."""
    try:
        return model.model_validate_json(body)
    except ValidationError as e:
        errors = e.errors(include_url=False, include_context=False, include_input=False)
        if errors[0]["type"] == "json_invalid":
            raise BadRequest(
                "the request body is not valid JSON", details={"reason": errors[0]["msg"]}
            ) from e
        raise ValidationFailed(
            f"the request body is not {what}",
            details=[
                {
                    "field": ".".join(str(p) for p in err["loc"]),
                    "message": err["msg"],
                    "type": err["type"],
                }
                for err in errors
            ],
        ) from e


def movie_request(body: bytes) -> MovieCreate:
    """The body parsed once, as a movie request."""
    return parse_body(MovieCreate, body, what="a valid movie request")


def idempotency_key(request: Request) -> str | None:
    key = request.headers.get("idempotency-key")
    if key is not None and not IDEMPOTENCY_KEY.match(key):
        raise BadRequest("Idempotency-Key must be 1-200 printable ASCII characters")
    return key
