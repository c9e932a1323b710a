"""Shared fixtures: every test runs with a clean environment and its own working folder."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest


@pytest.fixture(autouse=True)
def isolated_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    for key in list(os.environ):
        if key.startswith("DEEPFLIX_") or key == "PORT":
            monkeypatch.delenv(key)
    # Nothing in a test may probe Google's metadata server or the network for credentials.
    monkeypatch.setenv("METADATA_SERVER_DETECTION", "none")
    monkeypatch.setenv("NO_GCE_CHECK", "true")
    monkeypatch.chdir(tmp_path)  # an unrelated .env in the checkout must not leak in
    from deepflix.config import get_settings

    get_settings.cache_clear()
    yield
    get_settings.cache_clear()
