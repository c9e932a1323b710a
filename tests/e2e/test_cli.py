"""The `deepflix` command against a running service, and its refusal of bad settings."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.e2e.conftest import Service

pytestmark = pytest.mark.e2e


def deepflix(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "deepflix.entrypoints.cli", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )


def test_submit_wait_status_and_list(shared_service: Service) -> None:
    url = shared_service.url
    run = deepflix("submit", "A snail wins the marathon", "--wait", "--scenes", "2", "--url", url)
    assert run.returncode == 0, run.stdout + run.stderr
    lines = run.stdout.splitlines()
    assert "queued at position" in lines[0]
    assert any("video" in line and "█" in line for line in lines)  # progress bars were drawn
    assert lines[-1].startswith("succeeded: ") and lines[-1].endswith("/movie.mp4")
    movie_id = lines[0].split()[1]
    status = deepflix("status", movie_id, "--url", url)
    assert status.returncode == 0 and '"status": "succeeded"' in status.stdout
    listing = deepflix("list", "--url", url)
    assert listing.returncode == 0 and movie_id in listing.stdout


def test_submit_reports_refusals(shared_service: Service) -> None:
    run = deepflix("submit", " ", "--url", shared_service.url)
    assert run.returncode == 1 and "validation_failed" in run.stdout


def test_serve_refuses_a_bad_setting_with_its_name() -> None:
    env = {**os.environ, "PORT": "not-a-port"}
    run = deepflix("serve", env=env)
    assert run.returncode == 2
    assert "invalid setting PORT" in run.stderr


def test_unreachable_service_is_a_clear_error() -> None:
    run = deepflix("list", "--url", "http://127.0.0.1:9")
    assert run.returncode == 1 and "cannot reach the service" in run.stderr
