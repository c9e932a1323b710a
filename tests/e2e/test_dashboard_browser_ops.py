"""The dashboard in a real browser: phone widths, errors and the token, admission and queue
pauses, dead letters, a lost server and the polling fallback."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from tests.e2e.browser import box, contrasts, needs, refuse, row, shot
from tests.e2e.conftest import Service, write_faults

pytestmark = pytest.mark.e2e


@pytest.mark.parametrize("width", [400, 360])
def test_at_a_phone_width_every_key_control_is_on_screen(
    make_service: Callable[..., Service], open_page: Callable[..., Page], width: int
) -> None:
    svc = make_service(generators="instant")
    write_faults(svc, {"images": {"kind": "delay", "seconds": 120, "match": "SLOW"}})
    movie_id = svc.create("a SLOW render on a phone")["movie_id"]
    page = open_page(svc, width=width, height=800)
    expect(row(page, movie_id).locator("[data-cancel]")).to_be_visible()
    controls = [
        "#create-submit",
        "#create [name=prompt]",
        "#admission-toggle",
        "#token-open",
        "#queues [data-queue=video]",
        "#filters [name=q]",
        "#filters [name=status]",
        "#bulk-retry",
        "#bulk-clean-submit",
        f'#movies tr[data-id="{movie_id}"] [data-cancel]',
        f'#movies tr[data-id="{movie_id}"] [data-delete]',
    ]
    for selector in controls:
        found = box(page, selector)
        assert found["x"] >= 0 and found["x"] + found["width"] <= width, (selector, found)
    assert page.evaluate("document.documentElement.scrollWidth") <= width
    texts = ["h1", "h2", ".muted", "#create-submit", "#admission", "#admission-toggle"]
    texts += ["#queues dt", "#queues dd", "td.prompt", "[data-state]", "[data-open]"]
    low = {s: round(r, 1) for s, r in contrasts(page, texts).items() if r < 4.5}
    assert not low, f"text below WCAG AA contrast (4.5:1): {low}"
    shot(page, f"list-{width}px")

    row(page, movie_id).locator("[data-open]").click()
    dialog = page.locator("#detail")
    expect(dialog.locator("[data-dcancel]")).to_be_visible()
    for selector in ("#detail [data-close]", "#detail [data-dcancel]", "#detail-timeline"):
        found = box(page, selector)
        assert found["x"] >= 0 and found["x"] + found["width"] <= width, (selector, found)
    shot(page, f"detail-{width}px")
    page.keyboard.press("Escape")
    expect(dialog).to_be_hidden()


def test_a_failed_action_is_never_silent_and_the_token_is_sent(
    make_service: Callable[..., Service], open_page: Callable[..., Page]
) -> None:
    svc = make_service(generators="instant")
    page = open_page(svc)
    refusals = {
        429: ("rate_limited", "Too many requests (429)", "Try again in 7 s"),
        401: ("unauthenticated", "Not signed in (401)", "Token button"),
        403: ("forbidden", "Not allowed (403)", "may not do that"),
    }
    for status, (code, *texts) in refusals.items():
        envelope = {"error": {"code": code, "message": f"refused {status}", "details": None}}
        page.route("**/api/admission/pause", refuse(status, envelope))
        page.click("#admission-toggle")
        toast = page.locator(".toast.error").last
        for text in (f"refused {status}", *texts):
            expect(toast).to_contain_text(text)
        page.unroute("**/api/admission/pause")
    shot(page, "toast-errors")
    assert svc.request("GET", "/api/queues")[1]["admission_paused"] is False

    # The server's own envelope, unmocked: a retry of an unknown movie.
    page.evaluate("movieAction('retry', 'doesnotexist')")
    expect(page.locator(".toast.error").last).to_contain_text("no movie with id")

    page.click("#token-open")
    page.fill("#token [name=token]", "dfx_browsertest")
    page.click("#token button[value=save]")
    with page.expect_request(lambda r: "/api/queues" in r.url) as sent:
        page.click("#admission-toggle")  # the answer refreshes the queues too
        page.evaluate("loadQueues()")
    assert sent.value.headers.get("authorization") == "Bearer dfx_browsertest"
    assert page.evaluate("localStorage.getItem('deepflix.token')") == "dfx_browsertest"

    # The stream refused for the token: the banner says so rather than "lost".
    refused = {"error": {"code": "unauthenticated", "message": "bad key", "details": None}}
    page.route("**/api/events", refuse(401, refused))
    page.evaluate("live.restart()")
    expect(page.locator("#banner-lost")).to_contain_text("The live stream was refused")
    expect(page.locator("#banner-lost")).to_contain_text("Set an API token")
    shot(page, "stream-refused")
    page.unroute("**/api/events")
    # This service has no API key: the made-up token is refused for real, until cleared.
    page.evaluate("live.restart()")
    expect(page.locator("#banner-lost")).to_contain_text("the bearer token is not valid")
    page.click("#token-open")
    page.click("#token button[value=clear]")
    page.evaluate("live.restart()")
    expect(page.locator("#banner-lost")).to_be_hidden()


def test_paused_admission_shows_and_a_waiting_movie_changes_priority(
    make_service: Callable[..., Service], open_page: Callable[..., Page]
) -> None:
    svc = make_service(generators="instant")
    page = open_page(svc)
    expect(page.locator("#banner-paused")).to_be_hidden()
    # By keyboard: Tab from the skip link reaches the button, which shows where the focus is.
    page.keyboard.press("Tab")
    expect(page.locator(".skip")).to_be_focused()
    for _ in range(3):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.id") == "admission-toggle":
            break
    expect(page.locator("#admission-toggle")).to_be_focused()
    assert page.evaluate("getComputedStyle(document.activeElement).outlineStyle") == "solid"
    page.keyboard.press("Enter")
    expect(page.locator("#admission")).to_have_text("admission paused")
    expect(page.locator("#banner-paused")).to_be_visible()
    assert svc.request("GET", "/api/queues")[1]["admission_paused"] is True
    page.fill("#create [name=prompt]", "waits for admission")
    page.click("#create-submit")
    expect(page.locator("#movies tbody tr")).to_have_count(1)
    movie_id = page.locator("#movies tbody tr").first.get_attribute("data-id")
    assert movie_id
    expect(row(page, movie_id)).to_contain_text("queued for admission")
    shot(page, "admission-paused")

    needs(svc, "POST", "/api/movies/{movie_id}/priority")
    row(page, movie_id).locator("[data-open]").click()
    page.select_option("#detail-priority", "high")
    page.click("#detail [data-dpriority]")
    expect(page.locator(".toast.info").last).to_contain_text("is high")
    assert svc.status(movie_id)["priority"] == "high"
    page.keyboard.press("Escape")

    needs(svc, "POST", "/api/queues/{stage}/pause")
    page.click("#queues [data-queue=images]")
    expect(page.locator('#queues .card[data-stage="images"] .badge')).to_have_text("paused")
    assert svc.request("GET", "/api/queues")[1]["queues"]["images"]["paused"] is True
    page.click("#queues [data-queue=images]")
    expect(page.locator('#queues .card[data-stage="images"] .badge')).to_have_count(0)

    needs(svc, "GET", "/api/dead-letters")
    page.click("#dead-open")
    expect(page.locator("#dead")).to_contain_text("No dead letters")
    page.keyboard.press("Escape")
    expect(page.locator("#dead")).to_be_hidden()
    # A listed letter (the list as the route answers it) replayed against the real route,
    # which no longer has it: the envelope's message shows.
    letter = {
        "id": "dl-gone",
        "topic": "run_stage",
        "movie_id": movie_id,
        "stage": "images",
        "reason": "delivery failed 10 times",
        "failed_at": "2026-12-07T08:00:00+00:00",
    }
    page.route("**/api/dead-letters", lambda route: route.fulfill(json={"dead_letters": [letter]}))
    page.click("#dead-open")
    expect(page.locator("#dead")).to_contain_text("delivery failed 10 times")
    page.click("#dead [data-replay=dl-gone]")
    refused = page.locator(".toast.error").last
    expect(refused).to_contain_text("no dead letter with id")
    shot(page, "dead-letters")
    refused.locator("button").click(timeout=5_000)  # above the modal, not inert behind it
    expect(page.locator(".toast.error")).to_have_count(0)


def test_a_lost_server_shows_a_banner_until_it_is_back(
    make_service: Callable[..., Service], open_page: Callable[..., Page]
) -> None:
    svc = make_service(generators="instant")
    page = open_page(svc)
    expect(page.locator("#live")).not_to_have_text("connecting…")
    expect(page.locator("#banner-lost")).to_be_hidden()
    svc.kill()
    expect(page.locator("#banner-lost")).to_be_visible(timeout=20_000)
    shot(page, "server-lost")
    svc.start()  # the same port and data
    expect(page.locator("#banner-lost")).to_be_hidden(timeout=30_000)


def test_without_the_stream_route_the_page_polls(
    make_service: Callable[..., Service], browser_context: Any
) -> None:
    svc = make_service(generators="instant")
    page: Page = browser_context.new_page()
    try:
        # As a server from before the stream (or a proxy that drops it) answers.
        missing = {"error": {"code": "not_found", "message": "no route", "details": None}}
        page.route("**/api/events", lambda route: route.fulfill(status=404, json=missing))
        page.goto(svc.url + "/")
        expect(page.locator("#live")).to_have_text("polling every 5 s")
        assert page.evaluate("document.body.dataset.live") == "poll"
        movie_id = svc.create("seen by polling")["movie_id"]
        expect(row(page, movie_id)).to_have_attribute("data-status", "succeeded", timeout=20_000)
        expect(page.locator("#banner-lost")).to_be_hidden()
    finally:
        page.close()
