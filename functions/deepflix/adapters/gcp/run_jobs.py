"""JobRunner on Cloud Run jobs: one execution per stage attempt, with env overrides."""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Mapping
from datetime import timedelta
from typing import Any

from google.api_core import exceptions as gexc
from google.cloud import run_v2

from deepflix.adapters.gcp.clients import Lazy, translate_outages
from deepflix.pipeline.errors import Unavailable
from deepflix.pipeline.models import Stage
from deepflix.pipeline.ports import job_env

# Cloud Run sets these itself (container runtime contract) and refuses overrides of them.
RESERVED_ENV = frozenset(
    {
        "PORT",
        "K_SERVICE",
        "K_REVISION",
        "K_CONFIGURATION",
        "CLOUD_RUN_JOB",
        "CLOUD_RUN_EXECUTION",
        "CLOUD_RUN_TASK_INDEX",
        "CLOUD_RUN_TASK_ATTEMPT",
        "CLOUD_RUN_TASK_COUNT",
    }
)


def execution_env(*, stage: Stage, movie_id: str, attempt: int) -> dict[str, str]:
    """The job environment contract (job_env), less what Cloud Run sets on its own."""
    env = job_env(stage=stage, movie_id=movie_id, attempt=attempt, execution="")
    return {k: v for k, v in env.items() if k not in RESERVED_ENV}


class CloudRunJobRunner:
    """`JobRunner` that starts an execution of the stage's Cloud Run job.

    The job (`jobs[stage]`, default `{job_prefix}-{stage}`) is deployed once with its image,
    GPU and retry count; each run overrides only the env (movie, stage, attempt) and the task
    timeout. `run` returns the execution's full resource name, which `cancel` takes.
    """

    def __init__(
        self,
        *,
        project: str,
        location: str,
        job_prefix: str = "deepflix",
        jobs: Mapping[Stage, str] | None = None,
        jobs_client: Any | Callable[[], Any] = run_v2.JobsClient,
        executions_client: Any | Callable[[], Any] = run_v2.ExecutionsClient,
        rpc_timeout_s: float = 30.0,
        own_execution: str | None = None,
    ) -> None:
        self.parent = f"projects/{project}/locations/{location}"
        self.job_prefix = job_prefix
        self.jobs = dict(jobs or {})
        self.rpc_timeout_s = rpc_timeout_s
        self._jobs: Lazy[Any] = Lazy(jobs_client)
        self._executions: Lazy[Any] = Lazy(executions_client)
        # Inside a job: the execution this process runs in (Cloud Run's CLOUD_RUN_EXECUTION).
        self.own_execution = own_execution or None

    def job_name(self, stage: Stage) -> str:
        job = self.jobs.get(stage, f"{self.job_prefix}-{stage.value}")
        return f"{self.parent}/jobs/{job}"

    def build_request(
        self, *, stage: Stage, movie_id: str, attempt: int, timeout_s: float
    ) -> run_v2.RunJobRequest:
        env = execution_env(stage=stage, movie_id=movie_id, attempt=attempt)
        override = run_v2.RunJobRequest.Overrides.ContainerOverride(
            env=[run_v2.EnvVar(name=k, value=v) for k, v in env.items()]
        )
        return run_v2.RunJobRequest(
            name=self.job_name(stage),
            overrides=run_v2.RunJobRequest.Overrides(
                container_overrides=[override],
                task_count=1,
                # Whole seconds: the stage's own deadline (a Cloud Tasks check) is the exact one.
                timeout=timedelta(seconds=max(1, math.ceil(timeout_s))),
            ),
        )

    @translate_outages("cloud run")
    def run(self, *, stage: Stage, movie_id: str, attempt: int, timeout_s: float) -> str:
        request = self.build_request(
            stage=stage, movie_id=movie_id, attempt=attempt, timeout_s=timeout_s
        )
        # Not retried: a RunJob whose answer was lost may have started an execution, and a
        # second one would run the same attempt twice. The caller's redelivery decides.
        operation = self._jobs.get().run_job(
            request=request, retry=None, timeout=self.rpc_timeout_s
        )
        # The operation completes only when the execution does; its metadata names the
        # execution as soon as it is created.
        metadata = operation.metadata
        name = getattr(metadata, "name", "") if metadata is not None else ""
        if not name:
            raise Unavailable(f"cloud run: run_job on {request.name} named no execution")
        return str(name)

    def execution_name(self, *, stage: Stage, movie_id: str, attempt: int) -> None:
        """Cloud Run names an execution as it creates it: the pipeline records the name
        `run` returns (a job start is claimed in the movie before, so one runs per attempt)."""
        return None

    def is_own(self, execution: str) -> bool:
        """The execution this process runs in: CLOUD_RUN_EXECUTION is its short name, the
        pipeline records the full resource name."""
        own = self.own_execution
        return own is not None and execution.rsplit("/", 1)[-1] == own.rsplit("/", 1)[-1]

    @translate_outages("cloud run")
    def cancel(self, execution: str) -> None:
        if self.is_own(execution):
            # A job that records its own failure is about to exit: cancelling itself would
            # show every retryable failure as a cancelled execution, and needs a permission
            # (run.executions.cancel) the job has no other use for.
            return
        # Gone, or finished already: nothing left to stop. Otherwise fire and forget:
        # cancelling is asynchronous and the attempt is already given up.
        with contextlib.suppress(gexc.NotFound, gexc.FailedPrecondition):
            self._executions.get().cancel_execution(name=execution, timeout=self.rpc_timeout_s)
