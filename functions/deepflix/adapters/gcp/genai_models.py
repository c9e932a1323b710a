"""Gemini through the google-genai SDK, as the stages' TextModel and ImageModel (image output).

Errors become the pipeline's: RESOURCE_EXHAUSTED (429), 5xx and timeouts are retryable; a
safety block or an invalid argument is permanent, with the model's reason. A 429 whose retry
hint fits in the call's remaining budget is waited out and tried once more here.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import httpx2 as httpx  # the transport the SDK requires (a fork of httpx)
from google import genai
from google.genai import errors, types

from deepflix import logs
from deepflix.pipeline import usage
from deepflix.pipeline.errors import PermanentStageError, RetryableStageError, StageWorkError
from deepflix.pipeline.models import ModelUsage

log = logs.get("genai")
T = TypeVar("T")


@dataclass(frozen=True)
class GenaiConfig:
    """How to reach the models: an API key (Gemini API) or a project and location (Vertex AI,
    the service account's credentials)."""

    api_key: str | None
    vertex: bool
    project: str
    location: str
    text_model: str
    image_model: str
    call_timeout_s: float
    base_url: str | None = None  # a test's fake server
    video_model: str | None = None  # Veo, where the video stage films clips
    # Vertex AI: google.auth credentials; None: the environment's (the service account's).
    credentials: Any = None


def client(cfg: GenaiConfig) -> genai.Client:
    # The SDK's own retries are off: ours honour the retry hint within the call's budget.
    http = types.HttpOptions(
        timeout=int(cfg.call_timeout_s * 1000),
        base_url=cfg.base_url,
        retry_options=types.HttpRetryOptions(attempts=1),
    )
    if cfg.vertex and cfg.api_key:
        # Vertex AI express mode: a Vertex API key instead of a project's credentials.
        return genai.Client(vertexai=True, api_key=cfg.api_key, http_options=http)
    if cfg.vertex:
        return genai.Client(
            vertexai=True,
            project=cfg.project,
            location=cfg.location,
            credentials=cfg.credentials,
            http_options=http,
        )
    if not cfg.api_key:
        raise ValueError("DEEPFLIX_GENAI_API_KEY is required unless DEEPFLIX_GENAI_VERTEX=true")
    return genai.Client(api_key=cfg.api_key, http_options=http)


def retry_hint_s(err: errors.APIError) -> float | None:
    """The server's RetryInfo (`"retryDelay": "7s"`), if it gave one."""
    body = err.details if isinstance(err.details, dict) else {}
    for d in body.get("error", {}).get("details", []):
        if isinstance(d, dict) and str(d.get("@type", "")).endswith("google.rpc.RetryInfo"):
            m = re.fullmatch(r"([\d.]+)s", str(d.get("retryDelay", "")))
            if m:
                return float(m.group(1))
    return None


def classify(err: Exception, model: str) -> StageWorkError:
    """The pipeline's error for an SDK or transport failure."""
    if isinstance(err, errors.APIError):
        reason = f"{model}: {err.code} {err.status}: {err.message}"
        if err.code == 429 or err.status == "RESOURCE_EXHAUSTED":
            hint = retry_hint_s(err)
            suffix = f" (the server asks to wait {hint:g}s)" if hint is not None else ""
            return RetryableStageError(
                reason + suffix, code="model_rate_limited", retry_after_s=hint
            )
        if isinstance(err, errors.ServerError) or err.code in (408, 499):
            # A 503 may carry a retry hint too (RetryInfo, like a 429's).
            return RetryableStageError(
                reason, code="model_unavailable", retry_after_s=retry_hint_s(err)
            )
        return PermanentStageError(reason, code="model_rejected")
    if isinstance(err, httpx.TimeoutException):
        return RetryableStageError(f"{model}: no answer in time: {err}", code="model_timeout")
    if isinstance(err, httpx.TransportError):
        why = f"{model}: {type(err).__name__}: {err}"
        return RetryableStageError(why, code="model_unavailable")
    raise err


class _Caller:
    def __init__(self, cfg: GenaiConfig, sdk: genai.Client, model: str) -> None:
        self.name = model
        self.cfg = cfg
        self.sdk = sdk

    def call(self, fn: Callable[[], T]) -> T:
        """fn, with one wait-and-retry when a 429's retry hint fits the call's budget."""
        budget_end = time.monotonic() + self.cfg.call_timeout_s
        for tries in (1, 2):
            try:
                return fn()
            except (errors.APIError, httpx.TransportError) as e:
                hint = retry_hint_s(e) if isinstance(e, errors.APIError) else None
                mapped = classify(e, self.name)
                waits = hint is not None and time.monotonic() + hint < budget_end
                if tries == 1 and mapped.code == "model_rate_limited" and hint and waits:
                    log.info("%s rate limited; waiting %.1fs as asked", self.name, hint)
                    time.sleep(hint)
                    continue
                raise mapped from e
        raise AssertionError("unreachable")


class GeminiText(_Caller):
    """Structured output: the answer is JSON following the given schema."""

    def generate_json(self, *, prompt: str, schema: dict[str, Any], seed: int) -> str:
        config = types.GenerateContentConfig(
            response_mime_type="application/json",
            response_json_schema=schema,
            seed=seed % 2**31,
            temperature=0.9,
        )
        resp = self.call(
            lambda: self.sdk.models.generate_content(
                model=self.name, contents=prompt, config=config
            )
        )
        _raise_if_blocked(resp, self.name)
        if not resp.text:
            raise RetryableStageError(f"{self.name} answered no text", code="model_bad_output")
        _log_usage(resp, self.name)
        return resp.text


class GeminiImages(_Caller):
    """Gemini image output (generate_content answering an inline picture). Imagen's
    generate_images is deprecated by the SDK and not served by the Gemini API."""

    def generate_image(self, *, prompt: str, aspect_ratio: str) -> bytes:
        config = types.GenerateContentConfig(
            response_modalities=["IMAGE"],
            image_config=types.ImageConfig(aspect_ratio=aspect_ratio),
        )
        resp = self.call(
            lambda: self.sdk.models.generate_content(
                model=self.name, contents=prompt, config=config
            )
        )
        _raise_if_blocked(resp, self.name)
        candidate = resp.candidates[0] if resp.candidates else None
        parts = candidate.content.parts if candidate and candidate.content else None
        for part in parts or []:
            if part.inline_data is not None and part.inline_data.data:
                _log_usage(resp, self.name, images=1)
                return bytes(part.inline_data.data)
        raise RetryableStageError(f"{self.name} answered no picture", code="model_bad_output")


def _raise_if_blocked(resp: types.GenerateContentResponse, model: str) -> None:
    """A safety block of the prompt or the answer: permanent, with the model's reason."""
    feedback = resp.prompt_feedback
    if feedback is not None and feedback.block_reason is not None:
        why = feedback.block_reason_message or feedback.block_reason.value
        raise PermanentStageError(f"{model} blocked the prompt: {why}", code="model_blocked")
    candidate = resp.candidates[0] if resp.candidates else None
    finish = candidate.finish_reason if candidate else None
    if candidate and finish is not None and finish.value not in ("STOP", "MAX_TOKENS"):
        # The Gemini API's answer carries no finishMessage through the SDK: the reason and
        # the categories that blocked it are what there is.
        blocked = [
            r.category.value for r in candidate.safety_ratings or [] if r.blocked and r.category
        ]
        why = " ".join(filter(None, [finish.value, candidate.finish_message, *blocked]))
        raise PermanentStageError(f"{model} stopped: {why}", code="model_blocked")


def _log_usage(resp: types.GenerateContentResponse, model: str, *, images: int = 0) -> None:
    u = resp.usage_metadata
    used = ModelUsage(
        model=model,
        calls=1,
        input_tokens=(u.prompt_token_count or 0) if u else 0,
        output_tokens=(u.candidates_token_count or 0) if u else 0,
        images=images,
    )
    log.info("model usage", extra=used.model_dump())
    usage.record(used)  # onto the movie whose stage made the call


# google.rpc.Code values of a failed operation worth another try: DEADLINE_EXCEEDED,
# RESOURCE_EXHAUSTED, ABORTED, INTERNAL, UNAVAILABLE.
_RETRYABLE_RPC_CODES = {4, 8, 10, 13, 14}


class VeoVideo(_Caller):
    """Veo's image-to-video on Vertex AI (google-genai 3.3.0 serves generate_videos there
    only): a long-running operation, started once and then looked up by name from any
    process; the name is all a restarted job needs."""

    def start_clip(self, *, prompt: str, image: bytes, seconds: int) -> str:
        # No sound: the film is joined without it (ffmpeg -an), and Veo prices video alone
        # below video with audio.
        config = types.GenerateVideosConfig(
            aspect_ratio="16:9", duration_seconds=seconds, number_of_videos=1, generate_audio=False
        )
        source = types.GenerateVideosSource(
            prompt=prompt, image=types.Image(image_bytes=image, mime_type="image/png")
        )
        op = self.call(
            lambda: self.sdk.models.generate_videos(model=self.name, source=source, config=config)
        )
        if not op.name:
            raise RetryableStageError(f"{self.name} started no operation", code="model_bad_output")
        # Veo bills the seconds asked for once the operation exists: counted at its start
        # (which is never repeated), not at each lookup.
        used = ModelUsage(model=self.name, calls=1, video_seconds=float(seconds))
        log.info("model usage", extra=used.model_dump())
        usage.record(used)
        return op.name

    def clip(self, operation: str) -> bytes | None:
        """The finished clip's MP4 bytes; None while the operation runs."""
        op = self.call(
            lambda: self.sdk.operations.get(
                types.GenerateVideosOperation.model_validate({"name": operation})
            )
        )
        if not op.done:
            return None
        if op.error:
            code = op.error.get("code")
            why = f"{self.name} operation {operation} failed: {code} {op.error.get('message', '')}"
            if code in _RETRYABLE_RPC_CODES:
                raise RetryableStageError(why, code="model_unavailable")
            raise PermanentStageError(why, code="model_rejected")
        result = op.response or op.result
        if result is not None and result.rai_media_filtered_reasons:
            reasons = "; ".join(result.rai_media_filtered_reasons)
            raise PermanentStageError(
                f"{self.name} filtered the clip: {reasons}", code="model_blocked"
            )
        videos = (result.generated_videos if result else None) or []
        video = videos[0].video if videos else None
        if video is None:
            raise RetryableStageError(f"{self.name} finished with no clip", code="model_bad_output")
        if not video.video_bytes:  # a gcs uri only when an output bucket is asked for
            raise RetryableStageError(f"{self.name} clip is empty", code="model_bad_output")
        return bytes(video.video_bytes)


def models(cfg: GenaiConfig) -> tuple[GeminiText, GeminiImages, VeoVideo | None]:
    """One SDK client (created now, no network until the first call) for every model; Veo
    only where a video model is named."""
    sdk = client(cfg)
    video = VeoVideo(cfg, sdk, cfg.video_model) if cfg.video_model else None
    return GeminiText(cfg, sdk, cfg.text_model), GeminiImages(cfg, sdk, cfg.image_model), video
