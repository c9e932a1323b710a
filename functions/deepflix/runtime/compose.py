"""The composition root: picks the adapters (embedded or Google Cloud) and assembles the service."""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import orjson

from deepflix import logs, tracing
from deepflix.adapters.local import changes, webhook_post
from deepflix.adapters.local.api_keys import ApiKeys
from deepflix.adapters.local.artifacts import LocalArtifactStore
from deepflix.adapters.local.db import Database
from deepflix.adapters.local.dead_letters import QueueDeadLetters
from deepflix.adapters.local.inline_jobs import InlineJobRunner
from deepflix.adapters.local.job_logs import JobLogFiles
from deepflix.adapters.local.messaging import LocalEventBus, LocalTaskQueue
from deepflix.adapters.local.queue import SqliteQueue
from deepflix.adapters.local.store import SqliteMovieStore
from deepflix.adapters.local.subprocess_jobs import JobExit, SubprocessJobRunner
from deepflix.handlers.views import MovieViews, artifact_link
from deepflix.pipeline.operations import OperatorPorts
from deepflix.pipeline.ports import ArtifactStore, JobRunner
from deepflix.pipeline.service import Pipeline, utcnow
from deepflix.pipeline.webhooks import WebhookSetup
from deepflix.runtime.embedded import EmbeddedRuntime
from deepflix.settings import Settings
from deepflix.stages.executors import InlineExecutor, ProcessExecutor, StageExecutor
from deepflix.stages.faults import FaultPlan
from deepflix.stages.generators.base import Models
from deepflix.stages.generators.registry import ClipSettings, load_generators
from deepflix.stages.runner import StageRunner
from deepflix.stages.threads import StageThreads

if TYPE_CHECKING:
    from deepflix.stages.generators.http import ModelServer

log = logs.get("runtime")


@dataclass
class CloudRuntime:
    """The service on the Google Cloud adapters: delivery is by push, so nothing to start."""

    settings: Settings
    pipeline: Pipeline
    runner: StageRunner
    artifacts: ArtifactStore
    local_file: Callable[[str], Path] | None
    prune: Callable[[], int]  # the store's housekeeping, run by the `/sweep` task

    def start(self) -> None:
        """Tasks and events arrive as HTTP requests to the functions."""

    def stop(self) -> None:
        """Nothing runs in the background."""


def job_log_dir(settings: Settings) -> Path:
    """Where subprocess jobs write a log file per execution."""
    return settings.data_dir.resolve() / "jobs"


def _jobs(settings: Settings) -> JobRunner:
    if settings.job_runner == "inline":
        gpu = settings.images_concurrency + settings.video_concurrency
        return InlineJobRunner(threads=gpu)
    if settings.job_runner == "cloudrun":
        from deepflix.adapters.gcp.factory import cloud_run_jobs

        return cloud_run_jobs(settings)
    return SubprocessJobRunner(log_dir=job_log_dir(settings))


def _connect_jobs(jobs: JobRunner, runner: StageRunner, on_exit: Callable[[JobExit], None]) -> None:
    """Give a job runner of this process what it calls back, once the stage runner (which
    needs the pipeline, which needs the job runner) exists: inline jobs do its work;
    subprocess jobs report their exits. A Cloud Run job reports through the pipeline."""
    if isinstance(jobs, InlineJobRunner):
        jobs.serve(runner.execute)
    elif isinstance(jobs, SubprocessJobRunner):
        jobs.on_exit(on_exit)


def hosted_models(settings: Settings) -> Models:
    """The Gemini and Imagen clients the `gemini` generators call."""
    from deepflix.adapters.gcp.genai_models import GenaiConfig, models

    key = settings.genai_api_key
    veo = settings.genai_video == "veo"
    text, image, video = models(
        GenaiConfig(
            api_key=key.get_secret_value() if key else None,
            vertex=settings.genai_vertex,
            project=settings.gcp_project,
            location=settings.gcp_location,
            text_model=settings.genai_text_model,
            image_model=settings.genai_image_model,
            call_timeout_s=settings.genai_call_timeout_s,
            base_url=settings.genai_base_url,
            video_model=settings.genai_video_model if veo else None,
        )
    )
    return Models(text=text, image=image, video=video)


