"""A refused form in a browser comes back as the form: the field, the reason, what was typed; never JSON.

Each form is sent the way a browser sends it (an HTML ``Accept`` header, the session's CSRF token) with
a value the service refuses: the daily report's date (blank, not a date, outside the operation), a
comparison with an operation one does not take part in, an inspection result linked to another
administration's case, an API token whose role does not fit the organisation, a risk-proposal window
that is too long. One browser test does the first in Chromium.
"""

from __future__ import annotations

import html
import re
from typing import Any

import polars as pl
import pytest

from stopnet.risk.simulation import generate_consignments
from tests.conftest import PASSWORD, case_payload
from tests.pages import HTML, csrf_from

OP = "/operations/TEST-OP"
TARGETING = "/api/v1/targeting"


def assert_form_page(r: Any, action: str, message: str, typed: str, status: int = 422) -> str:
    """An HTML page (not JSON) holding the form, the message and the value as typed."""
    assert r.status_code == status, r.text[:500]
    assert r.headers["content-type"].startswith("text/html"), r.headers["content-type"]
    text = html.unescape(r.text)
    assert f'action="{action}"' in text, "the form is not on the page"
    assert message in text, text[text.find("error") : text.find("error") + 600]
    assert f'value="{typed}"' in text, f"{typed!r} was not kept"
    assert not text.lstrip().startswith("{")
    return text


@pytest.mark.parametrize(
    ("typed", "message"),
    [
        ("", "Report date: required; choose a day from 2025-05-12 to 2025-05-30"),
        ("2025-07-01", "Report date: 2025-07-01 is outside the operation; choose a day from 2025-05-12"),
        ("21/13/2025", "Report date: '21/13/2025' is not a date; write YYYY-MM-DD"),
    ],
)
def test_the_daily_report_form_returns_to_the_operation_page(client, world, signed_in, typed, message):
    signed_in(world["fr_officer"])
    r = client.get(f"{OP}/reports/daily", params={"date": typed}, headers=HTML)
    assert_form_page(r, f"{OP}/reports/daily", message, typed)
    assert 'id="e-date"' in r.text and 'aria-invalid="true"' in r.text
    # the JSON twin keeps its JSON answer
    twin = client.get(f"{OP}/reports/daily", params={"date": typed, "format": "json"})
    assert twin.status_code == 422 and twin.json()["errors"][0]["field"] == "date"


def test_a_comparison_with_an_operation_one_does_not_take_part_in(client, world, signed_in):
    signed_in(world["fr_officer"])
    r = client.get(f"{OP}/reports/final", params={"compare": "NO-SUCH-OP"}, headers=HTML)
    text = assert_form_page(
        r,
        f"{OP}/reports/final",
        "Compare with: 'NO-SUCH-OP' is not an operation you take part in",
        "NO-SUCH-OP",
    )
    assert re.search(r'<option value="NO-SUCH-OP" selected>', text)
    itself = client.get(f"{OP}/reports/final", params={"compare": "TEST-OP"}, headers=HTML)
    assert_form_page(itself, f"{OP}/reports/final", "an operation is not compared with itself", "TEST-OP")


def _selection(client, officer) -> tuple[str, str]:  # type: ignore[no-untyped-def]
    """Consignments of 20 May stored and selected for ``officer``; a selected consignment's id."""
    frame = generate_consignments(300, start="2025-05-19", days=3, seed=9, labels="none")
    recs = [
        {k: (v.isoformat() if hasattr(v, "isoformat") else v) for k, v in r.items()}
        for r in frame.iter_rows(named=True)
    ]
    r = client.post(
        f"{TARGETING}/consignments",
        json={"operation": "TEST-OP", "consignments": recs},
        headers=officer.headers,
    )
    assert r.status_code == 201, r.text
    assert frame.filter(pl.col("arrival_date").cast(pl.String) == "2025-05-20").height > 0
    ops = f"{TARGETING}/operations/TEST-OP"
    sel = client.post(
        f"{ops}/selections", json={"day": "2025-05-20", "capacity": "4"}, headers=officer.headers
    )
    assert sel.status_code == 201, sel.text
    red = [row["consignment_id"] for row in sel.json()["rows"] if row["lane"] == "RED"]
    return red[0], "2025-05-20"


