"""Checks shared by the end-to-end tests: decoding videos, finding job processes, the journal."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import av

from tests.e2e.conftest import Service


def download(service: Service, url: str, dest: Path) -> Path:
    code, body = service.request("GET", url)
    assert code == 200 and isinstance(body, bytes)
    dest.write_bytes(body)
    return dest


def probe_video(path: Path) -> dict[str, Any]:
    """Decode every frame: proves the file plays, and measures it."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        frames = sum(1 for _ in container.decode(stream))
        return {
            "codec": stream.codec_context.name,
            "width": stream.codec_context.width,
            "height": stream.codec_context.height,
            "pix_fmt": stream.codec_context.pix_fmt,
            "frames": frames,
            "fps": float(stream.average_rate or 0),
            "duration_s": float(container.duration or 0) / 1_000_000,
        }


def job_pids(movie_id: str) -> list[int]:
    """Processes whose environment says they are a job for this movie."""
    needle = f"DEEPFLIX_JOB_MOVIE_ID={movie_id}".encode()
    pids = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            env = (proc / "environ").read_bytes()
            state = (proc / "stat").read_text().split()[2]
        except OSError:
            continue
        if needle in env.split(b"\0") and state != "Z":
            pids.append(int(proc.name))
    return pids


def successes(service: Service, movie_id: str) -> dict[str, int]:
    """How many times each stage's success was applied, from the store's journal."""
    with sqlite3.connect(service.data_dir / "movies.db") as conn:
        rows = conn.execute(
            "SELECT stage, COUNT(*) FROM journal WHERE movie_id = ? AND after = 'succeeded'"
            " GROUP BY stage",
            (movie_id,),
        ).fetchall()
    return dict(rows)


def keys(service: Service, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "deepflix.entrypoints.cli", "keys", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=service.env,
        cwd=service.data_dir.parent,
    )


def new_key(service: Service, name: str, owner: str, *admin: str) -> dict[str, str]:
    made = keys(service, "create", "--name", name, "--owner", owner, *admin)
    assert made.returncode == 0, made.stderr
    key = made.stdout.strip()
    assert key.startswith("dfx_") and len(key) > 40, made.stdout
    return {"Authorization": f"Bearer {key}"}
