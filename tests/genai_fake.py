"""A fake Gemini API on 127.0.0.1 speaking the REST shapes the google-genai SDK uses.

generateContent (structured JSON output, and image output), Veo's predictLongRunning with its
operation polling (Vertex AI's fetchPredictOperation, the clip inline), and the errors the real
API sends (google.rpc.Status bodies; RetryInfo on a 429). Each route answers from its queue of
scripted replies first, then with a success built from the request.
"""

from __future__ import annotations

import base64
import functools
import io
import json
import re
import subprocess
import tempfile
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from PIL import Image

HOST = "127.0.0.1"
LRO_RESPONSE = "type.googleapis.com/google.ai.generativelanguage.v1beta.PredictLongRunningResponse"
API_KEY = "fake-key-123"


@dataclass(frozen=True)
class Reply:
    status: int
    body: dict[str, Any]
    raw: bytes | None = None  # sent as it is instead of the JSON body


def clip_bytes(file_id: str) -> bytes:
    """Stand-in MP4 bytes (an ftyp box and the file's id): the tests never decode them."""
    return b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom" + file_id.encode()


@functools.cache
def real_clip(seconds: float = 1.0) -> bytes:
    """A small real H.264 MP4 for tests whose clips are decoded and joined."""
    import imageio_ffmpeg

    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "clip.mp4"
        subprocess.run(
            [
                *(imageio_ffmpeg.get_ffmpeg_exe(), "-nostdin", "-loglevel", "error", "-y"),
                *("-f", "lavfi", "-i", f"testsrc=size=320x180:rate=24:duration={seconds}"),
                *("-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", str(out)),
            ],
            check=True,
            timeout=60,
        )
        return out.read_bytes()