def test_an_inspection_linked_to_another_administrations_case(client, world, signed_in):
    officer = world["fr_officer"]
    consignment, day = _selection(client, officer)
    other = client.post(
        "/api/v1/operations/TEST-OP/cases", json=case_payload("DE-1"), headers=world["de_officer"].headers
    )
    assert other.status_code == 201, other.text
    de_case = str(other.json()["id"])
    signed_in(officer)
    page = client.get(f"{OP}/targeting/selection", params={"day": day}, headers=HTML)
    action = f"{OP}/targeting/consignments/{consignment}/inspection"
    assert f'action="{action}"' in page.text
    r = client.post(
        action,
        data={
            "csrf_token": csrf_from(page.text),
            "outcome": "seizure",
            "case_id": de_case,
            "back": f"{OP}/targeting/selection?day={day}",
        },
        headers=HTML,
        follow_redirects=False,
    )
    text = assert_form_page(
        r, action, f"Case id: {de_case} is not a case of FR-CUS in TEST-OP; give the id of the case", de_case
    )
    assert re.search(r'<option value="seizure" selected>', text)
    assert 'id="e-case_id"' in text
    bad = client.post(
        action,
        data={
            "csrf_token": csrf_from(page.text),
            "outcome": "seizure",
            "case_id": "twelve",
            "back": f"{OP}/targeting/selection?day={day}",
        },
        headers=HTML,
    )
    assert_form_page(bad, action, "Case id: 'twelve' is not a whole number", "twelve")
    done = {
        "csrf_token": csrf_from(page.text),
        "outcome": "nothing_found",
        "back": f"{OP}/targeting/selection?day={day}",
    }
    assert client.post(action, data=done, headers=HTML, follow_redirects=False).status_code == 303
    twice = client.post(action, data=done, headers=HTML, follow_redirects=False)
    assert twice.status_code == 422 and twice.headers["content-type"].startswith("text/html")
    assert f"Result: the result of consignment {consignment} is already recorded" in twice.text


def test_a_token_whose_role_does_not_fit_the_organisation(client, world, signed_in):
    signed_in(world["admin"])
    page = client.get("/admin/tokens", headers=HTML)
    r = client.post(
        "/admin/tokens",
        data={
            "csrf_token": csrf_from(page.text),
            "org": "BRAND-X",
            "name": "brand portal feed",
            "role": "officer",
            "scopes": "cases:read",
        },
        headers=HTML,
    )
    text = assert_form_page(
        r,
        "/admin/tokens",
        "Role: officer does not fit a rights holder organisation; choose rights holder",
        "brand portal feed",
    )
    assert 'id="role-error"' in text or 'class="error"' in text
    assert re.search(r'<option value="BRAND-X" selected>', text)
    # the API keeps its 403 (a refusal of the role, not an unreadable request)
    api = client.post(
        "/api/v1/tokens",
        json={"org": "BRAND-X", "name": "x", "role": "officer", "scopes": ["cases:read"]},
        headers=world["admin"].headers,
    )
    assert api.status_code == 403 and api.json()["error"] == "forbidden"


@pytest.mark.parametrize(
    ("field", "typed", "message"),
    [
        ("recent_days", "500", "Recent days: '500' is too large; at most 120"),
        ("baseline_days", "a year", "Baseline days: 'a year' is not a whole number"),
    ],
)
def test_a_risk_proposal_window_that_is_too_long(client, world, signed_in, field, typed, message):
    signed_in(world["fr_officer"])
    page = client.get(f"{OP}/targeting/proposals", headers=HTML)
    data = {"csrf_token": csrf_from(page.text), "recent_days": "14", "baseline_days": "56", field: typed}
    r = client.post(f"{OP}/targeting/proposals", data=data, headers=HTML)
    assert_form_page(r, f"{OP}/targeting/proposals", message, typed)


def test_a_request_a_page_cannot_read_is_an_html_page_in_words(client, world, signed_in):
    """FastAPI's own refusal of a form field (here too long for the token form) in a browser."""
    signed_in(world["admin"])
    page = client.get("/admin/tokens", headers=HTML)
    r = client.post(
        "/admin/tokens",
        data={"csrf_token": csrf_from(page.text), "org": "X" * 40, "name": "n", "role": "officer"},
        headers=HTML | {"referer": "http://testserver/admin/tokens"},
    )
    assert r.status_code == 422 and r.headers["content-type"].startswith("text/html")
    assert "Org: 40 characters; at most 32" in r.text
    assert 'href="/admin/tokens"' in r.text


@pytest.mark.browser
def test_refused_forms_in_a_browser(browser_page, live_server, world):
    """In Chromium: the daily report's empty date and a too long proposal window come back as the form
    with the reason and what was typed (the date picker itself stops a date outside the operation)."""
    page, watch = browser_page
    page.goto("/login")
    page.fill("input[name=email]", world["fr_officer"].email)
    page.fill("input[name=password]", PASSWORD)
    page.click("button:has-text('Sign in')")
    page.wait_for_selector("header .who")
    page.goto(OP)
    page.click("#reports-exports button:has-text('Open')")
    page.wait_for_selector("#e-date")
    assert "Report date: required; choose a day from 2025-05-12" in page.inner_text("#e-date")
    assert page.locator("#reports-exports form").count() == 1
    page.fill("#f-date", "2025-05-14")
    page.click("#reports-exports button:has-text('Open')")
    page.wait_for_url(re.compile(r"/reports/daily\?date=2025-05-14$"))
    page.goto(f"{OP}/targeting/proposals")
    page.fill("#f-recent_days", "500")
    page.click("button:has-text('Look for rising routes')")
    page.wait_for_selector("#form-errors")
    assert "Recent days: '500' is too large; at most 120" in page.inner_text("#form-errors")
    assert page.input_value("#f-recent_days") == "500"
    assert page.input_value("#f-baseline_days") == "56"
    assert watch.page_errors == []
    assert watch.foreign_requests(live_server.url) == []
