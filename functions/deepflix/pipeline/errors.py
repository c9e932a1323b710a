"""One exception tree for the service; handlers translate it to HTTP only at the edge."""

from __future__ import annotations

from typing import Any


class DeepflixError(Exception):
    """Base: carries a stable code, an HTTP status and optional details for the client."""

    status = 500
    code = "internal"

    def __init__(self, message: str, *, details: Any = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details


class BadRequest(DeepflixError):
    status, code = 400, "bad_request"


class ValidationFailed(DeepflixError):
    status, code = 422, "validation_failed"


class NotFound(DeepflixError):
    status, code = 404, "not_found"


class MethodNotAllowed(DeepflixError):
    status, code = 405, "method_not_allowed"


class Conflict(DeepflixError):
    status, code = 409, "conflict"


class PayloadTooLarge(DeepflixError):
    status, code = 413, "payload_too_large"


class UnsupportedMediaType(DeepflixError):
    status, code = 415, "unsupported_media_type"


class Unavailable(DeepflixError):
    """A backing service is unreachable; the client should come back later."""

    status, code = 503, "unavailable"

    def __init__(self, message: str, *, retry_after_s: int = 5, details: Any = None) -> None:
        super().__init__(message, details=details)
        self.retry_after_s = retry_after_s


class StageWorkError(Exception):
    """Stage work failed; `retryable` tells the retry policy whether to try again."""

    retryable = True
    code = "stage_error"

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code:
            self.code = code


class RetryableStageError(StageWorkError):
    retryable = True


class PermanentStageError(StageWorkError):
    retryable = False
    code = "permanent_error"
