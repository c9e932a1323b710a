"""What a web page of another site cannot make the API do: the Host allow-list (DNS
rebinding) and the checks on every write (cross-site requests)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Receive, Scope, Send

from deepflix import logs
from deepflix.handlers.responses import (
    CrossSiteRequest,
    MisdirectedRequest,
    UnsupportedMediaType,
    error_answer,
)
from deepflix.pipeline.errors import DeepflixError

log = logs.get("api")
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# A header a browser sends cross-site only after a CORS preflight, which this API does not
# grant: its presence says the request is no form or plain fetch of another site's page.
CLIENT_HEADER = "X-DeepFlix-Client"
CLIENT_HEADERS = ("x-deepflix-client", "x-requested-with")
LOCAL_NAMES = ("localhost", "127.0.0.1", "[::1]")
ANY_IPV4 = "0.0.0.0"  # nosec B104 # recognises a bind to every address; binds nothing
WILDCARDS = (ANY_IPV4, "::", "[::]", "")  # bound to every address


@dataclass(frozen=True)
class RequestGuard:
    """`hosts`: the Host values served as they are (`name` or `name:port`), None: any Host;
    `names`: names served at any port. `origins`: the other sites (`scheme://host[:port]`)
    whose pages may write here; a page of this site's own origin always may."""

    hosts: frozenset[str] | None
    names: frozenset[str] = frozenset()
    origins: frozenset[str] = frozenset()

    @classmethod
    def local(
        cls, *, host: str, port: int, allowed_hosts: Iterable[str], allowed_origins: Iterable[str]
    ) -> RequestGuard:
        """`deepflix serve`: the loopback names and the bound address at the bound port (or
        with none, as raw HTTP tools send; a browser names any port but 80), and the
        configured ones."""
        bound = f"[{host}]" if ":" in host else host
        names = [*LOCAL_NAMES, *([bound.lower()] if host not in WILDCARDS else [])]
        served = frozenset(n for name in names for n in (name, f"{name}:{port}"))
        given = cls.configured(allowed_hosts=allowed_hosts, allowed_origins=allowed_origins)
        if given.hosts is None and any(h.strip() == "*" for h in allowed_hosts):
            return given
        return cls(served | (given.hosts or frozenset()), given.names, given.origins)

    @classmethod
    def configured(
        cls, *, allowed_hosts: Iterable[str], allowed_origins: Iterable[str]
    ) -> RequestGuard:
        """The Host values and origins of the settings: `name:port` serves that port, `name`
        any; `*` (or none at all, behind a platform that routes by its own names) any Host."""
        given = {h.strip().lower() for h in allowed_hosts if h.strip()}
        origins = frozenset(o.strip().lower().rstrip("/") for o in allowed_origins if o.strip())
        if not given or "*" in given:
            return cls(None, origins=origins)
        names = frozenset(h for h in given if _name(h) == h)
        return cls(frozenset(given - names), names, origins)

    def refusal(self, method: str, headers: Headers) -> DeepflixError | None:
        host = headers.get("host", "").lower()
        if self.hosts is not None and not self._serves(host):
            return MisdirectedRequest(
                "this service does not answer to that Host; a name it should answer to "
                "belongs in DEEPFLIX_ALLOWED_HOSTS",
                details={"host": host},
            )
        if method in SAFE_METHODS:
            return None
        origin = headers.get("origin")
        if origin is not None and origin.lower().rstrip("/") not in self.origins:
            if urlsplit(origin.lower()).netloc != host:
                return CrossSiteRequest(
                    "a page of another site may not change anything here",
                    details={"origin": origin},
                )
        elif origin is None and headers.get("sec-fetch-site") == "cross-site":
            return CrossSiteRequest(
                "a page of another site may not change anything here",
                details={"sec_fetch_site": "cross-site"},
            )
        ctype = headers.get("content-type")
        is_json = (ctype or "").partition(";")[0].strip().lower() == "application/json"
        if not is_json and not any(name in headers for name in CLIENT_HEADERS):
            return UnsupportedMediaType(
                f"a {method} is sent as application/json (its body may be empty) or with "
                f"an {CLIENT_HEADER} header",
                details={"content_type": ctype},
            )
        return None

    def _serves(self, host: str) -> bool:
        assert self.hosts is not None  # nosec B101 # an invariant, not a check of input
        return host in self.hosts or _name(host) in self.names


def _name(host: str) -> str:
    """A Host value without its port: `[::1]:8080` is `[::1]`, `example.com` itself."""
    name, colon, port = host.rpartition(":")
    return name if colon and port.isdigit() and not name.endswith(":") and name else host


class Guarded:
    """The guard in front of the whole app, so that no route, 404 or 405 answers a request
    it refuses; the refusal has the API's JSON error envelope."""

    def __init__(self, app: ASGIApp, guard: RequestGuard) -> None:
        self.app = app
        self.guard = guard

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            refused = self.guard.refusal(scope["method"], Headers(scope=scope))
            if refused is not None:
                log.info("refused %s %s: %s", scope["method"], scope["path"], refused.code)
                await error_answer(refused)(scope, receive, send)
                return
        await self.app(scope, receive, send)