def model_server(settings: Settings) -> ModelServer:
    """The studio model server the `http` generators call."""
    from deepflix.stages.generators.http import ModelServer

    token = settings.model_server_token
    return ModelServer(
        base_url=settings.model_server_url or "",
        timeout_s=settings.model_server_timeout_s,
        token=token.get_secret_value() if token else None,
    )


def inline_executor(
    settings: Settings, artifacts: ArtifactStore, workdir: Path | None
) -> InlineExecutor:
    """Stage work on the calling thread; also what each stage worker process builds."""
    generators = load_generators(
        settings.generators,
        scene_seconds=settings.scene_seconds,
        fps=settings.fps,
        clips=ClipSettings(
            seconds=settings.genai_clip_seconds,
            first_poll_s=settings.genai_poll_s,
            # Polling stops in time for the join and the uploads within the stage's timeout.
            deadline_s=settings.video_timeout_s * 0.75,
        ),
        models=hosted_models(settings) if settings.generators == "gemini" else None,
        server=model_server(settings) if settings.generators == "http" else None,
    )
    return InlineExecutor(generators, artifacts, workdir)


def _worker_kit(settings: Settings, workdir: Path) -> InlineExecutor:
    """Run in a stage worker process (so module level: it is pickled to get there)."""
    logs.setup(settings.log_level)
    artifacts = LocalArtifactStore(settings.media_root() / "artifacts")
    return inline_executor(settings, artifacts, workdir)


def _runner(
    settings: Settings,
    pipeline: Pipeline,
    work: StageExecutor,
    threads: StageThreads | None = None,
) -> StageRunner:
    return StageRunner(
        pipeline=pipeline,
        work=work,
        faults=FaultPlan(settings.faults_file),
        threads=threads,
        progress_every_s=settings.progress_every_s(),
    )


def webhook_setup(settings: Settings, artifacts: ArtifactStore) -> WebhookSetup:
    """Webhook bodies are the movie's status view, as `GET /api/movies/{id}` answers it."""
    views = MovieViews(artifact_link)  # links to the owner-checked route, never a path
    return WebhookSetup(
        post=webhook_post.post,
        render=lambda movie: orjson.dumps(views(movie, None)),
        config=settings.webhook_config(),
        default_url=settings.webhook_url,
    )


def build_cloud(settings: Settings) -> CloudRuntime:
    from deepflix.adapters.gcp.factory import build_ports, gcs_artifacts
    from deepflix.adapters.gcp.logging_links import movie_logs_url

    ports = build_ports(settings)
    artifacts: ArtifactStore
    local_file = None
    if settings.artifacts == "gcs":
        artifacts = gcs_artifacts(settings)
    else:
        local = LocalArtifactStore(settings.media_root() / "artifacts")
        artifacts, local_file = local, local.resolve
    jobs = _jobs(settings)
    pipeline = Pipeline(
        store=ports.store,
        tasks=ports.tasks,
        events=ports.events,
        jobs=jobs,
        config=settings.pipeline_config(),
        operator=OperatorPorts(
            artifacts=artifacts,
            logs_link=functools.partial(movie_logs_url, settings.gcp_project),
        ),
        webhooks=webhook_setup(settings, artifacts),
        # Marking a message sent is a Firestore write of its own: receivers that write the
        # movie anyway take theirs out (pipeline/sender.py).
        receipts=True,
    )
    runner = _runner(settings, pipeline, inline_executor(settings, artifacts, None))
    _connect_jobs(
        jobs,
        runner,
        lambda e: runner.job_exited(
            e.movie_id, e.stage, e.attempt, e.returncode, timed_out=e.timed_out
        ),
    )
    return CloudRuntime(settings, pipeline, runner, artifacts, local_file, ports.store.prune)


