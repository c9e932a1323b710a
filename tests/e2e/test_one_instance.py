"""One service per data directory and per port: a second one says why in one line and exits."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from devtools.service import service_env
from tests.e2e.conftest import Service

pytestmark = pytest.mark.e2e


def second(env: dict[str, str], port: int) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "deepflix.entrypoints.cli", "serve"],
        env={**env, "PORT": str(port)},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_a_second_service_on_one_data_directory_names_the_first(
    make_service: Callable[..., Service],
) -> None:
    first = make_service(generators="instant")
    movie = first.create("still mine")
    assert first.proc is not None
    other_port = first.port + 1 if first.port < 65535 else first.port - 1
    done = second(first.env, other_port)
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [
        f"deepflix serve: another deepflix serve (pid {first.proc.pid}) is using the data "
        f"directory {first.data_dir.resolve()}"
    ]
    assert first.wait_terminal(movie["movie_id"])["status"] == "succeeded"


def test_a_second_service_on_one_port_says_so_in_one_line(
    make_service: Callable[..., Service], tmp_path: Path
) -> None:
    first = make_service(generators="instant")
    done = second(service_env(tmp_path / "elsewhere", generators="instant"), first.port)
    assert done.returncode == 1
    (line,) = done.stderr.strip().splitlines()
    assert line.startswith(f"deepflix serve: cannot listen on 127.0.0.1 port {first.port}: ")
    assert first.request("GET", "/healthz")[0] == 200
    assert not (tmp_path / "elsewhere" / "movies.db").exists()  # nothing was started
