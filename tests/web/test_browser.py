"""The pages in a real headless Chromium, served by uvicorn on 127.0.0.1 (see conftest.py).

An officer reports a case through the form (two seizure lines, one added with htmx), finds it in the
list, filters the list, corrects the case; the national contact point validates it; a file is imported.
No console error, no request to anything but the local server, a screenshot of every page in
test-artifacts/screenshots/.
"""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path
from typing import Any

import pytest

from stopnet.reporting.importer import COLUMNS
from tests.conftest import PASSWORD, case_payload

pytestmark = pytest.mark.browser


class Shots:
    """Numbered full-page screenshots of one test."""

    def __init__(self, directory: Path, prefix: str) -> None:
        self.directory, self.prefix, self.n = directory, prefix, 0

    def __call__(self, page: Any, name: str) -> None:
        self.n += 1
        page.screenshot(path=str(self.directory / f"{self.prefix}-{self.n:02d}-{name}.png"), full_page=True)


def sign_in(page: Any, email: str) -> None:
    page.goto("/login")
    page.fill("input[name=email]", email)
    page.fill("input[name=password]", PASSWORD)
    page.click("button:has-text('Sign in')")
    page.wait_for_selector("header .who")


def sign_out(page: Any) -> None:
    page.click("header button:has-text('Sign out')")
    page.wait_for_url(re.compile(r"/login$"))


def assert_clean(watch: Any, base_url: str, *expected_statuses: int) -> None:
    """No console or page error, every resource loaded, and nothing asked of any other host."""
    assert watch.unexpected_console_errors(*expected_statuses) == [], watch.console_errors
    # an expected refusal (a form's 422) may come back to a script (the import's upload.js) as a resource
    assert [r for r in watch.failed_resources if int(r.split()[0]) not in expected_statuses] == []
    assert watch.page_errors == [], watch.page_errors
    assert watch.foreign_requests(base_url) == []
    assert watch.requests, "no request was recorded"


