"""Lazy-once Google clients and the translation of Google outages into `Unavailable`."""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable, Iterator
from concurrent import futures
from contextlib import contextmanager
from typing import Generic, ParamSpec, TypeVar

from google.api_core import exceptions as gexc
from google.auth import exceptions as auth_exc

from deepflix.pipeline.errors import Unavailable

T = TypeVar("T")
P = ParamSpec("P")
R = TypeVar("R")

# What a Google backend says when it is down, overloaded or unreachable: the caller should
# come back later (HTTP 503 at the API, a redelivery for tasks and events). Everything else
# (permission denied, invalid argument, not found) is a bug or a misconfiguration and stays
# loud.
OUTAGES: tuple[type[BaseException], ...] = (
    gexc.ServiceUnavailable,
    gexc.DeadlineExceeded,
    gexc.InternalServerError,
    gexc.BadGateway,
    gexc.GatewayTimeout,
    gexc.TooManyRequests,
    gexc.ResourceExhausted,
    gexc.Aborted,
    gexc.Unknown,
    gexc.RetryError,
    auth_exc.TransportError,
    futures.TimeoutError,
)


class Lazy(Generic[T]):
    """A client built on first use and then shared: never at import, never per request.

    Takes either a ready client or a zero-argument factory (anything callable is a factory;
    Google client objects are not callable).
    """

    def __init__(self, source: T | Callable[[], T]) -> None:
        self._factory: Callable[[], T] | None = None
        self._value: T | None = None
        if callable(source):
            self._factory = source
        else:
            self._value = source
        self._lock = threading.Lock()

    def get(self) -> T:
        if self._value is None:
            with self._lock:
                if self._value is None:
                    assert self._factory is not None  # nosec B101 # an invariant, not a check of input
                    with outages(f"creating a client with {self._factory!r}"):
                        self._value = self._factory()
        return self._value


@contextmanager
def outages(what: str, *, retry_after_s: int = 5) -> Iterator[None]:
    """Re-raise a Google outage as `Unavailable`, naming what was being done."""
    try:
        yield
    except OUTAGES as e:
        raise Unavailable(f"{what}: {type(e).__name__}: {e}", retry_after_s=retry_after_s) from e


def translate_outages(what: str) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Decorator form of `outages` for adapter methods."""

    def wrap(fn: Callable[P, R]) -> Callable[P, R]:
        @functools.wraps(fn)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
            with outages(f"{what} {fn.__name__}"):
                return fn(*args, **kwargs)

        return wrapper

    return wrap
