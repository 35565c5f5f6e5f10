"""The rights-holder pages over real HTTP, filled in as a browser would (CSRF tokens, form defaults)."""

from __future__ import annotations

import datetime as dt

from tests.pages import HTML, read_form

from .conftest import report_case
from .test_guides import PNG


def post_form(client, page_url, action, changes, files=None):  # type: ignore[no-untyped-def]
    page = client.get(page_url, headers=HTML)
    assert page.status_code == 200, page.text
    form = read_form(page.text, action)
    data = {**form.values, **changes}
    return client.post(action, data=data, files=files, headers=HTML, follow_redirects=False)


def test_the_whole_flow_through_the_pages(client, world, clock, signed_in):
    # the holder registers a brand
    c = signed_in(world["rights_holder"])
    r = post_form(
        c,
        "/rights/brands/new",
        "/rights/brands/new",
        {
            "name": "Brand X",
            "aliases": "BrandX\nBrand-X",
            "hs_codes": "300490 9018",
            "product_lines": "weight-loss pens",
            "tm-0-mark": "BRAND X",
            "tm-0-registration_number": "018000001",
            "tm-0-territory": "eu",
            "tm-0-office": "EUIPO",
            "rep-0-name": "Ana Counsel",
        },
    )
    assert r.status_code == 303, r.text
    brand_url = r.headers["location"]
    brand_id = int(brand_url.rsplit("/", 1)[1])
    # an invalid form comes back with the errors and what was typed
    bad = post_form(c, "/rights/brands/new", "/rights/brands/new", {"name": "Brand Y", "tm-0-mark": "Y"})
    assert bad.status_code == 422 and 'id="form-errors"' in bad.text and 'value="Brand Y"' in bad.text
    # a contact point, and a draft guide with a photo
    r = post_form(
        c,
        brand_url,
        f"/rights/brands/{brand_id}/contacts",
        {"name": "Brand X France", "territory": "FR", "email": "fr@bx.test"},
    )
    assert r.status_code == 303
    r = post_form(
        c,
        f"/rights/guides/new?brand_id={brand_id}",
        "/rights/guides/new",
        {
            "title": "Brand X pens: genuine or fake",
            "fake_indicators": "Printed batch numbers",
            "products": "weight-loss pen",
            "hs_codes": "300490",
        },
    )
    assert r.status_code == 303, r.text
    guide_url = r.headers["location"]
    guide_id = int(guide_url.rsplit("/", 1)[1])
    page = c.get(guide_url, headers=HTML)
    assert 'id="draft-notice"' in page.text
    form = read_form(page.text, f"/rights/guides/{guide_id}/attachments")
    r = c.post(
        f"/rights/guides/{guide_id}/attachments",
        data=form.values,
        files=[("files", ("cap.png", PNG, "image/png"))],
        headers=HTML,
        follow_redirects=False,
    )
    assert r.status_code == 303
    assert "cap.png" in c.get(guide_url, headers=HTML).text
    # publishing waits for the brand's approval
    r = post_form(c, guide_url, f"/rights/guides/{guide_id}/publish", {})
    assert r.status_code == 409

    # the coordinating unit approves the brand on its page
    c = signed_in(world["coordinator"])
    assert "Brand X" in c.get("/rights", headers=HTML).text  # waiting for approval
    r = post_form(c, brand_url, f"/rights/brands/{brand_id}/decision", {"decision": "approved", "note": "ok"})
    assert r.status_code == 303
    assert c.get(f"{brand_url}?format=json").json()["status"] == "approved"

    c = signed_in(world["rights_holder"])
    assert post_form(c, guide_url, f"/rights/guides/{guide_id}/publish", {}).status_code == 303
    assert c.get(f"{guide_url}?format=json").json()["status"] == "published"

    # an officer goes from the case to the guide and asks for a verification
    case = report_case(client, world["fr_officer"])
    c = signed_in(world["fr_officer"])
    bridge = c.get(f"/rights/cases/{case['id']}", headers=HTML)
    assert bridge.status_code == 200
    assert f"/rights/guides/{guide_id}?case_id={case['id']}" in bridge.text
    twin = c.get(f"/rights/cases/{case['id']}?format=json").json()
    assert [ln["brands"][0]["name"] if ln["brands"] else None for ln in twin["lines"]] == ["Brand X", None]
    assert twin["lines"][0]["contacts"][0]["territory"] == "FR"
    line = case["seizures"][0]["id"]
    guide_page = c.get(f"/rights/guides/{guide_id}?case_id={case['id']}&seizure_id={line}", headers=HTML)
    assert 'id="ask-verification"' in guide_page.text and "Printed batch numbers" in guide_page.text
    new_url = f"/rights/requests/new?brand_id={brand_id}&case_id={case['id']}&seizure_id={line}"
    form_page = c.get(new_url, headers=HTML)
    assert form_page.status_code == 200
    assert "Jean Dupont" not in form_page.text and "pens declared as cosmetics" not in form_page.text
    prefill = read_form(form_page.text, "/rights/requests/new").values
    assert prefill["product"] == "Brand X semaglutide pens" and prefill["hs_code"] == "300490"
    assert prefill["origin_country"] == "CN" and prefill["pieces"] == "120"
    # the consignee's name typed in is refused, and what was typed is kept
    bad = c.post(
        "/rights/requests/new",
        data={**prefill, "details": "for Jean Dupont"},
        headers=HTML,
        follow_redirects=False,
    )
    assert bad.status_code == 422 and "consignee" in bad.text
    r = c.post(
        "/rights/requests/new",
        data={**prefill, "details": "no hologram on the cap"},
        files=[("files", ("pen.png", PNG, "image/png"))],
        headers=HTML,
        follow_redirects=False,
    )
    assert r.status_code == 303, r.text
    req_url = r.headers["location"]
    req = c.get(f"{req_url}?format=json").json()
    assert req["due_on"] == "2025-05-30" and len(req["attachments"]) == 1
    assert "2025-05-30" in c.get(req_url, headers=HTML).text

    # the holder answers late; the answer shows on the request and on the case
    clock.now = dt.datetime(2025, 6, 3, 9, 0, tzinfo=dt.UTC)
    c = signed_in(world["rights_holder"])
    page = c.get(req_url, headers=HTML)
    assert 'id="overdue"' in page.text and "no hologram on the cap" in page.text
    assert "Jean Dupont" not in page.text
    r = post_form(c, req_url, f"{req_url}/answer", {"answer": "counterfeit", "note": "fake cap"})
    assert r.status_code == 303
    c = signed_in(world["fr_officer"])
    assert 'id="answer"' in c.get(req_url, headers=HTML).text
    twin = c.get(f"/rights/cases/{case['id']}?format=json").json()
    assert [(v["answer"], v["answer_note"]) for v in twin["verifications"]] == [("counterfeit", "fake cap")]

    # the coordinator's figures and deadline setting
    c = signed_in(world["coordinator"])
    out = c.get("/rights/outreach?format=json").json()
    assert out["totals"]["requests_answered"] == 1 and out["totals"]["seizures"] == 1
    r = post_form(
        c, "/rights/outreach", "/rights/operations/TEST-OP/settings", {"response_working_days": "5"}
    )
    assert r.status_code == 303
    assert c.get("/api/v1/rights/operations/TEST-OP/settings").json()["response_working_days"] == 5


