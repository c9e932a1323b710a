"""The dashboard of a service that takes API keys: nothing without the token, all with it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from tests.e2e.browser import row, shot
from tests.e2e.conftest import Service
from tests.e2e.helpers import new_key

pytestmark = pytest.mark.e2e


def test_with_an_operators_key_the_page_works_and_its_media_load(
    make_service: Callable[..., Service], browser_context: Any
) -> None:
    svc = make_service(generators="cpu")  # a real film for the player
    key = new_key(svc, "oncall", "ops", "--admin")["Authorization"].removeprefix("Bearer ")
    page: Page = browser_context.new_page()
    page.set_viewport_size({"width": 1280, "height": 800})
    page.goto(svc.url + "/")
    # Without the token the service refuses the page's data, and the page says why.
    expect(page.locator("#banner-lost")).to_contain_text("Set an API token")
    page.click("#token-open")
    page.fill("#token [name=token]", key)
    page.click("#token button[value=save]")
    page.evaluate("live.restart()")
    expect(page.locator("#banner-lost")).to_be_hidden()

    page.fill("#create [name=prompt]", "a kite that will not come down")
    page.fill("#create [name=scene_count]", "1")
    page.click("#create-submit")
    expect(page.locator(".toast.info")).to_contain_text("Created")
    movie_id = page.locator("#movies tbody tr").first.get_attribute("data-id")
    assert movie_id
    expect(row(page, movie_id)).to_have_attribute("data-status", "succeeded", timeout=90_000)
    # The operator's list shows every owner's movies, and the files need the token too:
    # the page fetches them with it (an <img> or <video> cannot send a header).
    assert svc.request("GET", f"/api/movies/{movie_id}")[0] == 401
    row(page, movie_id).locator("[data-open]").click()
    expect(page.locator("#detail .stills img")).to_have_count(1)
    page.wait_for_function("document.querySelector('#poster')?.naturalWidth > 0")
    page.wait_for_function("document.querySelector('#film')?.readyState >= 1")
    shot(page, "detail-with-api-key")
    page.close()
