"""Shared fixtures: every test runs with a clean environment and its own working folder."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

# Session fixtures for the Google emulators, shared by the contract and emulator tiers. Only a
# test that asks for one starts an emulator: importing them here starts nothing.
pytest_plugins = ["tests.emulator.fixtures"]

TIERS = ("unit", "integration", "contract", "e2e", "emulator", "bench")
# The tiers a folder of tests/ may hold. A contract suite takes its tier from the adapter it runs
# against (the fixture parameter's mark): `contract` for the embedded ones and local fakes,
# `emulator` for a Google emulator, so `-m contract` and `-m unit` never start an emulator.
FOLDER_TIERS = {tier: {tier} for tier in TIERS} | {"contract": {"contract", "emulator"}}


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


@pytest.hookimpl(tryfirst=True)  # before `-m` deselects: every run checks every test
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Every test has exactly one tier marker, the one (or one of those) its folder names."""
    tests = config.rootpath / "tests"
    wrong = []
    for item in items:
        tiers = sorted({mark.name for mark in item.iter_markers() if mark.name in TIERS})
        folder = item.path.relative_to(tests).parts[0] if item.path.is_relative_to(tests) else ""
        allowed = FOLDER_TIERS.get(folder)
        if len(tiers) != 1:
            wrong.append(f"{item.nodeid}: tier markers {tiers or 'none'}, needs exactly one")
        elif allowed is not None and tiers[0] not in allowed:
            wrong.append(f"{item.nodeid}: marked {tiers[0]} in tests/{folder}/")
    if wrong:
        raise pytest.UsageError(
            f"each test needs exactly one tier marker of {', '.join(TIERS)}, matching its "
            "folder (tests/conftest.py):\n  " + "\n  ".join(wrong)
        )


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
