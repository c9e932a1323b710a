"""Debian's Chromium driven by Playwright for the dashboard's tests, and what they share."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from devtools.service import Service

CHROMIUM = Path("/usr/bin/chromium")
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
# One picture per state the tests reach, kept as a test artifact (build/ is ignored by git).
SCREENSHOTS = Path(__file__).resolve().parents[2] / "build" / "screenshots"


def chromium_context() -> Iterator[Any]:
    """A fresh profile in Debian's Chromium; skips, saying why, where either part is missing."""
    if not CHROMIUM.exists():
        pytest.skip(f"no Chromium at {CHROMIUM}: `make test` installs Debian's package as root")
    sync_api = pytest.importorskip(
        "playwright.sync_api", reason="playwright is not installed (requirements.txt pins it)"
    )
    profile = tempfile.mkdtemp(prefix="deepflix-chromium-")
    try:
        with sync_api.sync_playwright() as pw:
            context = pw.chromium.launch_persistent_context(
                profile,
                executable_path=str(CHROMIUM),
                headless=True,
                args=ARGS,
                viewport={"width": 1280, "height": 800},
            )
            context.set_default_timeout(30_000)
            try:
                yield context
            finally:
                context.close()
    finally:
        shutil.rmtree(profile, ignore_errors=True)


def shot(page: Any, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


def has(service: Service, method: str, path: str) -> bool:
    """Whether this build's API declares the route (its OpenAPI document says)."""
    code, doc = service.request("GET", "/openapi.json")
    assert code == 200
    return method.lower() in doc["paths"].get(path, {})


def needs(service: Service, method: str, path: str) -> None:
    """Skip unless this build's API has the route (routes the dashboard uses that another part
    of the service brings)."""
    if not has(service, method, path):
        pytest.skip(f"this build's API has no {method} {path}")


def box(page: Any, selector: str) -> dict[str, float]:
    """The element's box; a live update may replace the element while it is measured."""
    for _ in range(5):
        found = page.locator(selector).bounding_box()
        if found is not None:
            return dict(found)
    raise AssertionError(f"{selector} has no box")


def row(page: Any, movie_id: str) -> Any:
    return page.locator(f'#movies tr[data-id="{movie_id}"]')


def refuse(status: int, envelope: dict[str, Any]) -> Callable[[Any], None]:
    """A route handler answering `status` with the error envelope (and a Retry-After)."""

    def answer(route: Any) -> None:
        route.fulfill(status=status, json=envelope, headers={"Retry-After": "7"})

    return answer


# WCAG contrast of each element's text against the first opaque background behind it.
CONTRAST_JS = """(selectors) => {
  const rgb = (c) => (c.match(/[\\d.]+/g) || []).map(Number);
  const channel = (v) => (v /= 255) <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4;
  const lum = ([r, g, b]) => 0.2126 * channel(r) + 0.7152 * channel(g) + 0.0722 * channel(b);
  const behind = (el) => {
    for (; el; el = el.parentElement) {
      const c = rgb(getComputedStyle(el).backgroundColor);
      if (c.length === 3 || c[3] > 0) return c.slice(0, 3);
    }
    return [255, 255, 255];
  };
  return selectors.map((s) => {
    const el = document.querySelector(s);
    const a = lum(rgb(getComputedStyle(el).color)), b = lum(behind(el));
    return [s, (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05)];
  });
}"""


def contrasts(page: Any, selectors: list[str]) -> dict[str, float]:
    return dict(page.evaluate(CONTRAST_JS, selectors))
