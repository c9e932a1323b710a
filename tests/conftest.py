"""Shared fixtures: every test runs with a clean environment and its own working folder."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

# Session fixtures for the Google emulators, shared by the contract and emulator tiers.
pytest_plugins = ["tests.emulator.fixtures"]


@pytest.fixture(autouse=True)
def isolated_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    for key in list(os.environ):
        if key.startswith("DEEPFLIX_") or key == "PORT":
            monkeypatch.delenv(key)
    # Nothing in a test may probe Google's metadata server or the network for credentials.
    monkeypatch.setenv("METADATA_SERVER_DETECTION", "none")
    monkeypatch.setenv("NO_GCE_CHECK", "true")
    monkeypatch.chdir(tmp_path)  # an unrelated .env in the checkout must not leak in
    from deepflix.settings import get_settings

    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """Say how many emulator tests ran: on machines without the Google Cloud CLI they skip."""
    counts: dict[str, int] = {}
    for outcome in ("passed", "failed", "skipped", "error"):
        for report in terminalreporter.stats.get(outcome, []):
            if "emulator" in getattr(report, "keywords", {}):
                counts[outcome] = counts.get(outcome, 0) + 1
    if counts:
        summary = ", ".join(f"{n} {outcome}" for outcome, n in counts.items())
        terminalreporter.write_line(f"emulator tests: {summary}")


def pytest_sessionfinish(session: Any, exitstatus: int) -> None:
    """Emulators are shared by the whole session; stop them (by process group) at its end."""
    import sys

    emulators = sys.modules.get("devtools.emulators")
    if emulators is not None:
        emulators.stop_all()
