"""The API's answers: JSON bodies, stored files, and the HTTP status of every error."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
from werkzeug.wrappers import Request, Response
from werkzeug.wsgi import wrap_file

from deepflix import logs
from deepflix.pipeline.errors import (
    BadRequest,
    Conflict,
    DeepflixError,
    NotFound,
    Unavailable,
    ValidationFailed,
)

log = logs.get("api")
MEDIA_TYPES = {
    ".mp4": "video/mp4",
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".vtt": "text/vtt",
    ".json": "application/json",
}


class MethodNotAllowed(DeepflixError):
    code = "method_not_allowed"


class PayloadTooLarge(DeepflixError):
    code = "payload_too_large"


class UnsupportedMediaType(DeepflixError):
    code = "unsupported_media_type"


# The one place an error class becomes an HTTP status; a subclass answers as its nearest
# listed ancestor, and anything unlisted is an internal error.
HTTP_STATUS: dict[type[DeepflixError], int] = {
    BadRequest: 400,
    NotFound: 404,
    MethodNotAllowed: 405,
    Conflict: 409,
    PayloadTooLarge: 413,
    UnsupportedMediaType: 415,
    ValidationFailed: 422,
    Unavailable: 503,
    DeepflixError: 500,
}


def http_status(err: DeepflixError) -> int:
    for cls in type(err).__mro__:
        status = HTTP_STATUS.get(cls)
        if status is not None:
            return status
    return 500


@dataclass(frozen=True, slots=True)
class Reply:
    """A JSON answer, written by each server as one bytes chunk."""

    status: int
    body: bytes
    headers: tuple[tuple[str, str], ...] = ()

    def wsgi_headers(self) -> list[tuple[str, str]]:
        return [
            ("Content-Type", "application/json"),
            ("Content-Length", str(len(self.body))),
            *self.headers,
        ]

    def to_response(self) -> Response:
        return Response(self.body, status=self.status, headers=self.wsgi_headers())


@dataclass(frozen=True, slots=True)
class FileReply:
    """A stored file: each server sends it its own way (granian from Rust in the API
    process, werkzeug's file wrapper under WSGI)."""

    path: Path

    @property
    def media_type(self) -> str:
        return MEDIA_TYPES.get(self.path.suffix, "application/octet-stream")

    def to_response(self, environ: dict[str, Any]) -> Response:
        response = Response(
            wrap_file(environ, self.path.open("rb")),
            mimetype=self.media_type,
            direct_passthrough=True,
        )
        response.content_length = self.path.stat().st_size
        return response


Answer = Reply | FileReply | Response  # Response: the dashboard page


def json_reply(body: Any, status: int = 200, headers: tuple[tuple[str, str], ...] = ()) -> Reply:
    return Reply(status, orjson.dumps(body), headers)


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return json_reply(body, status, tuple((headers or {}).items())).to_response()


def failure(request: Request, e: Exception) -> Reply:
    """The answer to a request that raised: its own error, or a logged internal one."""
    if isinstance(e, DeepflixError):
        return error_reply(e)
    log.error("unhandled error on %s %s", request.method, request.path, exc_info=e)
    return error_reply(DeepflixError("internal error; it has been logged"))


def error_reply(err: DeepflixError) -> Reply:
    headers: tuple[tuple[str, str], ...] = ()
    if isinstance(err, Unavailable):
        headers = (("Retry-After", str(err.retry_after_s)),)
    elif isinstance(err, MethodNotAllowed):
        headers = (("Allow", err.details["allowed"]),)
    body = {"error": {"code": err.code, "message": err.message, "details": err.details}}
    return json_reply(body, http_status(err), headers)