def test_report_filter_correct_and_validate_a_case(browser_page, live_server, world, client, screenshot_dir):
    page, watch = browser_page
    shot = Shots(screenshot_dir, "case")
    # another administration's case, shared with participants: the list has something to filter out
    r = client.post(
        "/api/v1/operations/TEST-OP/cases",
        json=case_payload(
            "DE-0001", channel="POSTAL", seizures=[{"commodity_code": "IPR-CLOTH", "pieces": 40}]
        ),
        headers=world["de_officer"].headers,
    )
    assert r.status_code == 201, r.text

    page.goto("/")
    assert "/login" in page.url  # the sign-in wall
    shot(page, "login")
    page.fill("input[name=email]", world["fr_officer"].email)
    page.fill("input[name=password]", "wrong password")
    page.click("button:has-text('Sign in')")
    assert "wrong e-mail or password" in page.inner_text("#login-error")
    assert page.input_value("input[name=email]") == world["fr_officer"].email
    shot(page, "login-error")
    page.fill("input[name=password]", PASSWORD)
    page.click("button:has-text('Sign in')")
    page.wait_for_url(f"{live_server.url}/")
    shot(page, "operations")

    page.click("a:has-text('TEST-OP')")
    page.wait_for_url("**/operations/TEST-OP")
    shot(page, "operation")
    page.click("a:has-text('Report a case')")
    page.wait_for_url("**/operations/TEST-OP/cases/new")

    page.fill("#f-reference", "WEB-0001")
    page.fill("#f-detected_on", "2025-05-14")
    page.fill("#f-office", "Roissy express hub")
    page.select_option("#f-transport_mode", "AIR")
    page.select_option("#f-channel", "EXPRESS")
    page.select_option("#f-detection_method", "RISK_PROFILE")
    page.check("#f-is_ecommerce")
    page.fill("#f-origin_country", "ZZ")  # a mistake, caught by the server
    page.fill("#f-destination_country", "FR")
    page.select_option("#f-platform_type", "MARKETPLACE")
    page.fill("#f-platform_name", "shop.example")
    page.fill("#f-notes", "pens declared as cosmetics")
    page.select_option("#f-s-0-commodity_code", "MED-WEIGHT")
    page.fill("#f-s-0-brand", "Brand X")
    page.fill("#f-s-0-pieces", "120")
    page.fill("#f-s-0-weight_kg", "3.25")
    page.fill("#f-s-0-value_amount", "9000")
    page.fill("#f-s-0-currency", "EUR")
    page.select_option("#f-s-0-nature", "FALSIFIED")
    assert page.locator("table.lines tbody tr").count() == 3
    page.click("#add-line")  # htmx: one more line, nothing typed is lost
    page.wait_for_selector("#line-3")
    assert page.locator("table.lines tbody tr").count() == 4
    assert page.input_value("#f-s-0-pieces") == "120"
    assert page.input_value("#f-reference") == "WEB-0001"
    page.select_option("#f-s-1-commodity_code", "IPR-FOOT")
    page.fill("#f-s-1-brand", "Runfast")
    page.fill("#f-s-1-pieces", "12")
    shot(page, "form-filled")
    page.click("button:has-text('Submit case')")
    page.wait_for_selector("#form-errors")
    assert "Origin country" in page.inner_text("#form-errors")
    assert "is not a country code" in page.inner_text("#e-origin_country")
    assert page.input_value("#f-s-1-brand") == "Runfast"  # kept
    shot(page, "form-errors")
    page.fill("#f-origin_country", "CN")
    page.click("button:has-text('Submit case')")
    page.wait_for_url(re.compile(r"/cases/\d+$"))
    case_url = page.url
    assert page.inner_text("#status") == "submitted"
    assert page.locator("#seizures tbody tr").count() == 2
    assert "Runfast" in page.inner_text("#seizures")
    shot(page, "case-reported")

    page.click(".crumbs a:has-text('Cases')")
    page.wait_for_url("**/operations/TEST-OP/cases")
    assert page.locator("#cases tbody tr").count() == 2
    assert page.locator("#cases a:has-text('WEB-0001')").count() == 1
    shot(page, "cases")
    page.select_option("select[name=channel]", "EXPRESS")
    page.fill("input[name=q]", "runfast")
    page.click("form.filters button:has-text('Filter')")
    page.wait_for_url(re.compile(r"channel=EXPRESS"))
    assert "q=runfast" in page.url  # the filters live in the URL: a list can be bookmarked and shared
    assert page.locator("#cases tbody tr").count() == 1
    assert page.locator("#cases a:has-text('WEB-0001')").count() == 1
    assert page.input_value("input[name=q]") == "runfast"
    shot(page, "cases-filtered")
    page.fill("input[name=q]", "no-such-brand")
    page.click("form.filters button:has-text('Filter')")
    page.wait_for_selector("#empty")
    shot(page, "cases-empty")
    page.goto("/operations/TEST-OP/cases?channel=EXPRESS")
    page.click("#cases a:has-text('WEB-0001')")
    page.wait_for_url(case_url)

    page.click("a:has-text('Correct')")
    page.wait_for_url(case_url + "/correct")
    assert page.input_value("#f-s-0-pieces") == "120"
    page.fill("#f-s-0-pieces", "150")
    page.fill("#f-reason", "recount at the office")
    shot(page, "correct")
    page.click("button:has-text('Save correction')")
    page.wait_for_url(case_url)
    assert "version 2" in page.inner_text("main")
    assert page.locator("#history tbody tr").count() == 2
    assert "recount at the office" in page.inner_text("#history")
    assert "150" in page.inner_text("#seizures")
    assert page.locator("button:has-text('Validate')").count() == 0  # an officer does not validate
    shot(page, "case-corrected")
    sign_out(page)

    sign_in(page, world["fr_ncp"].email)
    page.goto(case_url)
    assert "waits for your validation" in page.inner_text("main")
    page.click("button:has-text('Validate')")
    page.wait_for_selector("#status.validated")
    assert page.inner_text("#status") == "validated"
    assert page.locator("#history tbody tr").count() == 3
    shot(page, "case-validated")
    assert_clean(watch, live_server.url, 401, 422)  # the wrong password, the form with a mistake


def _csv(rows: list[dict[str, str]]) -> bytes:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=COLUMNS, lineterminator="\n")
    w.writeheader()
    w.writerows(rows)
    return buf.getvalue().encode()


