"""The `http` generator set: a studio's own model server writes the story and paints the stills.

The contract (README, "A model server of your own"): POST {base}/story with JSON
`{"prompt", "title", "style", "scene_count", "seed"}` answers the story draft as JSON (the
`gemini` set's schema: title, logline, characters, scenes); POST {base}/image with JSON
`{"prompt", "width", "height", "seed", "scene"}` answers the picture's bytes (PNG or JPEG).
Errors: 429 and 5xx are retryable (Retry-After is named in the error), other 4xx permanent
with the server's `{"error": {"message"}}` or text; each call has a deadline.
"""

from __future__ import annotations

import email.utils
import json
import urllib.error
import urllib.request
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from deepflix.pipeline.errors import PermanentStageError, RetryableStageError, StageWorkError
from deepflix.stages.generators.base import Scene, Story
from deepflix.stages.generators.hosted import (
    HEIGHT,
    WIDTH,
    image_prompt,
    story_from_draft,
    story_prompt,
    to_still,
)


def _reason(body: bytes) -> str:
    try:
        data = json.loads(body)
    except ValueError:
        return body.decode("utf-8", "replace")[:500].strip()
    error = data.get("error") if isinstance(data, dict) else None
    if isinstance(error, dict) and "message" in error:
        return str(error["message"])
    return str(error or data)[:500]


class ModelServer:
    """POSTs JSON to one server with a deadline per call; failures as the pipeline's errors."""

    def __init__(self, *, base_url: str, timeout_s: float, token: str | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout_s = timeout_s
        self.token = token
        self.name = self.base_url

    def post(self, route: str, payload: dict[str, Any]) -> bytes:
        headers = {"Content-Type": "application/json"}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        req = urllib.request.Request(
            f"{self.base_url}/{route}", json.dumps(payload).encode(), headers, method="POST"
        )
        try:
            with urllib.request.urlopen(req, timeout=self.timeout_s) as resp:  # nosec B310 # an http(s) URL from the operator's settings or flags
                return bytes(resp.read())
        except urllib.error.HTTPError as e:
            raise self._http_error(route, e) from e
        except (urllib.error.URLError, TimeoutError, ConnectionError) as e:
            raise RetryableStageError(
                f"{self.name}/{route}: unreachable: {e}", code="model_unavailable"
            ) from e

    def _http_error(self, route: str, e: urllib.error.HTTPError) -> StageWorkError:
        why = f"{self.name}/{route}: {e.code}: {_reason(e.read())}"
        after = retry_after_seconds(e.headers.get("Retry-After"))
        if e.code == 429:
            suffix = f" (the server asks to wait {after:g}s)" if after is not None else ""
            return RetryableStageError(why + suffix, code="model_rate_limited", retry_after_s=after)
        if e.code >= 500 or e.code == 408:
            return RetryableStageError(why, code="model_unavailable", retry_after_s=after)
        return PermanentStageError(why, code="model_rejected")


def retry_after_seconds(value: str | None) -> float | None:
    """Retry-After in seconds (its HTTP-date form counted from now); None if absent or bad."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        return None
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


class HttpStoryGenerator:
    def __init__(self, *, server: ModelServer, scene_seconds: float) -> None:
        self.server = server
        self.scene_seconds = scene_seconds

    def write_story(
        self, *, prompt: str, title: str | None, style: str, scene_count: int, seed: int
    ) -> Story:
        payload = {
            "prompt": prompt,
            "title": title,
            "style": style,
            "scene_count": scene_count,
            "seed": seed,
            # What a server wrapping a general language model may pass on as its prompt.
            "instructions": story_prompt(
                prompt=prompt, title=title, style=style, scene_count=scene_count
            ),
        }
        return story_from_draft(
            self.server.post("story", payload),
            source=self.server.name,
            prompt=prompt,
            title=title,
            style=style,
            scene_count=scene_count,
            seed=seed,
            scene_seconds=self.scene_seconds,
        )


class HttpImageGenerator:
    def __init__(self, *, server: ModelServer, threads: int = 2) -> None:
        self.server = server
        self.threads = threads

    def render_scene(self, *, story: Story, scene: Scene, out_path: Path) -> None:
        payload = {
            "prompt": image_prompt(story, scene),
            "width": WIDTH,
            "height": HEIGHT,
            "seed": story.seed + scene.index,
            "scene": scene.index,
        }
        to_still(self.server.post("image", payload), out_path)
