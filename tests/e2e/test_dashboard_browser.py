"""The dashboard in a real browser against a real `deepflix serve`: the movie flows."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from playwright.sync_api import Page, expect

from tests.e2e.browser import has, needs, row, shot
from tests.e2e.conftest import Service, write_faults

pytestmark = pytest.mark.e2e


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
    schemas = svc.request("GET", "/openapi.json")[1]["components"]["schemas"]
    hooks = "webhook" in schemas.get("MovieCreate", {}).get("properties", {})
    # A webhook to a port where nothing listens: its failed attempts show in the detail.
    extra = {"webhook": "http://127.0.0.1:9/hook"} if hooks else {}
    movie_id = svc.create("the DOOMED expedition", **extra)["movie_id"]
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
    if hooks:
        expect(dialog.locator("#webhook-state")).to_contain_text("not delivered yet")
        expect(dialog.locator("#detail-webhook li").first).to_contain_text("Connection refused")
        expect(dialog.locator("#webhook-state")).to_contain_text("127.0.0.1:9/hook")
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

    # Deleted elsewhere while its detail is open: the stream says so, and both go.
    row(page, ids[0]).locator("[data-open]").click()
    expect(page.locator("#detail")).to_be_visible()
    svc.call("DELETE", f"/api/movies/{ids[0]}")
    expect(page.locator("#detail")).to_be_hidden()
    expect(page.locator(".toast.info").last).to_contain_text("was deleted")
    expect(row(page, ids[0])).to_have_count(0)

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
    expect(page.locator(".toast.info").last).to_contain_text("Cleaned 20 movies")
    expect(page.locator("#movies-empty")).to_be_visible()
    shot(page, "list-cleaned")
    assert svc.request("GET", "/api/movies")[1]["movies"] == []
