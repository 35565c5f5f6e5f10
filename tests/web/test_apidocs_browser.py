"""The API reference in a real headless Chromium: Swagger UI at /docs and ReDoc at /redoc list the
operations of the OpenAPI document, drawn from this site's own files, with no CSP violation and no
request to any host but 127.0.0.1. Uses the live server and browser fixtures of tests/pages.py."""

from __future__ import annotations

from typing import Any

import pytest

from tests.web.test_browser import sign_in
from tests.web.test_dashboard_browser import CSP_WATCH

pytestmark = pytest.mark.browser


def operations_of(client: Any) -> list[tuple[str, str]]:
    spec = client.get("/openapi.json").json()
    return [
        (method.upper(), path)
        for path, item in spec["paths"].items()
        for method in item
        if method in ("get", "post", "put", "patch", "delete")
    ]


def test_only_redoc_relaxes_the_csp_and_only_for_styles_and_its_search_worker(client):
    from stopnet.web.app import CSP

    swagger = client.get("/docs", headers={"Accept": "text/html"})
    assert swagger.status_code == 200 and swagger.headers["content-security-policy"] == CSP
    redoc = client.get("/redoc", headers={"Accept": "text/html"})
    assert redoc.status_code == 200
    directives = dict(d.strip().split(" ", 1) for d in redoc.headers["content-security-policy"].split(";"))
    site = dict(d.strip().split(" ", 1) for d in CSP.split(";"))
    assert directives.pop("style-src") == "'self' 'unsafe-inline'"
    assert directives.pop("worker-src") == "'self' blob:"
    site.pop("style-src")
    assert directives == site  # scripts, connections, frames, forms: as strict as everywhere
    assert client.get("/api/docs", follow_redirects=False).headers["location"] == "/docs"


def test_swagger_ui_and_redoc_list_the_operations_from_this_site(
    browser_page, live_server, world, client, screenshot_dir
):
    page, watch = browser_page
    page.add_init_script(CSP_WATCH)
    operations = operations_of(client)
    assert len(operations) > 40

    sign_in(page, world["fr_officer"].email)
    page.click("header nav a:has-text('API')")  # reachable from the site's navigation
    page.wait_for_url("**/docs")
    page.wait_for_selector("#swagger-ui .opblock", timeout=30_000)
    shown = page.eval_on_selector_all(
        "#swagger-ui .opblock",
        "bs => bs.map(b => [b.querySelector('.opblock-summary-method').textContent.trim(), "
        "b.querySelector('.opblock-summary-path').getAttribute('data-path')])",
    )
    assert sorted(map(tuple, shown)) == sorted(operations)
    assert page.locator("#swagger-ui .errors-wrapper").count() == 0  # the document is understood
    assert page.locator("header .who").count() == 1  # the site's own top bar, signed in
    page.screenshot(path=str(screenshot_dir / "apidocs-01-swagger.png"), full_page=False)

    page.click("a:has-text('ReDoc view')")
    page.wait_for_url("**/redoc")
    page.wait_for_selector(
        "#redoc [data-section-id^='operation/'], #redoc [id^='operation/']", timeout=30_000
    )
    listed = page.eval_on_selector_all(
        "#redoc [data-section-id^='operation/']", "els => els.map(e => e.getAttribute('data-section-id'))"
    )
    assert len(set(listed)) == len(operations), (len(set(listed)), len(operations))
    page.screenshot(path=str(screenshot_dir / "apidocs-02-redoc.png"), full_page=False)

    page.goto("/api/docs")  # the old address
    page.wait_for_url("**/docs")
    page.wait_for_selector("#swagger-ui .opblock", timeout=30_000)

    assert page.evaluate("window.__csp") == []
    assert watch.unexpected_console_errors() == [], watch.console_errors
    assert watch.page_errors == [], watch.page_errors
    assert watch.failed_resources == []
    assert watch.foreign_requests(live_server.url) == []
    assert all(
        u.startswith(live_server.url + "/") or u.startswith(("data:", "blob:")) for u in watch.requests
    )