def test_forms_need_their_csrf_token(client, world, clock, signed_in):
    c = signed_in(world["rights_holder"])
    r = c.post("/rights/brands/new", data={"name": "X"}, headers=HTML, follow_redirects=False)
    assert r.status_code == 403


def test_every_page_has_a_json_twin(client, world, clock, signed_in, brand_x):
    c = signed_in(world["fr_officer"])
    for url, key in (
        ("/rights", "open_requests"),
        ("/rights/brands", None),
        ("/rights/guides", "items"),
        ("/rights/requests", "items"),
        (f"/rights/brands/{brand_x.brand['id']}", "trademarks"),
        (f"/rights/guides/{brand_x.guide['id']}", "fake_indicators"),
        (f"/rights/cases/{brand_x.case['id']}", "lines"),
        ("/rights/outreach", "rows"),
        (f"/rights/requests/new?brand_id={brand_x.brand['id']}", "form"),
    ):
        html = c.get(url, headers=HTML)
        assert html.status_code == 200 and "text/html" in html.headers["content-type"], url
        assert "<script>" not in html.text, url  # the CSP forbids inline scripts
        js = c.get(url, headers={"Accept": "application/json"})
        assert js.status_code == 200 and js.headers["content-type"] == "application/json", url
        if key:
            assert key in js.json(), url
    bad = c.get("/rights/guides?hs=12ab&format=json")
    assert bad.status_code == 422
    assert c.get("/rights/guides?hs=12ab", headers=HTML).status_code == 422