def rate_limited(retry_s: float | None = 1.0) -> Reply:
    details = (
        [{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": f"{retry_s:g}s"}]
        if retry_s is not None
        else []
    )
    return Reply(
        429,
        {
            "error": {
                "code": 429,
                "message": "You exceeded your current quota, please check your plan.",
                "status": "RESOURCE_EXHAUSTED",
                "details": details,
            }
        },
    )


def server_error() -> Reply:
    return Reply(
        500,
        {
            "error": {
                "code": 500,
                "message": "An internal error has occurred.",
                "status": "INTERNAL",
            }
        },
    )


def invalid_argument(message: str) -> Reply:
    return Reply(400, {"error": {"code": 400, "message": message, "status": "INVALID_ARGUMENT"}})


def prompt_blocked() -> Reply:
    return Reply(
        200,
        {
            "promptFeedback": {
                "blockReason": "SAFETY",
                "safetyRatings": [
                    {"category": "HARM_CATEGORY_DANGEROUS_CONTENT", "probability": "HIGH"}
                ],
            },
            "usageMetadata": {"promptTokenCount": 40, "totalTokenCount": 40},
        },
    )


def image_filtered() -> Reply:
    message = "Unable to show the generated image: it may depict a real person."
    rating = {"category": "HARM_CATEGORY_DANGEROUS_CONTENT", "probability": "HIGH", "blocked": True}
    candidate = {
        "finishReason": "IMAGE_SAFETY",
        "finishMessage": message,
        "safetyRatings": [rating],
        "index": 0,
    }
    return Reply(200, {"candidates": [candidate], "usageMetadata": {"promptTokenCount": 90}})


def story_json(prompt: str) -> dict[str, Any]:
    found = re.search(r"Exactly (\d+) scenes", prompt)
    count = int(found.group(1)) if found else 3
    return {
        "title": "The Keeper and the Storm",
        "logline": "A lighthouse keeper learns to listen to the weather.",
        "characters": [
            {
                "name": "Mara",
                "role": "keeper",
                "description": "a woman of sixty, grey braid, yellow oilskin coat",
            },
            {"name": "Gale", "role": "the storm", "description": "a swirl of slate-blue cloud"},
        ],
        "scenes": [
            {
                "heading": f"EXT. LIGHTHOUSE - NIGHT {i + 1}",
                "description": f"Mara climbs the stairs as Gale gathers, moment {i + 1}.",
                "narration": f"The sea spoke, and Mara answered ({i + 1}).",
                "shot": "wide, slow push in",
                "mood": "tense",
            }
            for i in range(count)
        ],
    }


def png(width: int, height: int) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (width, height), (40, 90, 160)).save(buf, format="PNG")
    return buf.getvalue()


def content_reply(path: str, part: dict[str, Any], *, output_tokens: int) -> dict[str, Any]:
    return {
        "candidates": [
            {"content": {"parts": [part], "role": "model"}, "finishReason": "STOP", "index": 0}
        ],
        "usageMetadata": {
            "promptTokenCount": 120,
            "candidatesTokenCount": output_tokens,
            "totalTokenCount": 120 + output_tokens,
        },
        "modelVersion": path.rpartition("/")[2].partition(":")[0],
    }


@dataclass
class FakeGenai:
    server: ThreadingHTTPServer
    script: dict[str, list[Reply]] = field(default_factory=dict)
    requests: list[tuple[str, dict[str, str], dict[str, Any]]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    # Veo: how many lookups of a new operation answer "not done" first.
    polls_before_done: int = 2
    operations: dict[str, int] = field(default_factory=dict)  # name -> lookups left
    polls: list[str] = field(default_factory=list)
    # The bytes of a finished operation's clip, from the operation's id.
    clip: Callable[[str], bytes] = clip_bytes

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.server.server_address[1]}"

    def queue(self, method: str, *replies: Reply) -> None:
        with self.lock:
            self.script.setdefault(method, []).extend(replies)

    def calls(self, method: str) -> list[dict[str, Any]]:
        with self.lock:
            return [body for path, _, body in self.requests if path.endswith(":" + method)]

    def operation(self, name: str) -> Reply:
        """Vertex AI's fetchPredictOperation: the operation's state, the clip inline when done."""
        self.polls.append(name)
        scripted = self.script.get("operation")
        if scripted:
            return scripted.pop(0)
        left = self.operations.get(name)
        if left is None:
            return Reply(404, {"error": {"code": 404, "message": name, "status": "NOT_FOUND"}})
        if left > 0:
            self.operations[name] = left - 1
            return Reply(200, {"name": name})
        clip = base64.b64encode(self.clip(name.rpartition("/")[2])).decode()
        response = {
            "@type": LRO_RESPONSE,
            "raiMediaFilteredCount": 0,
            "videos": [{"bytesBase64Encoded": clip, "mimeType": "video/mp4"}],
        }
        return Reply(200, {"name": name, "done": True, "response": response})

    def answer(self, path: str, headers: dict[str, str], body: dict[str, Any]) -> Reply:
        method = path.rpartition(":")[2]
        with self.lock:
            self.requests.append((path, headers, body))
            scripted = self.script.get(method)
            if scripted:
                return scripted.pop(0)
            if method == "predictLongRunning":
                model = path.split("?")[0].lstrip("/").partition("/")[2].partition(":")[0]
                name = f"{model}/operations/op{len(self.operations) + 1}"
                self.operations[name] = self.polls_before_done
                return Reply(200, {"name": name})
            if method == "fetchPredictOperation":
                return self.operation(body["operationName"])
        if method == "generateContent" and "IMAGE" in body.get("generationConfig", {}).get(
            "responseModalities", []
        ):
            # Gemini's 16:9 size, not the video's: the generator converts it.
            data = base64.b64encode(png(1344, 768)).decode()
            part: dict[str, Any] = {"inlineData": {"mimeType": "image/png", "data": data}}
            return Reply(200, content_reply(path, part, output_tokens=1290))
        if method == "generateContent":
            prompt = body["contents"][0]["parts"][0]["text"]
            part = {"text": json.dumps(story_json(prompt))}
            return Reply(200, content_reply(path, part, output_tokens=640))
        return Reply(404, {"error": {"code": 404, "message": path, "status": "NOT_FOUND"}})


@contextmanager
def fake_genai() -> Iterator[FakeGenai]:
    holder: list[FakeGenai] = []

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            """Quiet: the tests assert on what arrived."""

        def do_POST(self) -> None:
            raw = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            reply = holder[0].answer(
                self.path, dict(self.headers.items()), json.loads(raw or b"{}")
            )
            data = json.dumps(reply.body).encode()
            self.send_response(reply.status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    server = ThreadingHTTPServer((HOST, 0), Handler)
    holder.append(FakeGenai(server))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield holder[0]
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
