"""The API's routes: a few fixed shapes, matched segment by segment without regular expressions."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

# A path pattern: literal segments, or "<name>" for one non-empty segment passed as `name`.
Pattern = tuple[str, ...]


class NoRoute(LookupError):
    """No pattern matches the path."""


class WrongMethod(LookupError):
    """A pattern matches the path, but not for this method."""

    def __init__(self, allowed: list[str]) -> None:
        super().__init__(", ".join(allowed))
        self.allowed = allowed


@dataclass
class _Shape:
    pattern: Pattern
    endpoints: dict[str, str] = field(default_factory=dict)  # method -> endpoint

    def bind(self, segments: list[str]) -> dict[str, str] | None:
        args = {}
        for want, got in zip(self.pattern, segments, strict=True):
            if want.startswith("<"):
                if not got:
                    return None
                args[want[1:-1]] = got
            elif want != got:
                return None
        return args


def _segments(path: str) -> list[str]:
    # One trailing slash is forgiven, as werkzeug's strict_slashes=False did.
    if len(path) > 1 and path.endswith("/"):
        path = path[:-1]
    return [] if path in ("", "/") else path[1:].split("/")


class Router:
    """Routes are (method, path, endpoint); a GET route answers HEAD too."""

    def __init__(self, routes: Iterable[tuple[str, str, str]]) -> None:
        self._shapes: dict[int, list[_Shape]] = {}
        for method, path, endpoint in routes:
            pattern = tuple(_segments(path))
            shapes = self._shapes.setdefault(len(pattern), [])
            shape = next((s for s in shapes if s.pattern == pattern), None)
            if shape is None:
                shape = _Shape(pattern)
                shapes.append(shape)
            shape.endpoints[method] = endpoint
            if method == "GET":
                shape.endpoints["HEAD"] = endpoint

    def match(self, method: str, path: str) -> tuple[str, dict[str, str]]:
        segments = _segments(path)
        for shape in self._shapes.get(len(segments), ()):
            args = shape.bind(segments)
            if args is None:
                continue
            endpoint = shape.endpoints.get(method)
            if endpoint is None:
                raise WrongMethod(sorted(shape.endpoints))
            return endpoint, args
        raise NoRoute(path)
