"""In a real headless Chromium (the live server and browser fixtures of tests/web): an officer goes from
a seizure of a case to the brand's identification guide and asks the rights holder to verify the goods."""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.conftest import PASSWORD

from .test_guides import PNG

pytestmark = pytest.mark.browser


def test_officer_from_seizure_to_guide_to_verification_request(
    browser_page, live_server, world, client, brand_x, screenshot_dir, tmp_path
):
    page, watch = browser_page
    n = 0

    def shot(name: str) -> None:
        nonlocal n
        n += 1
        page.screenshot(path=str(screenshot_dir / f"rights-{n:02d}-{name}.png"), full_page=True)

    holder = world["rights_holder"]
    r = client.post(
        f"/api/v1/rights/brands/{brand_x.brand['id']}/contacts",
        json={"territory": "FR", "name": "Brand X France", "email": "fr@brandx.test", "languages": "fr, en"},
        headers=holder.headers,
    )
    assert r.status_code == 201, r.text
    case_id = brand_x.case["id"]

    page.goto("/login")
    page.fill("input[name=email]", world["fr_officer"].email)
    page.fill("input[name=password]", PASSWORD)
    page.click("button:has-text('Sign in')")
    page.wait_for_selector("header .who")

    # the case page lists the seizure of Brand X
    page.goto(f"/cases/{case_id}")
    assert "Brand X" in page.inner_text("#seizures")
    shot("case")
    link: Any = page.locator(f"a[href='/rights/cases/{case_id}']")
    if link.count():  # the case page links to its brands once the lead wires it (see docs/rights-holders.md)
        link.first.click()
    else:
        page.goto(f"/rights/cases/{case_id}")
    page.wait_for_selector("#line-1")
    assert "Brand X" in page.inner_text("#line-1") and "Brand X France" in page.inner_text("#line-1")
    assert "No approved brand" in page.inner_text("#line-2")  # Runfast is not registered
    shot("case-brands")

    # the brand's guide, with the case in context
    page.click(f"#line-1 a:has-text('{brand_x.guide['title']}')")
    page.wait_for_selector("#guide-body")
    assert "Printed batch numbers" in page.inner_text("#fake-indicators")
    shot("guide")
    page.click("#ask-verification")
    page.wait_for_selector("#request-form")
    assert page.input_value("input[name=product]") == "Brand X semaglutide pens"
    assert page.input_value("input[name=hs_code]") == "300490"
    assert "Jean Dupont" not in page.content()
    page.fill("textarea[name=details]", "Cap without hologram; batch number printed, not etched.")
    photo = tmp_path / "pen-cap.png"
    photo.write_bytes(PNG)
    page.set_input_files("input[name=files]", str(photo))
    shot("request-form")
    page.click("#send-request")
    page.wait_for_url(re.compile(r"/rights/requests/\d+$"))
    assert page.inner_text("#request-status") == "open"
    assert "2025-05-30" in page.inner_text("#due-on")  # Friday + 10 working days
    assert "pen-cap.png" in page.inner_text("#attachments")
    img = page.locator("#attachments img")
    assert img.evaluate("i => i.complete && i.naturalWidth") == 1  # the photo loads (same origin, CSP ok)
    shot("request")

    assert watch.page_errors == [], watch.page_errors
    assert watch.console_errors == [], watch.console_errors
    assert watch.foreign_requests(live_server.url) == []
