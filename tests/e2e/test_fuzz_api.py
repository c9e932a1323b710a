"""Thousands of generated requests, well- and ill-formed: never a 5xx, every error JSON,
and rejected input creates nothing."""

from __future__ import annotations

import json
import re
import urllib.parse
from collections import Counter
from dataclasses import dataclass, field

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from tests import rawhttp
from tests.e2e.conftest import Service

pytestmark = pytest.mark.e2e

REQUESTS = 2000

scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=30)
)
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=12,
)
odd_text = st.sampled_from(
    ["", " ", "\x00", "\u200b", "<script>", "../../etc/passwd", "\U0001f3ac", "é" * 2001, "\\ud800"]
)
FIELDS = {
    "prompt": st.text(min_size=1, max_size=40) | odd_text | json_values,
    "title": st.none() | st.text(max_size=130) | odd_text | scalars,
    "style": st.sampled_from(["cinematic", "noir", "Noir", "horror"]) | scalars,
    "scene_count": st.integers(-3, 30) | st.sampled_from([True, 3.0, "3", 2**63]) | scalars,
    "priority": st.sampled_from(["low", "normal", "high", "HIGH", ""]) | scalars,
    "seed": st.none() | st.integers(-5, 2**64) | scalars,
    "owner": scalars,
}
CONTENT_TYPES = [
    b"application/json",
    b"application/json; charset=utf-8",
    b"text/plain",
    b"application/x-www-form-urlencoded",
    b"application/jsonx",
    b"",
]
RAW_BODIES = [
    b"",
    b"{",
    b"\xff\xfe{}",
    b"[" * 5000 + b"]" * 5000,
    b'{"prompt": "x"} {}',
    b'{"prompt": "x", "seed": 1e400}',
    b'{"prompt": "\xc3\x28"}',
    b'{"prompt": "' + b"z" * 70_000 + b'"}',
]
IDEMPOTENCY_KEYS = st.none() | st.sampled_from(["k1", "", " ", "x" * 201, "é", "€", "a b"])
ODD_IDS = ["..", "%2e%2e%2f", "%00", "%ff%fe", "%E2%82%AC", "é", "x" * 3000, "%0d%0aX:1", "~"]
TEMPLATES = [
    ("GET", "/api/movies/{id}"),
    ("GET", "/api/movies/{id}/status"),
    ("POST", "/api/movies/{id}/cancel"),
    ("POST", "/api/movies/{id}/retry"),
    ("GET", "/api/movies/{id}/artifacts/{name}"),
    ("GET", "/api/queue/{id}/position"),
    ("GET", "/api/queues"),
    ("GET", "/healthz"),
    ("GET", "/"),
    ("GET", "/api/movies"),
    ("POST", "/api/admission/pause"),
    ("DELETE", "/api/movies/{id}"),
    ("POST", "/api/movies/{id}/priority"),
    ("GET", "/api/movies/{id}/logs"),
    ("GET", "/api/dead-letters"),
]
ARTIFACTS = ["story.json", "movie.mp4", "scene-01.png", "../movies.db", "%2e%2e%2fmovies.db", "."]
KNOWN_METHODS = {b"GET", b"POST", b"PUT", b"PATCH", b"DELETE", b"HEAD", b"OPTIONS", b"TRACE"}
METHODS = ["GET", "POST", "PUT", "DELETE", "HEAD", "OPTIONS", "TRACE", "FOO", "get"]
LIMITS = ["", "0", "5", "101", "abc", "1e2", " 5", "²", "١٢", "-0", "99999999999999999999"]
HEADERS = [b"Content-Length", b"Transfer-Encoding", b"Idempotency-Key", b"Expect", b"Range"]
FRAMING = (b"Content-Length", b"Transfer-Encoding")
HEADER_VALUES = [b"1", b"-1", b"chunked", b"100-continue", b"bytes=0-1", b"\xff\xfe", b"a" * 4000]


@dataclass
class Tally:
    statuses: Counter[int | None] = field(default_factory=Counter)
    failures: list[str] = field(default_factory=list)
    created: set[str] = field(default_factory=set)
    deleted: set[str] = field(default_factory=set)

    def check(
        self, what: str, method: bytes, answer: rawhttp.Answer, *, protocol: bool = False
    ) -> None:
        """`protocol`: HTTP's parser refuses the request (malformed framing headers, a method
        it does not know, raw bytes outside ASCII in the target) before the application sees
        it: a 400 then, JSON like every other error."""
        self.statuses[answer.status] += 1
        if answer.status is None:
            self.failures.append(f"{what}: no answer ({answer.error})")
        elif answer.status >= 500:
            self.failures.append(f"{what}: {answer.status} {answer.body[:200]!r}")
        elif protocol and answer.status != 400:
            self.failures.append(f"{what}: {answer.status} for a request that is not HTTP")
        elif answer.status >= 400 and method != b"HEAD":
            error = (answer.json() or {}).get("error") if answer.body[:1] == b"{" else None
            if not isinstance(error, dict) or set(error) != {"code", "message", "details"}:
                self.failures.append(f"{what}: {answer.status} without a JSON error")
        elif answer.status == 202 and method == b"POST" and "movie_id" in answer.json():
            self.created.add(answer.json()["movie_id"])
        elif answer.status == 204 and method == b"DELETE":
            self.deleted.update(re.findall(r"/api/movies/([0-9a-f]{32})", what))