def _row(ref: str, **kw: str) -> dict[str, str]:
    return {
        "case_reference": ref,
        "detected_on": "2025-05-15",
        "transport_mode": "AIR",
        "is_ecommerce": "yes",
        "channel": "POSTAL",
        "origin_country": "CN",
        "destination_country": "FR",
        "detection_method": "XRAY",
        "commodity_code": "IPR-CLOTH",
        "brand": "Brand X",
        "pieces": "10",
    } | kw


def test_import_a_file_in_the_browser(browser_page, live_server, world, screenshot_dir):
    page, watch = browser_page
    shot = Shots(screenshot_dir, "import")
    sign_in(page, world["fr_officer"].email)
    page.goto("/operations/TEST-OP/import")
    shot(page, "page")
    bad = _csv([_row("IMP-1"), _row("IMP-2", origin_country="ZZ"), _row("IMP-3", pieces="many")])
    page.set_input_files("input[name=file]", {"name": "bad.csv", "mimeType": "text/csv", "buffer": bad})
    page.click("button:has-text('Import')")
    page.wait_for_selector("#import-errors")
    rows = page.locator("#import-error-rows tbody tr")
    assert rows.count() == 2
    assert "origin_country" in rows.nth(0).inner_text() and "pieces" in rows.nth(1).inner_text()
    assert "nothing was imported" in page.inner_text("#import-errors")
    shot(page, "errors")
    good = _csv([_row("IMP-1"), _row("IMP-1", commodity_code="IPR-FOOT", pieces="4"), _row("IMP-2")])
    page.set_input_files("input[name=file]", {"name": "good.csv", "mimeType": "text/csv", "buffer": good})
    page.click("button:has-text('Import')")
    page.wait_for_selector("#import-result")
    assert "2 new cases, 3 seizures" in page.inner_text("#import-result")
    shot(page, "imported")
    page.click("#import-result a:has-text('See the cases')")
    page.wait_for_url("**/operations/TEST-OP/cases")
    assert page.locator("#cases tbody tr").count() == 2
    shot(page, "cases")
    assert_clean(watch, live_server.url, 422)  # the file with mistakes


def test_a_large_upload_shows_its_progress_then_the_import(browser_page, live_server, world, screenshot_dir):
    """On a slow link (upload throttled to 256 kB/s) the page says how much of the file has gone, then that
    the server is checking and importing, then shows the result in place."""
    page, watch = browser_page
    sign_in(page, world["fr_officer"].email)
    page.goto("/operations/TEST-OP/import")
    page.evaluate(
        "window.__upload = []; document.addEventListener('stopnet:upload', e => window.__upload.push(e.detail))"
    )
    cdp = page.context.new_cdp_session(page)
    cdp.send("Network.enable")
    cdp.send(
        "Network.emulateNetworkConditions",
        {"offline": False, "latency": 20, "downloadThroughput": -1, "uploadThroughput": 256 * 1024},
    )
    rows = [_row(f"BIG-{i:05d}", notes="x" * 200) for i in range(2500)]
    big = _csv(rows)
    assert len(big) > 600_000
    page.set_input_files("input[name=file]", {"name": "big.csv", "mimeType": "text/csv", "buffer": big})
    page.click("button:has-text('Import')")
    page.wait_for_selector(".upload-status:has-text('Sending the file:')")
    Shots(screenshot_dir, "import")(page, "uploading")
    page.wait_for_selector("#import-result", timeout=120_000)
    assert "2500 new cases" in page.inner_text("#import-result").replace(",", "")
    events = page.evaluate("window.__upload")
    uploads = [e for e in events if e["phase"] == "upload" and e["total"]]
    assert any(0 < e["loaded"] < e["total"] for e in uploads), events[:5]  # seen part-way
    assert uploads[-1]["loaded"] == uploads[-1]["total"] >= len(big)
    assert [e["phase"] for e in events][-1] == "done" and any(e["phase"] == "server" for e in events)
    assert page.url.endswith("/operations/TEST-OP/import")
    cdp.detach()
    assert watch.page_errors == []
