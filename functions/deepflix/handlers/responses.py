"""The API's answers: JSON bodies, stored files, and the HTTP status of every error."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import FileResponse, MalformedRangeHeader, RangeNotSatisfiable, Response

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


class RequestTimeout(DeepflixError):
    code = "request_timeout"


class RangeUnsatisfiable(DeepflixError):
    """A `Range` that starts past the file's end; `details["size"]` is the file's size."""

    code = "range_not_satisfiable"


class Forbidden(DeepflixError):
    code = "forbidden"


class CrossSiteRequest(Forbidden):
    code = "cross_site_request"


class MisdirectedRequest(DeepflixError):
    """The request names a Host this service does not answer to (DNS rebinding)."""

    code = "misdirected_request"


# The one place an error class becomes an HTTP status; a subclass answers as its nearest
# listed ancestor, and anything unlisted is an internal error.
HTTP_STATUS: dict[type[DeepflixError], int] = {
    BadRequest: 400,
    Forbidden: 403,
    CrossSiteRequest: 403,
    NotFound: 404,
    MethodNotAllowed: 405,
    Conflict: 409,
    RequestTimeout: 408,
    PayloadTooLarge: 413,
    UnsupportedMediaType: 415,
    MisdirectedRequest: 421,
    RangeUnsatisfiable: 416,
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


class JSONAnswer(Response):
    """A JSON body, encoded by orjson: a status answer is mostly its encoding."""

    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


def json_answer(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return JSONAnswer(body, status, headers)


class StoredFile(FileResponse):
    """Starlette's file answer, with one byte range at most: a request for several, or a
    malformed `Range`, is answered with the whole file (RFC 9110 lets a server ignore a
    Range), which every player takes; multipart answers are left out."""

    max_ranges = 1

    @classmethod
    def _parse_range_header(cls, http_range: str, file_size: int) -> list[tuple[int, int]]:
        try:
            return super()._parse_range_header(http_range, file_size)
        except MalformedRangeHeader:
            return []


def file_answer(path: Path, range_header: str | None = None) -> Response:
    """A stored file, or the one byte range `range_header` asks of it (206); a missing one
    is not found (its movie names it, the disk lost it). A range that starts past the end
    answers 416 in the error envelope, with `Content-Range: bytes */<size>`."""
    try:
        stat = path.stat()
    except FileNotFoundError as e:
        raise NotFound(f"the file of {path.name!r} is missing") from e
    if range_header is not None:
        try:
            StoredFile._parse_range_header(range_header, stat.st_size)
        except RangeNotSatisfiable as e:
            raise RangeUnsatisfiable(
                f"the range {range_header!r} starts past the end of the file",
                details={"size": stat.st_size},
            ) from e
    media_type = MEDIA_TYPES.get(path.suffix, "application/octet-stream")
    return StoredFile(path, stat_result=stat, media_type=media_type)


def error_answer(err: DeepflixError) -> Response:
    headers = {}
    if isinstance(err, Unavailable):
        headers["Retry-After"] = str(err.retry_after_s)
    elif isinstance(err, MethodNotAllowed):
        headers["Allow"] = err.details["allowed"]
    elif isinstance(err, RangeUnsatisfiable):
        headers["Content-Range"] = f"bytes */{err.details['size']}"
    body = {"error": {"code": err.code, "message": err.message, "details": err.details}}
    return json_answer(body, http_status(err), headers)


def failure(request: Request, e: Exception) -> Response:
    """The answer to a request that raised: its own error, or a logged internal one."""
    if isinstance(e, DeepflixError):
        return error_answer(e)
    log.error("unhandled error on %s %s", request.method, request.url.path, exc_info=e)
    return error_answer(DeepflixError("internal error; it has been logged"))
