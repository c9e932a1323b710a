"""The dashboard in a real browser against a real `deepflix serve`: each flow an operator uses."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from tests.e2e.browser import box, chromium_context, has, needs, row, shot
from tests.e2e.conftest import Service, write_faults

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def context() -> Iterator[Any]:
    yield from chromium_context()


@pytest.fixture
def open_page(context: Any) -> Iterator[Callable[..., Page]]:
    pages: list[Page] = []

    def open_(service: Service, width: int = 1280, height: int = 800) -> Page:
        page: Page = context.new_page()
        pages.append(page)
        page.set_viewport_size({"width": width, "height": height})
        page.goto(service.url + "/")
        expect(page.locator("#admission")).not_to_have_text("")
        return page

    yield open_
    for page in pages:
        page.close()


def test_a_movie_made_live_then_its_detail_and_film_that_seeks(
    make_service: Callable[..., Service], open_page: Callable[..., Page]
) -> None:
    svc = make_service(generators="cpu")
    page = open_page(svc)
    page.fill("#create [name=prompt]", "a lighthouse keeper's cat learns to sail")
    page.fill("#create [name=scene_count]", "2")
    page.click("#create-submit")
    expect(page.locator(".toast.info")).to_contain_text("Created")
    movie_id = page.locator("#movies tbody tr").first.get_attribute("data-id")
    assert movie_id and len(movie_id) == 32
    shot(page, "list-movie-created")
    # The row turns succeeded with no reload: the page stream (or its polling fallback) says so.
    expect(row(page, movie_id)).to_have_attribute("data-status", "succeeded", timeout=90_000)
    # One stream where the server has it; polling (every 5 s) only where the route is missing.
    live = "stream" if has(svc, "GET", "/api/events") else "poll"
    assert page.evaluate("document.body.dataset.live") == live
    shot(page, "list-movie-succeeded")

    row(page, movie_id).locator("[data-open]").click()
    dialog = page.locator("#detail")
    expect(dialog).to_be_visible()
    for stage in ("story", "images", "video"):
        expect(dialog.locator(f'.timeline li[data-stage="{stage}"]')).to_have_class("s-succeeded")
    expect(dialog.locator("#story-title")).not_to_be_empty()
    expect(dialog.locator(".stills img")).to_have_count(2)
    page.wait_for_function("document.querySelector('#poster')?.naturalWidth > 0")
    page.wait_for_function("document.querySelector('#film')?.readyState >= 1")
    played = page.evaluate(
        """async () => {
          const v = document.querySelector('#film');
          v.muted = true;
          await v.play();
          await new Promise((r) => v.addEventListener('timeupdate', r, { once: true }));
          v.pause();
          const target = v.duration * 0.75;
          await new Promise((r) => { v.addEventListener('seeked', r, { once: true });
                                     v.currentTime = target; });
          return { target, at: v.currentTime, duration: v.duration,
                   seekable: v.seekable.length ? v.seekable.end(0) : 0 };
        }"""
    )
    # Seeking needs the server to answer Range: without it the browser can seek nowhere.
    assert played["duration"] > 1 and played["seekable"] == pytest.approx(played["duration"])
    assert played["at"] == pytest.approx(played["target"], abs=0.2)
    shot(page, "detail-succeeded")
    page.keyboard.press("Escape")
    expect(dialog).to_be_hidden()


def test_a_failed_movie_says_why_and_retry_finishes_it(
    make_service: Callable[..., Service], open_page: Callable[..., Page]
) -> None:
    svc = make_service(generators="instant")
    write_faults(svc, {"images": {"kind": "permanent", "match": "DOOMED"}})
    movie_id = svc.create("the DOOMED expedition")["movie_id"]
    page = open_page(svc)
    expect(row(page, movie_id)).to_have_attribute("data-status", "failed", timeout=30_000)
    row(page, movie_id).locator("[data-open]").click()
    dialog = page.locator("#detail")
    error = dialog.locator('.timeline li[data-stage="images"] .stage-error')
    expect(error).to_contain_text("injected permanent fault")
    expect(error).to_contain_text("attempt 1")
    expect(dialog.locator("#movie-error")).to_contain_text("failed")
    if has(svc, "GET", "/api/movies/{movie_id}/logs"):
        expect(dialog.locator("#detail-log")).to_contain_text("[images #1] stage failed")
    else:
        expect(dialog.locator("#detail-log")).to_contain_text("no job log")
    shot(page, "detail-failed")

    write_faults(svc, {})
    dialog.locator("[data-dretry]").click()
    expect(dialog.locator('.timeline li[data-stage="video"]')).to_have_class(
        "s-succeeded", timeout=30_000
    )
    expect(dialog.locator("#detail-state")).to_have_text("succeeded")
    assert svc.status(movie_id)["status"] == "succeeded"


def test_cancel_asks_first_and_escape_keeps_the_movie(
    make_service: Callable[..., Service], open_page: Callable[..., Page]
) -> None:
    svc = make_service(generators="instant")
    write_faults(svc, {"images": {"kind": "delay", "seconds": 120, "match": "SLOW"}})
    movie_id = svc.create("a SLOW render")["movie_id"]
    page = open_page(svc)
    row(page, movie_id).locator("[data-delete]").focus()
    # Its status view tells the row it runs (the list's summary says only the stage); the
    # repaint leaves the keyboard's focus where it was.
    expect(row(page, movie_id).locator("[data-state]")).to_have_text("images · running")
    expect(row(page, movie_id).locator("[data-delete]")).to_be_focused()
    cancel = row(page, movie_id).locator("[data-cancel]")
    cancel.click()
    confirm = page.locator("#confirm")
    expect(confirm).to_be_visible()
    expect(confirm).to_contain_text(f"Cancel movie {movie_id[:8]}?")
    shot(page, "confirm-cancel")
    page.keyboard.press("Escape")
    expect(confirm).to_be_hidden()
    assert svc.status(movie_id)["status"] not in ("cancelled", "failed", "succeeded")

    cancel.click()
    page.click("#confirm-ok")
    expect(row(page, movie_id)).to_have_attribute("data-status", "cancelled")
    assert svc.status(movie_id)["status"] == "cancelled"
    expect(row(page, movie_id).locator("[data-retry]")).to_be_visible()
    shot(page, "list-cancelled")

    # Retrying a cancelled movie comes with the operator routes (DELETE among them).
    needs(svc, "DELETE", "/api/movies/{movie_id}")
    write_faults(svc, {})
    row(page, movie_id).locator("[data-retry]").click()
    expect(row(page, movie_id)).to_have_attribute("data-status", "succeeded", timeout=30_000)
    row(page, movie_id).locator("[data-delete]").click()
    expect(page.locator("#confirm")).to_contain_text("cannot be undone")
    page.click("#confirm-ok")
    expect(row(page, movie_id)).to_have_count(0)
    assert svc.request("GET", f"/api/movies/{movie_id}")[0] == 404


def test_paging_filters_search_and_bulk_clean(
    make_service: Callable[..., Service], open_page: Callable[..., Page]
) -> None:
    svc = make_service(generators="instant")
    write_faults(svc, {"story": {"kind": "permanent", "match": "DOOMED"}})
    doomed = svc.create("a DOOMED one")["movie_id"]
    assert svc.wait_terminal(doomed)["status"] == "failed"
    # Twenty more wait for admission and are cancelled: a second page, and all finished.
    svc.call("POST", "/api/admission/pause")
    ids = [svc.create(f"film number {i}")["movie_id"] for i in range(20)]
    for movie_id in ids:
        svc.call("POST", f"/api/movies/{movie_id}/cancel")
    page = open_page(svc)
    expect(page.locator("#movies tbody tr")).to_have_count(20)
    page.click("#page-next")
    expect(page.locator("#movies tbody tr")).to_have_count(1)
    expect(page.locator("#page-no")).to_have_text("page 2")
    page.click("#page-prev")
    expect(page.locator("#movies tbody tr")).to_have_count(20)

    needs(svc, "POST", "/api/bulk/clean")
    page.select_option("#filters [name=status]", "failed")
    expect(page.locator("#movies tbody tr")).to_have_count(1)
    expect(row(page, doomed)).to_be_visible()
    shot(page, "list-filter-failed")
    page.select_option("#filters [name=status]", "")
    page.fill("#filters [name=q]", ids[3][:8])
    expect(page.locator("#movies tbody tr")).to_have_count(1)
    expect(row(page, ids[3])).to_be_visible()
    page.fill("#filters [name=q]", "")
    expect(page.locator("#movies tbody tr")).to_have_count(20)

    svc.call("POST", "/api/admission/resume")  # a retry from the first stage is admitted again
    page.click("#bulk-retry")
    page.click("#confirm-ok")
    expect(page.locator(".toast.info").last).to_contain_text("Retrying 1 movie")
    again = svc.wait_terminal(doomed)
    assert again["status"] == "failed"
    assert again["stages"]["story"]["attempt"] == 2

    page.fill("#bulk-clean [name=minutes]", "0")
    page.click("#bulk-clean-submit")
    page.click("#confirm-ok")
    expect(page.locator(".toast.info").last).to_contain_text("Cleaned 21 movies")
    expect(page.locator("#movies-empty")).to_be_visible()
    shot(page, "list-cleaned")
    assert svc.request("GET", "/api/movies")[1]["movies"] == []


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


def refuse(status: int, envelope: dict[str, Any]) -> Callable[[Any], None]:
    def answer(route: Any) -> None:
        route.fulfill(status=status, json=envelope, headers={"Retry-After": "7"})

    return answer


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
    make_service: Callable[..., Service], context: Any
) -> None:
    svc = make_service(generators="instant")
    page: Page = context.new_page()
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

    # The stream refused for the token: the banner says so rather than "lost".
    refused = {"error": {"code": "unauthenticated", "message": "bad key", "details": None}}
    page.route("**/api/events", refuse(401, refused))
    page.evaluate("live.restart()")
    expect(page.locator("#banner-lost")).to_contain_text("The live stream was refused")
    expect(page.locator("#banner-lost")).to_contain_text("Set an API token")
    shot(page, "stream-refused")
    page.unroute("**/api/events")
    page.evaluate("live.restart()")
    expect(page.locator("#banner-lost")).to_be_hidden()
