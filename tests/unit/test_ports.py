"""The job environment contract: what a job runner passes and the job entry point reads."""

from __future__ import annotations

import pytest

from deepflix.pipeline.models import Stage
from deepflix.pipeline.ports import job_env, job_from_env

pytestmark = pytest.mark.unit


def test_a_job_reads_back_what_its_runner_passed() -> None:
    env = job_env(stage=Stage.images, movie_id="m1", attempt=2, execution="images-m1-2")
    assert env == {
        "DEEPFLIX_JOB_STAGE": "images",
        "DEEPFLIX_JOB_MOVIE_ID": "m1",
        "DEEPFLIX_JOB_ATTEMPT": "2",
        "CLOUD_RUN_EXECUTION": "images-m1-2",
    }
    assert job_from_env(env) == (Stage.images, "m1", 2)


VALID = job_env(stage=Stage.video, movie_id="m", attempt=1, execution="e")


@pytest.mark.parametrize(
    "env",
    [{}, VALID | {"DEEPFLIX_JOB_STAGE": "sound"}, VALID | {"DEEPFLIX_JOB_ATTEMPT": "two"}],
    ids=["missing", "unknown stage", "attempt not a number"],
)
def test_a_broken_job_environment_is_refused(env: dict[str, str]) -> None:
    with pytest.raises((KeyError, ValueError)):
        job_from_env(env)
