"""In a real browser: a seizure reported by one user appears on another user's page without reload."""

from __future__ import annotations

import time

import httpx2
import pytest

from stopnet.web.assets import static_url
from tests.pages import sign_in

from .test_feed import post_case

pytestmark = pytest.mark.browser


def browser_cookie(base: str, actor) -> dict:
    with httpx2.Client(base_url=base) as c:
        r = sign_in(c, actor)
        assert r.status_code == 303, r.text
        cookie = next(iter(c.cookies.jar))
        return {"name": cookie.name, "value": cookie.value, "url": base}


def test_a_reported_seizure_appears_on_another_users_page_without_reload(
    world, live_server, browser_page, chromium
):
    page, watch = browser_page
    base = live_server.url
    page.context.add_cookies([browser_cookie(base, world["de_officer"])])
    page.goto("/operations/TEST-OP/live")
    page.wait_for_selector("html[data-live=open]")
    page.evaluate("window.__notReloaded = true")

    post_case(base, world["fr_officer"], "FR-HIDDEN", visibility="own")  # never for DE
    post_case(base, world["fr_officer"], "FR-LIVE-1")
    item = page.wait_for_selector("#live-events li:has-text('FR-LIVE-1')", timeout=10_000)
    assert "MED-WEIGHT" in item.inner_text()
    assert page.evaluate("window.__notReloaded") is True
    assert page.locator("#live-empty").is_hidden()

    # a second user, in another browser session, reports through the API while the first page stays open
    other = chromium.new_context(base_url=base)
    try:
        other.add_cookies([browser_cookie(base, world["ke_officer"])])
        ke = other.new_page()
        ke.goto("/operations/TEST-OP/live")
        ke.wait_for_selector("html[data-live=open]")
        post_case(
            base, world["ke_officer"], "KE-LIVE-2", seizures=[{"commodity_code": "IPR-FOOT", "pieces": 7}]
        )
        page.wait_for_selector("#live-events li:has-text('KE-LIVE-2')", timeout=10_000)
        ke.wait_for_selector("#live-events li:has-text('KE-LIVE-2')", timeout=10_000)
        assert ke.locator("#live-events li:has-text('FR-HIDDEN')").count() == 0
    finally:
        other.close()

    time.sleep(0.5)
    texts = page.locator("#live-events li").all_inner_texts()
    assert [t for t in texts if "FR-HIDDEN" in t] == []
    assert sum("FR-LIVE-1" in t for t in texts) == 1 and sum("KE-LIVE-2" in t for t in texts) == 1
    assert page.evaluate("window.__notReloaded") is True
    assert watch.page_errors == [] and watch.foreign_requests(base) == []
    assert [m for m in watch.console_errors if "Content Security Policy" in m] == []


def test_the_case_list_gains_new_rows_once_it_loads_live_js(world, live_server, browser_page):
    """The case list page with live.js (added here as its template will load it): rows appear live."""
    page, watch = browser_page
    base = live_server.url
    post_case(base, world["fr_officer"], "FR-BEFORE")
    page.context.add_cookies([browser_cookie(base, world["de_officer"])])
    page.goto("/operations/TEST-OP/cases")
    page.wait_for_selector("#cases a:has-text('FR-BEFORE')")
    if page.locator(f"script[src='{static_url('live.js')}']").count() == 0:
        page.add_script_tag(url=static_url("live.js"))
    page.wait_for_selector("html[data-live=open]")
    page.evaluate("window.__notReloaded = true")
    post_case(base, world["fr_officer"], "FR-NEW-ROW")
    post_case(base, world["fr_officer"], "FR-OWN-ROW", visibility="own")
    row = page.wait_for_selector("#cases tbody tr:has-text('FR-NEW-ROW')", timeout=10_000)
    assert "FR-CUS" in row.inner_text() and "submitted" in row.inner_text()
    assert page.locator("#cases tbody tr").first.inner_text().startswith("FR-NEW-ROW")
    time.sleep(0.5)
    assert page.locator("#cases tbody tr:has-text('FR-OWN-ROW')").count() == 0
    assert page.evaluate("window.__notReloaded") is True
    assert watch.page_errors == []