def export_traces(settings: Settings) -> None:
    """With DEEPFLIX_TRACE_EXPORT, each request's, task's, message's and job's span goes to
    Cloud Trace (the trace ids reach the logs and the messages either way)."""
    if settings.trace_export:
        from deepflix.adapters.gcp.cloud_trace import span_starter

        tracing.install(span_starter(settings.gcp_project))


def build(settings: Settings) -> EmbeddedRuntime | CloudRuntime:
    return build_cloud(settings) if settings.backend == "gcp" else build_embedded(settings)


def build_embedded(
    settings: Settings, *, clock: Callable[[], datetime] | None = None
) -> EmbeddedRuntime:
    data, media = settings.data_dir.resolve(), settings.media_root()
    # Documents and queues: one transaction per change.
    db = Database(data / "movies.db", busy_timeout_ms=round(settings.sqlite_busy_timeout_s * 1000))
    store = SqliteMovieStore(db)
    changes.install(db)  # the change sequence the API process's live streams read
    queue = SqliteQueue(db)
    artifacts = LocalArtifactStore(media / "artifacts")
    jobs = _jobs(settings)
    pipeline = Pipeline(
        store=store,
        tasks=LocalTaskQueue(queue, swept_deadlines=True),
        events=LocalEventBus(queue),
        jobs=jobs,
        config=settings.pipeline_config(),
        clock=clock or utcnow,
        # Store and queues share the database: each operation is one write of it, so a
        # change and the messages it sends commit together (ADR 0007), and a new movie's
        # story slot is claimed in its create's own write.
        unit_of_work=db.atomically,
        admission="inline",
        operator=_operator_ports(settings, queue, artifacts),
        webhooks=webhook_setup(settings, artifacts),
    )
    # Stage work beside the artifacts, so outputs are renamed into place, never copied.
    work = media / "work"
    work.mkdir(parents=True, exist_ok=True)
    stage_work: StageExecutor = (
        ProcessExecutor(settings.stage_processes, functools.partial(_worker_kit, settings, work))
        if settings.stage_processes
        else inline_executor(settings, artifacts, work)
    )
    # In-process stage work on threads of its own, not the delivery threads (StageRunner).
    runner = _runner(settings, pipeline, stage_work, StageThreads())
    embedded = EmbeddedRuntime(settings, store, queue, artifacts, pipeline, runner, work)
    _connect_jobs(jobs, runner, embedded.job_exited)
    return embedded


@dataclass
class Reader:
    """The embedded service as a process that only reads sees it: the API process's, whose
    writes go to the runtime over the write channel."""

    pipeline: Pipeline  # its reads only: the ports it would write through refuse
    artifacts: LocalArtifactStore
    queue: SqliteQueue  # its reads only: dead letters, stored messages
    keys: ApiKeys  # the API keys its requests carry (runtime/auth.py)


class _NoWrites:
    """The ports a reading pipeline never uses."""

    def enqueue(self, *args: Any, **kwargs: Any) -> NoReturn:
        raise RuntimeError("this process only reads: its writes go to the runtime")

    publish = run = cancel = execution_name = enqueue


def build_reader(settings: Settings) -> Reader:
    db = Database(settings.data_dir.resolve() / "movies.db", read_only=True)
    queue = SqliteQueue(db)
    none = _NoWrites()
    artifacts = LocalArtifactStore(settings.media_root() / "artifacts")
    pipeline = Pipeline(
        store=SqliteMovieStore(db),
        tasks=none,
        events=none,
        jobs=none,
        config=settings.pipeline_config(),
        operator=_operator_ports(settings, queue, artifacts),
    )
    return Reader(pipeline, artifacts, queue, ApiKeys(db))


def _operator_ports(
    settings: Settings, queue: SqliteQueue, artifacts: ArtifactStore
) -> OperatorPorts:
    """The embedded queue's dead letters and the job runner's log files (ADR 0020)."""
    return OperatorPorts(
        artifacts=artifacts,
        dead_letters=QueueDeadLetters(queue),
        job_logs=JobLogFiles(job_log_dir(settings)),
    )
