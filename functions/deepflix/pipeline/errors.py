"""One exception tree for the service; each edge translates it (HTTP statuses: handlers/)."""

from __future__ import annotations

from typing import Any


class DeepflixError(Exception):
    """Base: carries a stable code and optional details for the client."""

    code = "internal"

    def __init__(self, message: str, *, details: Any = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details


class BadRequest(DeepflixError):
    code = "bad_request"


class ValidationFailed(DeepflixError):
    code = "validation_failed"


class NotFound(DeepflixError):
    code = "not_found"


class Conflict(DeepflixError):
    code = "conflict"


class Unavailable(DeepflixError):
    """A backing service is unreachable; the client should come back later."""

    code = "unavailable"

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
    """`retry_after_s`: how long the far side asked to be left alone (a model's RetryInfo
    or Retry-After); the retry policy waits at least that long before the next attempt."""

    retryable = True

    def __init__(
        self, message: str, *, code: str | None = None, retry_after_s: float | None = None
    ) -> None:
        super().__init__(message, code=code)
        self.retry_after_s = retry_after_s


class PermanentStageError(StageWorkError):
    retryable = False
    code = "permanent_error"
