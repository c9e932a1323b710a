"""GPU-stage job entry point: exit 0 once the outcome is recorded, non-zero to be retried."""

from __future__ import annotations

import os
import sys

from deepflix import logs
from deepflix.metering import METER
from deepflix.pipeline.models import Stage
from deepflix.settings import get_settings


def main() -> int:
    settings = get_settings()
    logs.setup(settings.log_level)
    try:
        stage = Stage(os.environ["DEEPFLIX_JOB_STAGE"])
        movie_id = os.environ["DEEPFLIX_JOB_MOVIE_ID"]
        attempt = int(os.environ["DEEPFLIX_JOB_ATTEMPT"])
    except (KeyError, ValueError) as e:
        logs.get("jobs").error("bad job environment: %s", e)
        return 2
    from deepflix.runtime.compose import build  # the settings pick the adapters

    # The job is the worker process: its stage work runs here, on this thread.
    runtime = build(settings.model_copy(update={"stage_processes": 0}))
    try:
        recorded = runtime.runner.execute(movie_id, stage, attempt)
    finally:
        runtime.runner.close()
        METER.add(f"jobs.{stage.value}")
        METER.flush(settings.ops_dir)
    return 0 if recorded else 1


if __name__ == "__main__":
    sys.exit(main())
