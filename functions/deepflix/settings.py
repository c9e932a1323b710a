"""One validated settings object, read from the environment and an optional .env file."""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal

from pydantic import AliasChoices, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from deepflix.pipeline.models import MovieCreate, Stage
from deepflix.pipeline.policy import PipelineConfig, RetryPolicy, StagePolicy
from deepflix.pipeline.quotas import Quotas
from deepflix.pipeline.webhooks import WebhookConfig, secret_bytes


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="DEEPFLIX_", env_file=".env", extra="ignore", frozen=True
    )

    port: int = Field(8080, ge=1, le=65535, validation_alias=AliasChoices("PORT", "DEEPFLIX_PORT"))
    host: str = "127.0.0.1"
    # Comma-separated. The Host names the API answers to besides (embedded) its loopback
    # names and bound address: `name` at any port, `name:port`, or `*` for any Host. In the
    # Cloud Function, empty answers any (the platform routes by its own names).
    allowed_hosts: Annotated[list[str], NoDecode] = []
    # Comma-separated origins (`https://app.example`) of other sites whose pages may write;
    # empty: only pages of the API's own origin.
    allowed_origins: Annotated[list[str], NoDecode] = []
    data_dir: Path = Path("data")
    # Local artifacts and stage work (default: data_dir). Work is renamed into the artifacts,
    # so both live under this one folder, on one file system.
    media_dir: Path | None = None
    generators: Literal["cpu", "instant", "gemini", "http"] = "cpu"
    scene_seconds: float = Field(3.0, gt=0, le=30)
    fps: int = Field(24, ge=1, le=60)
    story_concurrency: int = Field(4, ge=1, le=1000)
    images_concurrency: int = Field(2, ge=1, le=1000)
    video_concurrency: int = Field(1, ge=1, le=1000)
    story_timeout_s: float = Field(60, gt=0)
    images_timeout_s: float = Field(300, gt=0)
    video_timeout_s: float = Field(600, gt=0)
    max_attempts: int = Field(3, ge=1, le=20)
    retry_base_delay_s: float = Field(1.0, ge=0)
    retry_max_delay_s: float = Field(60.0, ge=0)
    workers: int = Field(4, ge=1, le=64)
    # Embedded mode: stage work (generating, storing artifacts) in this many warm worker
    # processes instead of on the runtime's threads; 0: on the runtime's threads.
    stage_processes: int = Field(0, ge=0, le=64)
    # Embedded serve: how far below the API process the runtime's CPU priority is (nice),
    # so a busy pipeline cannot starve the API's answers.
    runtime_nice: int = Field(10, ge=0, le=19)
    # Embedded mode: how often overdue stages are timed out and stage queues re-dispatched.
    sweep_interval_s: float = Field(5.0, gt=0, le=3600)
    # The least time between two progress reports of a stage attempt; unset: 0.5 s embedded,
    # 10 s on Google Cloud, where each report is a billed Firestore write (progress_every_s).
    progress_interval_s: float | None = Field(None, gt=0, le=3600)
    # Embedded mode: how long a write waits for the database while another process holds
    # its lock, before it fails as unavailable (503; delivery tries again with backoff).
    sqlite_busy_timeout_s: float = Field(30.0, gt=0, le=3600)
    job_runner: Literal["subprocess", "inline", "cloudrun"] = "subprocess"
    # Webhooks (pipeline/webhooks.py): the URL of movies that name none; the signing secret
    # (`whsec_<base64>` or any text; empty: unsigned); attempts and their backoff.
    webhook_url: str | None = None
    webhook_secret: SecretStr = SecretStr("")
    webhook_max_attempts: int = Field(5, ge=1, le=50)
    webhook_base_delay_s: float = Field(2.0, ge=0)
    webhook_max_delay_s: float = Field(300.0, ge=0)
    webhook_timeout_s: float = Field(5.0, gt=0, le=60)
    # -- Google Cloud backend (DEEPFLIX_BACKEND=gcp): the same code on Firestore, Cloud Tasks,
    # Pub/Sub and, optionally, Cloud Run jobs and Cloud Storage. The emulators are reached
    # through FIRESTORE_EMULATOR_HOST / PUBSUB_EMULATOR_HOST and DEEPFLIX_TASKS_EMULATOR_HOST.
    backend: Literal["embedded", "gcp"] = "embedded"
    gcp_project: str = "demo-deepflix"
    gcp_location: str = "us-central1"
    tasks_queue: str = "deepflix-dispatch"
    tasks_url: str = ""  # base URL of the `tasks` function; /dispatch, /deadline are appended
    tasks_service_account: str | None = None  # OIDC identity the tasks carry
    tasks_emulator_host: str | None = None
    # -- Internal endpoints (/dispatch, /deadline, /sweep, the Pub/Sub pushes): comma-separated
    # service accounts whose Google ID tokens they accept (tasks, scheduler, push), and the
    # audiences (this deployment's function URLs; empty: DEEPFLIX_TASKS_URL). Production
    # refuses to start without callers; with none elsewhere nothing is checked.
    internal_callers: Annotated[list[str], NoDecode] = []
    internal_audiences: Annotated[list[str], NoDecode] = []
    # Emulator runs only: a local test issuer's certificates, and the key a stand-in for Cloud
    # Tasks signs its tokens with (devtools/stack.py writes both).
    oidc_certs_url: str | None = None
    test_token_key_file: Path | None = None
    # -- Quotas (0: no limit): movies one owner has active at once, creates one owner makes
    # per minute, and movies waiting in all the queues together.
    quota_active_movies: int = Field(0, ge=0)
    quota_creates_per_minute: int = Field(0, ge=0, le=10_000)
    queue_cap: int = Field(0, ge=0)
    topic_prefix: str = "deepflix"
    run_job_prefix: str = "deepflix"
    artifacts: Literal["local", "gcs"] = "local"
    artifacts_bucket: str | None = None
    # -- Hosted models (DEEPFLIX_GENERATORS=gemini): the Gemini API with a key, or Vertex AI
    # in gcp_project / gcp_location with the service account's credentials.
    genai_api_key: SecretStr | None = None
    genai_vertex: bool = False
    genai_text_model: str = "gemini-2.5-flash"
    genai_image_model: str = "gemini-2.5-flash-image"
    # One model call's deadline; shorter than the story stage's timeout.
    genai_call_timeout_s: float = Field(45.0, gt=0)
    genai_base_url: str | None = None  # another endpoint (a proxy; the tests' fake server)
    # The video stage of the gemini set: "stills" renders the generated stills with ffmpeg
    # (cheap), "veo" films a clip per scene with Veo (Vertex AI) and joins the clips.
    genai_video: Literal["stills", "veo"] = "stills"
    genai_video_model: str = "veo-3.0-fast-generate-001"
    genai_clip_seconds: int = Field(4, ge=1, le=8)  # Veo 3 takes 4, 6 or 8
    # First pause between two lookups of running clip operations (growing to 30 s).
    genai_poll_s: float = Field(5.0, gt=0, le=60)
    # -- A studio's own model server (DEEPFLIX_GENERATORS=http; README has the contract).
    model_server_url: str | None = None
    model_server_token: SecretStr | None = None
    model_server_timeout_s: float = Field(45.0, gt=0)
    faults_file: Path | None = None
    ops_dir: Path | None = None  # where each process flushes its operation counts
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    # Export OpenTelemetry spans (one a request, task, message and job) to Cloud Trace in
    # gcp_project. Off by default: nothing local needs it, and the trace ids propagate and
    # reach the logs either way.
    trace_export: bool = False
    # `auto`: short lines for people where stdout is a terminal, JSON lines elsewhere.
    log_format: Literal["auto", "json", "text"] = "auto"

    @field_validator("webhook_url")
    @classmethod
    def _webhook_url(cls, v: str | None) -> str | None:
        if v:
            MovieCreate(prompt="-", webhook=v)  # the same check as a movie's own URL
        return v or None

    @field_validator("webhook_secret")
    @classmethod
    def _webhook_secret(cls, v: SecretStr) -> SecretStr:
        try:
            secret_bytes(v.get_secret_value())
        except ValueError as e:
            raise ValueError("a whsec_ secret must be base64 after its prefix") from e
        return v

    @field_validator(
        "allowed_hosts", "allowed_origins", "internal_callers", "internal_audiences", mode="before"
    )
    @classmethod
    def _comma_separated(cls, value: object) -> object:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @model_validator(mode="after")
    def _complete_backend(self) -> Settings:
        if self.backend == "gcp" and not self.tasks_url:
            raise ValueError("DEEPFLIX_TASKS_URL is required with DEEPFLIX_BACKEND=gcp")
        if self.artifacts == "gcs" and not self.artifacts_bucket:
            raise ValueError("DEEPFLIX_ARTIFACTS_BUCKET is required with DEEPFLIX_ARTIFACTS=gcs")
        if self.job_runner == "cloudrun" and self.backend != "gcp":
            raise ValueError("DEEPFLIX_JOB_RUNNER=cloudrun needs DEEPFLIX_BACKEND=gcp")
        if self.backend == "gcp" and not self.emulated():
            self._refuse_non_production()
        if self.generators == "gemini":
            if not self.genai_vertex and self.genai_api_key is None:
                raise ValueError(
                    "DEEPFLIX_GENERATORS=gemini needs DEEPFLIX_GENAI_API_KEY"
                    " or DEEPFLIX_GENAI_VERTEX=true"
                )
            if self.genai_call_timeout_s >= self.story_timeout_s:
                raise ValueError(
                    "DEEPFLIX_GENAI_CALL_TIMEOUT_S must be shorter than DEEPFLIX_STORY_TIMEOUT_S"
                )
            if self.genai_video == "veo" and not self.genai_vertex:
                raise ValueError(
                    "DEEPFLIX_GENAI_VIDEO=veo needs DEEPFLIX_GENAI_VERTEX=true (the SDK films"
                    " on Vertex AI only)"
                )
        if self.generators == "http":
            if not self.model_server_url:
                raise ValueError("DEEPFLIX_GENERATORS=http needs DEEPFLIX_MODEL_SERVER_URL")
            if not self.model_server_url.startswith(("http://", "https://")):
                raise ValueError("DEEPFLIX_MODEL_SERVER_URL is an http:// or https:// URL")
            if self.model_server_timeout_s >= self.story_timeout_s:
                raise ValueError(
                    "DEEPFLIX_MODEL_SERVER_TIMEOUT_S must be shorter than DEEPFLIX_STORY_TIMEOUT_S"
                )
        return self

    def progress_every_s(self) -> float:
        if self.progress_interval_s is not None:
            return self.progress_interval_s
        # A report every half second is a smooth bar and, embedded, a cheap SQLite write; in
        # the cloud it would be 120 writes a minute of GPU work ($0.11 per 1,000 one-minute
        # renders at Firestore's list price), more than the rest of a movie's operations.
        return 10.0 if self.backend == "gcp" else 0.5

    def emulated(self) -> bool:
        """The Google backend against the emulators (an emulator host is set)."""
        return bool(
            self.tasks_emulator_host
            or os.environ.get("FIRESTORE_EMULATOR_HOST")
            or os.environ.get("PUBSUB_EMULATOR_HOST")
        )

    def _refuse_non_production(self) -> None:
        """The production profile: the Google backend with no emulator refuses local stand-ins."""
        problems = []
        if self.artifacts == "local":
            problems.append("DEEPFLIX_ARTIFACTS=local (set gcs and DEEPFLIX_ARTIFACTS_BUCKET)")
        if self.job_runner == "subprocess":
            problems.append("DEEPFLIX_JOB_RUNNER=subprocess (set cloudrun)")
        if self.gcp_project.startswith("demo-"):
            problems.append(f"DEEPFLIX_GCP_PROJECT={self.gcp_project} (demo- is emulator-only)")
        if not self.tasks_service_account:
            problems.append("DEEPFLIX_TASKS_SERVICE_ACCOUNT is missing (the tasks' OIDC identity)")
        if os.environ.get("FIREBASE_AUTH_EMULATOR_HOST"):
            # firebase-admin would take any unsigned token for any user (ADR 0017).
            problems.append("FIREBASE_AUTH_EMULATOR_HOST is set (ID tokens would go unchecked)")
        if not self.internal_callers:
            problems.append("DEEPFLIX_INTERNAL_CALLERS is missing (who may call /dispatch, ...)")
        if self.oidc_certs_url or self.test_token_key_file:
            problems.append("DEEPFLIX_OIDC_CERTS_URL, DEEPFLIX_TEST_TOKEN_KEY_FILE (emulator only)")
        if problems:
            refused = "; ".join(problems)
            raise ValueError(f"DEEPFLIX_BACKEND=gcp, no emulator (production) refuses: {refused}")

    def audiences(self) -> list[str]:
        """The audiences the internal endpoints accept: their service URLs."""
        return self.internal_audiences or [self.tasks_url]

    def quotas(self) -> Quotas:
        return Quotas(
            active_per_owner=self.quota_active_movies,
            creates_per_window=self.quota_creates_per_minute,
            queue_cap=self.queue_cap,
        )

    def media_root(self) -> Path:
        return (self.media_dir or self.data_dir).resolve()

    def webhook_config(self) -> WebhookConfig:
        return WebhookConfig(
            secret=secret_bytes(self.webhook_secret.get_secret_value()),
            max_attempts=self.webhook_max_attempts,
            base_delay_s=self.webhook_base_delay_s,
            max_delay_s=self.webhook_max_delay_s,
            timeout_s=self.webhook_timeout_s,
        )

    def pipeline_config(self) -> PipelineConfig:
        retry = RetryPolicy(
            max_attempts=self.max_attempts,
            base_delay_s=self.retry_base_delay_s,
            max_delay_s=self.retry_max_delay_s,
        )

        def policy(concurrency: int, timeout_s: float, expected: float, job: bool) -> StagePolicy:
            return StagePolicy(
                concurrency=concurrency,
                timeout_s=timeout_s,
                retry=retry,
                expected_s=expected,
                runs_as_job=job,
            )

        n = self.scene_seconds
        return PipelineConfig(
            stages={
                Stage.story: policy(self.story_concurrency, self.story_timeout_s, 0.2, False),
                Stage.images: policy(self.images_concurrency, self.images_timeout_s, n, True),
                Stage.video: policy(self.video_concurrency, self.video_timeout_s, 2 * n, True),
            }
        )


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """Built at first use, not at import: deploy tooling imports main.py without our env."""
    return Settings()
