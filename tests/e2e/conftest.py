"""A real `deepflix serve` process per test (devtools/service.py), on a free loopback port."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from devtools.service import Service, service_env
from tests.e2e.browser import chromium_context

__all__ = ["Service", "write_faults"]


def _factory(tmp_path: Path, services: list[Service]) -> Callable[..., Service]:
    def make(**settings: Any) -> Service:
        defaults = {
            "scene_seconds": 1,
            "fps": 12,
            "retry_base_delay_s": 0.1,
            "faults_file": tmp_path / "faults.json",
        }
        service = Service(tmp_path / "data", service_env(tmp_path / "data", **defaults | settings))
        services.append(service)
        service.start()
        return service

    return make


@pytest.fixture
def make_service(tmp_path: Path) -> Iterator[Callable[..., Service]]:
    services: list[Service] = []
    yield _factory(tmp_path, services)
    for service in services:
        service.kill()


@pytest.fixture(scope="module")
def shared_service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    """One service for tests that only read or are refused (bad input)."""
    services: list[Service] = []
    yield _factory(tmp_path_factory.mktemp("shared"), services)(generators="instant")
    for service in services:
        service.kill()


@pytest.fixture
def service(make_service: Callable[..., Service]) -> Service:
    return make_service()


def write_faults(service: Service, rules: dict[str, Any]) -> None:
    Path(service.env["DEEPFLIX_FAULTS_FILE"]).write_text(json.dumps(rules))


@pytest.fixture(scope="module")
def browser_context() -> Iterator[Any]:
    """Debian's Chromium with a fresh profile, one per module (skips without it)."""
    yield from chromium_context()


@pytest.fixture
def open_page(browser_context: Any) -> Iterator[Callable[..., Any]]:
    """Opens the dashboard of a service in a new tab of `width` by `height`; closed after."""
    pages: list[Any] = []

    def open_(service: Service, width: int = 1280, height: int = 800) -> Any:
        page = browser_context.new_page()
        pages.append(page)
        page.set_viewport_size({"width": width, "height": height})
        page.goto(service.url + "/")
        page.wait_for_function("document.querySelector('#admission').textContent !== ''")
        return page

    yield open_
    for page in pages:
        page.close()