def test_the_count_line_keeps_its_words_when_a_case_arrives(world, live_server, browser_page):
    """ "3 cases · page 1 of 2" becomes "4 cases · page 1 of 2", not "3,124 cases" (the page numbers
    used to be read as part of the count)."""
    page, watch = browser_page
    base = live_server.url
    for i in range(3):
        post_case(base, world["fr_officer"], f"FR-PAGE-{i}")
    page.context.add_cookies([browser_cookie(base, world["de_officer"])])
    page.goto("/operations/TEST-OP/cases?page_size=2")
    assert page.inner_text("#count") == "3 cases · page 1 of 2"
    page.wait_for_selector("html[data-live=open]")
    post_case(base, world["fr_officer"], "FR-PAGE-NEW")
    page.wait_for_selector("#cases tbody tr:has-text('FR-PAGE-NEW')", timeout=10_000)
    assert page.inner_text("#count") == "4 cases · page 1 of 2"
    post_case(base, world["fr_officer"], "FR-PAGE-NEWER")
    page.wait_for_selector("#cases tbody tr:has-text('FR-PAGE-NEWER')", timeout=10_000)
    assert page.inner_text("#count") == "5 cases · page 1 of 3"
    assert watch.page_errors == []


def test_a_reported_seizure_updates_another_users_dashboard_without_reload(
    world, live_server, browser_page, monkeypatch
):
    """The operation dashboard listens to the live feed: figures change in place when a case arrives
    (also when the server first answers with a summary still being rebuilt: the page asks again)."""
    from stopnet.analytics import service

    monkeypatch.setattr(service, "REBUILD_GAP_SECONDS", 30.0)
    page, watch = browser_page
    base = live_server.url
    post_case(base, world["fr_officer"], "FR-DASH-0")
    page.context.add_cookies([browser_cookie(base, world["de_officer"])])
    page.goto("/operations/TEST-OP/dashboard")
    page.wait_for_selector("#dashboard[data-drawn=true]", timeout=20_000)
    page.wait_for_selector("html[data-live=open]")
    page.evaluate("window.__notReloaded = true")
    cases = page.locator("[data-figure=cases]").get_attribute("data-value")
    seizures = page.locator("[data-figure=seizures]").get_attribute("data-value")
    assert (cases, seizures) == ("1", "2")

    post_case(base, world["fr_officer"], "FR-DASH-HIDDEN", visibility="own")  # never counted for DE
    post_case(
        base,
        world["fr_officer"],
        "FR-DASH-1",
        seizures=[{"commodity_code": "IPR-FOOT", "pieces": 7}, {"commodity_code": "MED-WEIGHT", "pieces": 3}],
    )
    page.wait_for_selector("[data-figure=cases][data-value='2']", timeout=15_000)
    assert page.locator("[data-figure=seizures]").get_attribute("data-value") == "4"
    assert page.evaluate("window.__notReloaded") is True
    page.wait_for_selector("#dashboard[data-drawn=true]", timeout=20_000)  # the charts were redrawn
    assert watch.page_errors == [] and watch.foreign_requests(base) == []
    assert [m for m in watch.console_errors if "Content Security Policy" in m] == []


def test_opening_a_thread_in_a_browser_marks_it_read_by_a_post(world, live_server, browser_page):
    """The thread page's GET changes nothing; once loaded, htmx posts the read mark (CSRF token in the
    form), so a browser that opens the page has read it and a prefetch or crawler has not."""
    page, watch = browser_page
    base = live_server.url
    de = browser_cookie(base, world["de_officer"])
    with httpx2.Client(base_url=base, cookies={de["name"]: de["value"]}) as api:
        created = api.post(
            "/api/v1/operations/TEST-OP/threads",
            json={"title": "Pens via HK", "body": "Seen anything similar?"},
            headers=world["de_officer"].headers,
        )
        assert created.status_code == 201, created.text
        tid = created.json()["id"]
    fr = browser_cookie(base, world["fr_officer"])

    def unread() -> int:
        with httpx2.Client(base_url=base, cookies={fr["name"]: fr["value"]}) as c:
            threads = c.get("/operations/TEST-OP/threads?format=json").json()
            return next(t["unread"] for t in threads if t["id"] == tid)

    with httpx2.Client(base_url=base, cookies={fr["name"]: fr["value"]}) as c:
        assert c.get(f"/threads/{tid}").status_code == 200
    assert unread() == 1  # a plain GET (no script run) leaves it unread
    page.context.add_cookies([fr])
    with page.expect_response(lambda r: r.url.endswith(f"/threads/{tid}/read")) as marked:
        page.goto(f"/threads/{tid}")
    assert marked.value.status == 204 and marked.value.request.method == "POST"
    assert unread() == 0
    assert watch.page_errors == [] and watch.foreign_requests(base) == []
