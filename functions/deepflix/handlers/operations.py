"""The API's operations, each declared once at its handler: route, models and documentation."""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from pydantic import BaseModel

F = TypeVar("F", bound=Callable[..., Any])


@dataclass(frozen=True)
class Param:
    """A query or header parameter, for the document (the handler reads and checks it)."""

    name: str
    description: str
    schema: Mapping[str, Any] = field(default_factory=lambda: {"type": "string"})


@dataclass(frozen=True)
class Operation:
    method: str
    path: str  # Starlette's syntax, which is OpenAPI's: "/api/movies/{movie_id}"
    handler: Callable[..., Any]  # (api, request) -> Response; a coroutine function for writes
    summary: str
    name: str
    status: int = 200
    body: type[BaseModel] | None = None  # the JSON request body, parsed by the handler
    examples: Mapping[str, Any] = field(default_factory=dict)  # of the body, by name
    answer: type[BaseModel] | None = None  # the JSON answer's shape
    media_type: str = "application/json"
    query: tuple[Param, ...] = ()
    headers: tuple[Param, ...] = ()
    answer_headers: Mapping[str, str] = field(default_factory=dict)  # name -> meaning
    errors: tuple[int, ...] = ()  # the error statuses it may answer

    @property
    def is_async(self) -> bool:
        return inspect.iscoroutinefunction(self.handler)

    @property
    def path_params(self) -> list[str]:
        return re.findall(r"\{(\w+)\}", self.path)


class Operations:
    """The operations declared so far, in order. An instance is the declaring decorator:

    @OPERATIONS("GET", "/api/queues", summary="...", answer=Queues)
    def queues(self, request: Request) -> Response: ...
    """

    def __init__(self) -> None:
        self._declared: list[Operation] = []

    def __call__(
        self, method: str, path: str, *, summary: str, name: str | None = None, **doc: Any
    ) -> Callable[[F], F]:
        def declare(handler: F) -> F:
            operation = Operation(method, path, handler, summary, name or handler.__name__, **doc)
            self._declared.append(operation)
            return handler

        return declare

    def __iter__(self) -> Iterator[Operation]:
        return iter(self._declared)

    def by_path(self) -> dict[str, dict[str, Operation]]:
        """Each path's operations by method, paths in their declared order."""
        paths: dict[str, dict[str, Operation]] = {}
        for op in self._declared:
            paths.setdefault(op.path, {})[op.method] = op
        return paths


# The API's operations: every handlers module that declares routes declares them here.
OPERATIONS = Operations()
