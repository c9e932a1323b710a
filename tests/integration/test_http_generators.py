"""The http generator set against a small model server on 127.0.0.1 speaking its contract."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from deepflix.pipeline.errors import StageWorkError
from deepflix.stages.generators.base import Generators
from deepflix.stages.generators.http import ModelServer
from deepflix.stages.generators.registry import load_generators
from tests.genai_fake import png, story_json

pytestmark = pytest.mark.integration


@dataclass
class Studio:
    url: str = ""
    received: list[tuple[str, dict[str, str], dict[str, Any]]] = field(default_factory=list)
    # Scripted failures, first served first: (status, headers, body).
    failures: list[tuple[int, dict[str, str], bytes]] = field(default_factory=list)


@pytest.fixture
def studio() -> Iterator[Studio]:
    state = Studio()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            """Quiet: the tests assert on what arrived."""

        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            state.received.append((self.path, dict(self.headers.items()), body))
            if state.failures:
                status, headers, data = state.failures.pop(0)
            elif self.path == "/v1/story":
                status, headers = 200, {"Content-Type": "application/json"}
                data = json.dumps(story_json(f"Exactly {body['scene_count']} scenes")).encode()
            else:
                status, headers, data = 200, {"Content-Type": "image/png"}, png(1024, 1024)
            self.send_response(status)
            for k, v in headers.items():
                self.send_header(k, v)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.url = f"http://127.0.0.1:{server.server_address[1]}/v1"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def gens(url: str, token: str | None = "studio-token") -> Generators:
    server = ModelServer(base_url=url, timeout_s=5, token=token)
    return load_generators("http", scene_seconds=2.5, server=server)


def test_story_and_stills_follow_the_contract(studio: Studio, tmp_path: Path) -> None:
    g = gens(studio.url)
    story = g.story.write_story(prompt="p", title="Mine", style="noir", scene_count=2, seed=9)
    assert story.title == "Mine" and len(story.scenes) == 2 and story.scenes[1].duration_s == 2.5
    g.images.render_scene(story=story, scene=story.scenes[1], out_path=tmp_path / "1.png")
    with Image.open(tmp_path / "1.png") as img:
        assert img.size == (1280, 720) and img.mode == "RGB"
    (path, headers, body), (ipath, _, ibody) = studio.received
    assert path == "/v1/story" and headers["Authorization"] == "Bearer studio-token"
    assert {k: body[k] for k in ("prompt", "title", "style", "scene_count", "seed")} == {
        "prompt": "p",
        "title": "Mine",
        "style": "noir",
        "scene_count": 2,
        "seed": 9,
    }
    assert ipath == "/v1/image" and (ibody["width"], ibody["height"], ibody["scene"]) == (
        1280,
        720,
        1,
    )
    assert "Mara (keeper)" in ibody["prompt"]


@pytest.mark.parametrize(
    ("status", "headers", "body", "retryable", "text", "after"),
    [
        (429, {"Retry-After": "12"}, b'{"error": {"message": "busy"}}', True, "wait 12s", 12.0),
        (503, {"Retry-After": "7"}, b"overloaded", True, "overloaded", 7.0),
        (503, {}, b"overloaded", True, "overloaded", None),
        (400, {}, b'{"error": {"message": "prompt refused: unsafe"}}', False, "unsafe", None),
    ],
)
def test_errors_follow_the_retry_policy(
    studio: Studio,
    status: int,
    headers: dict[str, str],
    body: bytes,
    retryable: bool,
    text: str,
    after: float | None,
) -> None:
    studio.failures.append((status, headers, body))
    with pytest.raises(StageWorkError) as err:
        gens(studio.url).story.write_story(prompt="p", title=None, style="s", scene_count=1, seed=1)
    assert err.value.retryable is retryable and text in err.value.message
    # The server's Retry-After goes to the retry policy with the error.
    assert getattr(err.value, "retry_after_s", None) == after


def test_a_retry_after_date_counts_from_now() -> None:
    from email.utils import format_datetime

    from deepflix.stages.generators.http import retry_after_seconds

    later = format_datetime(datetime.now(UTC) + timedelta(seconds=120), usegmt=True)
    seconds = retry_after_seconds(later)
    assert seconds is not None and 100 < seconds <= 120
    assert retry_after_seconds("soon") is None and retry_after_seconds("-3") == 0.0


def test_a_story_that_does_not_validate_is_retryable(studio: Studio) -> None:
    studio.failures.append((200, {"Content-Type": "application/json"}, b'{"title": "x"}'))
    with pytest.raises(StageWorkError) as err:
        gens(studio.url).story.write_story(prompt="p", title=None, style="s", scene_count=1, seed=1)
    assert err.value.retryable and err.value.code == "model_bad_output"


def test_an_unreachable_server_is_retryable() -> None:
    server = ModelServer(base_url="http://127.0.0.1:9/v1", timeout_s=2)  # discard: refused
    with pytest.raises(StageWorkError) as err:
        server.post("story", {})
    assert err.value.retryable and err.value.code == "model_unavailable"
