"""The `deepflix` command against a real `deepflix serve`, and serve's own start-up refusals."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.e2e.conftest import Service, write_faults

pytestmark = pytest.mark.e2e


def deepflix(
    *args: str,
    service: Service | None = None,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("DEEPFLIX_")}
    if service is not None:
        base["DEEPFLIX_URL"] = service.url
    return subprocess.run(
        [sys.executable, "-m", "deepflix.entrypoints.cli", *args],
        capture_output=True,
        text=True,
        timeout=180,
        env={**base, **(env or {})},
        cwd=cwd,
        stdin=subprocess.DEVNULL,
    )


def test_submit_wait_then_status_list_and_download(
    make_service: Callable[..., Service], tmp_path: Path
) -> None:
    svc = make_service()
    run = deepflix("submit", "A snail wins the marathon", "--wait", "--scenes", "2",
                   "--style", "noir", service=svc)  # fmt: skip
    assert run.returncode == 0, run.stdout + run.stderr
    lines = run.stdout.splitlines()
    assert lines[0].startswith("movie ") and "queued" in lines[0]
    short = lines[0].split()[1]
    assert len(short) == 8
    assert any("running video" in line for line in lines)  # a line per change of state
    assert lines[-1].startswith(f"{short} succeeded: deepflix download {short}")
    status = deepflix("status", short, service=svc)
    assert status.returncode == 0, status.stderr
    assert "noir, 2 scenes, normal priority" in status.stdout
    assert any(line.split()[:2] == ["state", "succeeded"] for line in status.stdout.splitlines())
    as_json = json.loads(deepflix("status", short, "--json", service=svc).stdout)
    assert as_json["status"] == "succeeded" and as_json["movie_id"].startswith(short)
    listing = deepflix("list", "--status", "succeeded", service=svc)
    assert listing.stdout.splitlines()[0].split()[:2] == ["ID", "STATUS"]
    assert listing.stdout.splitlines()[1].startswith(f"{short}  succeeded")
    assert (
        "no movies with status failed" in deepflix("list", "--status", "failed", service=svc).stdout
    )
    got = deepflix("download", short, "-o", str(tmp_path / "film.mp4"), service=svc)
    assert got.returncode == 0, got.stderr
    assert (tmp_path / "film.mp4").read_bytes()[4:8] == b"ftyp"


def test_a_failed_movie_says_why_and_retries(make_service: Callable[..., Service]) -> None:
    svc = make_service(generators="instant", max_attempts=1)
    write_faults(svc, {"images": {"kind": "permanent", "match": "DOOMED"}})
    run = deepflix("submit", "The DOOMED expedition", "--wait", service=svc)
    assert run.returncode == 1
    assert "failed in images after attempt 1: injected permanent fault in images" in run.stdout
    short = run.stdout.splitlines()[0].split()[1]
    assert f"deepflix retry {short}" in run.stdout
    write_faults(svc, {})
    again = deepflix("retry", short, "--wait", service=svc)
    assert again.returncode == 0, again.stdout + again.stderr
    assert again.stdout.splitlines()[-1].startswith(f"{short} succeeded")


def test_paused_admission_is_said_everywhere(make_service: Callable[..., Service]) -> None:
    svc = make_service(generators="instant")
    paused = deepflix("pause", service=svc)
    assert paused.returncode == 0 and "admission PAUSED" in paused.stdout
    assert svc.call("GET", "/healthz")[1]["admission_paused"] is True
    run = deepflix("submit", "A lighthouse keeper befriends a storm", service=svc)
    assert "waits for admission, which is paused" in run.stdout
    short = run.stdout.split()[1]
    code, created = svc.call("POST", "/api/movies", {"prompt": "Another storm"})
    assert code == 202 and created["admission_paused"] is True
    assert created["eta_seconds"] is None and created["eta"]["unknown"] == "admission_paused"
    view = svc.status(created["movie_id"])
    assert view["admission_paused"] is True and view["status"] == "queued"
    status = deepflix("status", short, service=svc)
    assert "waiting for admission (paused)" in status.stdout
    watch = deepflix("watch", "--rounds", "1", service=svc, env={"COLUMNS": "160"})
    assert watch.stdout.startswith("admission PAUSED")
    row = next(line for line in watch.stdout.splitlines() if line.startswith(short))
    assert "waiting for admission (paused)" in row
    assert deepflix("resume", service=svc).returncode == 0
    assert svc.call("GET", "/healthz")[1]["admission_paused"] is False
    done = svc.wait_terminal(created["movie_id"])
    assert done["status"] == "succeeded" and done["admission_paused"] is False


def test_cancel_asks_then_cancels_with_yes(make_service: Callable[..., Service]) -> None:
    svc = make_service(generators="instant")
    write_faults(svc, {"images": {"kind": "delay", "seconds": 60, "match": "SLOW"}})
    movie = svc.create("A SLOW boat")
    short = movie["movie_id"][:8]
    refused = deepflix("cancel", short, service=svc)
    assert refused.returncode == 2 and "add --yes" in refused.stderr
    assert svc.status(movie["movie_id"])["status"] != "cancelled"
    run = deepflix("cancel", short, "--yes", service=svc)
    assert run.returncode == 0 and run.stdout.strip() == f"{short} cancelled"


# The CLI as a terminal starts it: a shell without job control starts background jobs with
# SIGINT ignored, and a child inherits that, so the child puts Python's handler back itself
# (in the child's own code: a preexec_fn is not safe in a process with threads).
WITH_CTRL_C = (
    "import runpy, signal; signal.signal(signal.SIGINT, signal.default_int_handler); "
    "runpy.run_module('deepflix.entrypoints.cli', run_name='__main__')"
)


def test_ctrl_c_stops_waiting_without_a_traceback(make_service: Callable[..., Service]) -> None:
    svc = make_service(generators="instant")
    write_faults(svc, {"images": {"kind": "delay", "seconds": 60, "match": "SLOW"}})
    env = {k: v for k, v in os.environ.items() if not k.startswith("DEEPFLIX_")}
    proc = subprocess.Popen(
        [sys.executable, "-c", WITH_CTRL_C, "submit", "A SLOW river", "--wait"],
        env={**env, "DEEPFLIX_URL": svc.url},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    first = proc.stdout.readline()  # the create answered: it is waiting now
    if not first.startswith("movie "):  # what the CLI said instead
        proc.kill()
        assert first.startswith("movie "), proc.communicate()
    time.sleep(0.5)  # into the follow loop (no assertion on time)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 130
    assert "Traceback" not in err and "KeyboardInterrupt" not in err
    assert "stopped waiting; the movie goes on" in out


def test_the_video_bar_moves_during_the_render(make_service: Callable[..., Service]) -> None:
    svc = make_service(scene_seconds=3, fps=24)
    movie = svc.create("A kite over the harbour", scene_count=4)
    seen: set[int] = set()
    while True:
        view = svc.status(movie["movie_id"])
        if view["stages"]["video"]["status"] == "running":
            seen.add(view["stages"]["video"]["progress"])
        if view["status"] in ("succeeded", "failed", "cancelled"):
            break
        time.sleep(0.05)
    assert view["status"] == "succeeded"
    assert any(10 < p < 100 for p in seen), seen


def test_unreachable_service_is_a_clear_error() -> None:
    run = deepflix("list", "--url", "http://127.0.0.1:9")
    assert run.returncode == 1
    assert run.stderr.splitlines() == [
        "deepflix list: cannot reach the service at http://127.0.0.1:9: connection refused"
        " (is `deepflix serve` running there? set --url, DEEPFLIX_URL or PORT)"
    ]


@pytest.mark.parametrize(
    ("settings", "says"),
    [
        ({"PORT": "not-a-port"}, "invalid setting PORT=not-a-port"),
        ({"DEEPFLIX_HOST": "localhost"}, "DEEPFLIX_HOST=localhost is not an IP address"),
        ({"DEEPFLIX_DATA_DIR": "afile/data"}, "DEEPFLIX_DATA_DIR=afile/data is not a writable"),
        ({"DEEPFLIX_FAULTS_FILE": "faults.json"}, "DEEPFLIX_FAULTS_FILE=faults.json: not readable"),
        ({"DEEPFLIX_VIDEO_CONCURRENCY": "0"}, "invalid setting DEEPFLIX_VIDEO_CONCURRENCY=0"),
    ],
)
def test_serve_refuses_a_bad_start_in_one_line(
    tmp_path: Path, settings: dict[str, str], says: str
) -> None:
    (tmp_path / "afile").write_text("")
    (tmp_path / "faults.json").write_text('{"story": {kind: 1}}')
    env = {"DEEPFLIX_DATA_DIR": str(tmp_path / "data"), **settings}
    run = deepflix("serve", env=env, cwd=tmp_path)
    assert run.returncode != 0
    assert len(run.stderr.splitlines()) == 1, run.stderr
    assert run.stderr.startswith("deepflix serve: ") and says in run.stderr


def test_an_unknown_setting_is_warned_with_the_closest_name(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("DEEPFLIX_IMAGE_CONCURRENCY=3\n")
    env = {"DEEPFLIX_HOST": "localhost"}  # stops the start right after the warnings
    run = deepflix("serve", env=env, cwd=tmp_path)
    assert run.stderr.splitlines()[0] == (
        "deepflix serve: warning: unknown setting DEEPFLIX_IMAGE_CONCURRENCY in the .env,"
        " ignored; did you mean DEEPFLIX_IMAGES_CONCURRENCY?"
    )


def test_a_refused_request_is_one_line_in_the_clis_words(shared_service: Service) -> None:
    run = deepflix("submit", "A kite", "--scenes", "99", service=shared_service)
    assert run.returncode == 1 and run.stdout == ""
    said = run.stderr
    assert said.startswith("deepflix submit: --scenes: ") and "validation_failed" in said
    assert len(run.stderr.splitlines()) == 1