def test_generated_requests_never_break_the_api(shared_service: Service) -> None:
    port = shared_service.port
    tally = Tally()
    ids = []
    for i in range(3):  # real movies, so the id routes reach documents too
        answer = rawhttp.send(port, create(json.dumps({"prompt": f"seed {i}"}).encode()))
        tally.check("seed", b"POST", answer)
        ids.append(answer.json()["movie_id"])

    @settings(
        max_examples=REQUESTS,
        deadline=None,
        database=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(st.data())
    def one(data: st.DataObject) -> None:
        draw = data.draw
        kind = draw(st.sampled_from(["create", "create", "route", "list", "random", "headers"]))
        framing = False
        if kind == "create":
            raw = draw(create_requests())
        elif kind == "route":
            verb, template = draw(st.sampled_from(TEMPLATES))
            movie = draw(st.sampled_from(ids) | st.sampled_from(ODD_IDS) | quoted_text())
            path = template.replace("{id}", movie).replace(
                "{name}", draw(st.sampled_from(ARTIFACTS))
            )
            path += draw(st.sampled_from(["", "/", "?x=1", "%2F", ";x"]))
            verb = draw(st.sampled_from([verb, *METHODS]))
            # With a script's header the writes reach their operation; without, the guard
            # refuses them (415), as it would a form of another site.
            named = draw(st.sampled_from([[CLIENT], [CLIENT], []]))
            raw = rawhttp.build(verb.encode(), path.encode(), named, None)
        elif kind == "list":
            query = {"limit": draw(st.sampled_from(LIMITS)), "cursor": draw(st.text(max_size=20))}
            path = "/api/movies?" + urllib.parse.urlencode(query)
            raw = rawhttp.build(b"GET", path.encode(), [], None)
        elif kind == "random":
            segments = draw(st.lists(st.sampled_from(["api", "movies", "..", ""]) | quoted_text()))
            path = "/" + "/".join(segments)
            raw = rawhttp.build(draw(st.sampled_from(METHODS)).encode(), path.encode(), [], None)
        else:
            header = st.tuples(st.sampled_from(HEADERS), st.sampled_from(HEADER_VALUES))
            extra = draw(st.lists(header, max_size=3))
            framing = any(name in FRAMING for name, _ in extra)
            body = b'{"prompt": "header fuzz"}'
            raw = rawhttp.build(b"POST", b"/api/movies", [(b"Content-Type", JSON), *extra], body)
        method, target, _ = raw.split(b" ", 2)
        protocol = framing or method not in KNOWN_METHODS or not target.isascii()
        answer = rawhttp.send(port, raw)
        tally.check(raw[:120].decode("latin-1"), method, answer, protocol=protocol)

    one()
    rawhttp.send(port, rawhttp.build(b"POST", b"/api/admission/resume", [CLIENT], None))
    assert not tally.failures, "\n".join(tally.failures[:20])
    assert sum(tally.statuses.values()) >= REQUESTS
    # Rejected input created nothing; a movie is gone only after its DELETE's 204.
    assert listed(shared_service) == tally.created - tally.deleted


JSON = b"application/json"
CLIENT = (b"X-DeepFlix-Client", b"fuzz")


def create(body: bytes, headers: list[tuple[bytes, bytes]] | None = None) -> bytes:
    return rawhttp.build(b"POST", b"/api/movies", [(b"Content-Type", JSON), *(headers or [])], body)


def quoted_text() -> st.SearchStrategy[str]:
    return st.text(min_size=1, max_size=20).map(lambda s: urllib.parse.quote(s, safe=""))


@st.composite
def create_requests(draw: st.DrawFn) -> bytes:
    shape = draw(st.integers(0, 9))
    if shape < 7:
        fields = draw(st.lists(st.sampled_from(sorted(FIELDS)), unique=True))
        body = {name: draw(FIELDS[name]) for name in fields}
        if draw(st.integers(0, 4)):
            body["prompt"] = draw(st.text(min_size=1, max_size=40))
        raw = json.dumps(body, ensure_ascii=draw(st.booleans())).encode()
    elif shape == 7:
        raw = json.dumps(draw(json_values)).encode()
    else:
        raw = draw(st.sampled_from(RAW_BODIES))
    headers = [(b"Content-Type", draw(st.sampled_from(CONTENT_TYPES)))]
    key = draw(IDEMPOTENCY_KEYS)
    if key is not None:
        headers.append((b"Idempotency-Key", key.encode()))
    return rawhttp.build(b"POST", b"/api/movies", headers, raw)


def listed(service: Service) -> set[str]:
    ids: set[str] = set()
    cursor = ""
    while True:
        code, page = service.request("GET", f"/api/movies?limit=100&cursor={cursor}")
        assert code == 200, page
        ids |= {m["movie_id"] for m in page["movies"]}
        if not page["next_cursor"]:
            return ids
        cursor = urllib.parse.quote(page["next_cursor"])
