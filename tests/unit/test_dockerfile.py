"""The job image's Dockerfile keeps the rules that matter (hadolint checks the rest, where the
tools install: tests/integration/test_infra_tools.py)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit
ROOT = Path(__file__).resolve().parents[2]


def instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments), continuation lines joined, comments dropped."""
    joined = re.sub(r"\\\n", " ", text)
    out = []
    for line in joined.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def problems(text: str) -> list[str]:
    found = []
    steps = instructions(text)
    for word, args in steps:
        if word == "FROM":
            image = args.split()[0]
            tag = image.partition(":")[2]
            if "@sha256:" not in image and (not tag or tag == "latest"):
                found.append(f"FROM {image}: pin the base image's version")
            elif tag and not re.search(r"\d+\.\d+\.\d+", tag) and "@sha256:" not in image:
                found.append(f"FROM {image}: pin a full version, not a moving tag")
        if word == "ADD" and re.search(r"https?://", args):
            found.append("ADD of a URL: download in a RUN with a checksum")
        if word == "RUN" and "pip install" in args and "--no-cache-dir" not in args:
            env = " ".join(a for w, a in steps if w == "ENV")
            if "PIP_NO_CACHE_DIR=1" not in env:
                found.append("pip install keeps its cache in the image")
        if word == "RUN" and "apt-get install" in args and "--no-install-recommends" not in args:
            found.append("apt-get install without --no-install-recommends")
    users = [args for word, args in steps if word == "USER"]
    if not users or users[-1].split(":")[0] in ("root", "0"):
        found.append("the image must end as a non-root USER")
    cmds = [args for word, args in steps if word in ("CMD", "ENTRYPOINT")]
    if not cmds or not cmds[-1].startswith("["):
        found.append("CMD in exec (JSON) form, so signals reach the job")
    return found


def test_the_job_dockerfile_keeps_the_rules() -> None:
    text = (ROOT / "Dockerfile").read_text()
    assert problems(text) == []
    *_, (word, cmd) = instructions(text)
    assert word == "CMD"
    assert json.loads(cmd) == ["python", "-m", "deepflix.entrypoints.job"]
    assert (ROOT / "functions/deepflix/entrypoints/job.py").is_file()


@pytest.mark.parametrize(
    ("dockerfile", "problem"),
    [
        ('FROM python\nUSER 10001\nCMD ["x"]', "pin the base image's version"),
        ('FROM python:latest\nUSER 10001\nCMD ["x"]', "pin the base image's version"),
        ('FROM python:3.11-slim\nUSER 10001\nCMD ["x"]', "not a moving tag"),
        ('FROM python:3.11.14-slim\nCMD ["x"]', "non-root USER"),
        ('FROM python:3.11.14-slim\nUSER 10001\nUSER root\nCMD ["x"]', "non-root USER"),
        ("FROM python:3.11.14-slim\nUSER 1\nCMD python -m x", "exec (JSON) form"),
        ('FROM python:3.11.14-slim\nRUN pip install x\nUSER 1\nCMD ["x"]', "cache"),
        ('FROM python:3.11.14-slim\nADD https://x/y /y\nUSER 1\nCMD ["x"]', "ADD of a URL"),
    ],
)
def test_each_rule_catches_its_mistake(dockerfile: str, problem: str) -> None:
    assert any(problem in p for p in problems(dockerfile)), problems(dockerfile)


def test_a_digest_pin_is_accepted() -> None:
    pinned = "FROM python@sha256:" + "a" * 64 + '\nUSER 10001\nCMD ["x"]'
    assert problems(pinned) == []
