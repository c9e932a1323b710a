"""Checks before `deepflix serve` starts anything: each problem said in one line, by name."""

from __future__ import annotations

import difflib
import ipaddress
import os
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path

from deepflix.runtime.instance import CannotStart
from deepflix.settings import Settings
from deepflix.stages.faults import FaultPlan

PREFIX = "DEEPFLIX_"
# Read by other parts than the settings: the CLI's own, and a job's environment.
OTHER_NAMES = frozenset(
    {
        "DEEPFLIX_URL",
        "DEEPFLIX_TOKEN",
        "DEEPFLIX_JOB_STAGE",
        "DEEPFLIX_JOB_MOVIE_ID",
        "DEEPFLIX_JOB_ATTEMPT",
        "DEEPFLIX_JOB_PARENT_PID",
        "DEEPFLIX_METER_CALLERS",
    }
)


def known_names() -> set[str]:
    """Every DEEPFLIX_* name something reads."""
    return {PREFIX + name.upper() for name in Settings.model_fields} | OTHER_NAMES


def dotenv_names(path: Path) -> list[str]:
    """The names a .env file sets (`NAME=value` or `export NAME=value` lines)."""
    if not path.is_file():
        return []
    names = []
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        line = line.strip().removeprefix("export ").strip()
        if line and not line.startswith("#") and "=" in line:
            names.append(line.split("=", 1)[0].strip())
    return names


def unknown_names(env: Mapping[str, str], dotenv: Iterable[str] = ()) -> list[str]:
    """A warning per DEEPFLIX_* name nothing reads (a typo, mostly), with the closest known."""
    known = known_names()
    warnings = []
    for where, names in (("environment", list(env)), (".env", list(dotenv))):
        for name in sorted({n for n in names if n.upper().startswith(PREFIX)}):
            if name.upper() in known:
                continue
            close = difflib.get_close_matches(name.upper(), sorted(known), n=1, cutoff=0.6)
            hint = f"; did you mean {close[0]}?" if close else ""
            warnings.append(f"unknown setting {name} in the {where}, ignored{hint}")
    return warnings


def check_host(host: str) -> None:
    """The API binds an IP address: a name (localhost) is refused here, not by a traceback."""
    try:
        ipaddress.ip_address(host)
    except ValueError:
        raise CannotStart(
            f"DEEPFLIX_HOST={host} is not an IP address"
            " (use 127.0.0.1 for this machine only, 0.0.0.0 for every interface)"
        ) from None


def check_writable(path: Path, setting: str) -> None:
    """`path` is (or can be made) a directory this process can write a file in."""
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path, prefix=".write-check-"):
            pass
    except OSError as e:
        reason = e.strerror or str(e)
        raise CannotStart(f"{setting}={path} is not a writable directory: {reason}") from None


def check_faults(path: Path | None) -> None:
    if path is None:
        return
    try:
        FaultPlan(path).validate()
    except ValueError as e:
        raise CannotStart(f"DEEPFLIX_FAULTS_FILE={path}: {e}") from None


def check(settings: Settings) -> None:
    """Raise CannotStart with the first problem found, in one line naming the setting."""
    check_host(settings.host)
    check_writable(settings.data_dir, "DEEPFLIX_DATA_DIR")
    if settings.media_dir is not None:
        check_writable(settings.media_dir, "DEEPFLIX_MEDIA_DIR")
    check_faults(settings.faults_file)


def warnings(env: Mapping[str, str] | None = None, dotenv: Path = Path(".env")) -> list[str]:
    return unknown_names(os.environ if env is None else env, dotenv_names(dotenv))
