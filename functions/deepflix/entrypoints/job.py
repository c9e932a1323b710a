"""GPU-stage job entry point: exit 0 once the outcome is recorded, non-zero to be retried."""

from __future__ import annotations

import os
import sys

from deepflix import logs, tracing
from deepflix.adapters.local.subprocess_jobs import die_with_parent
from deepflix.metering import METER
from deepflix.pipeline.errors import Unavailable
from deepflix.pipeline.ports import JOB_EXIT_UNAVAILABLE, job_from_env
from deepflix.settings import get_settings


def main() -> int:
    die_with_parent(os.environ)  # a subprocess job: dies with the service that started it
    settings = get_settings()
    logs.setup(settings.log_level, settings.gcp_project)
    log = logs.get("jobs")
    try:
        stage, movie_id, attempt = job_from_env(os.environ)
    except (KeyError, ValueError) as e:
        log.error("bad job environment: %s", e)
        return 2
    from deepflix.runtime.compose import build, export_traces  # the settings pick adapters

    export_traces(settings)
    # The job is the worker process: its stage work runs here, on this thread.
    runtime = build(settings.model_copy(update={"stage_processes": 0}))
    # The job runs in the trace of the request that started it (the movie's).
    span = tracing.start(f"{stage.value}.job", os.environ.get(tracing.ENV))
    try:
        with span:
            # Patient: the work is dear to redo; an outage it outlasts only delays its record.
            recorded = runtime.runner.execute(movie_id, stage, attempt, patient=True)
    except Unavailable as e:
        # Said by the exit code, so the attempt is retried without being charged for it.
        log.error("could not record the outcome: %s", e.message)
        return JOB_EXIT_UNAVAILABLE
    finally:
        runtime.runner.close()
        METER.add(f"jobs.{stage.value}")
        METER.flush(settings.ops_dir)
    return 0 if recorded else 1


if __name__ == "__main__":
    sys.exit(main())
