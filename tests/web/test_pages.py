"""The HTML pages over HTTP (TestClient) against a real database built from the migrations.

Sign-in and sign-out, the sign-in wall, the JSON twin of every page, the case form (CSRF, errors,
correction, submit and validate), the import page, security headers and what a 500 answer shows.
"""

from __future__ import annotations

import csv
import io
import re
from decimal import Decimal
from urllib.parse import parse_qs, urljoin, urlparse, urlsplit

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from stopnet.db.models import Case, CaseStatus, CaseVersion, ImportBatch, Seizure, User
from stopnet.reporting.importer import COLUMNS
from tests.conftest import PASSWORD, case_payload
from tests.pages import HTML, csrf_from, read_form, sign_in

API = "/api/v1/operations/TEST-OP/cases"
NEW = "/operations/TEST-OP/cases/new"
CASES = "/operations/TEST-OP/cases"
IMPORT = "/operations/TEST-OP/import"


def count(db, model) -> int:  # type: ignore[no-untyped-def]
    db.expire_all()
    return db.scalar(select(func.count()).select_from(model))


def api_case(client, actor, **kw) -> dict:  # type: ignore[no-untyped-def, type-arg]
    r = client.post(API, json=case_payload(**kw), headers=actor.headers)
    assert r.status_code == 201, r.text
    return r.json()


def fill_new_case(html: str, reference: str = "WEB-1") -> dict[str, str]:
    """The case form as an officer fills it in: the case and two seizure lines (the third left empty)."""
    form = read_form(html, NEW)
    typed = {
        "reference": reference,
        "detected_on": "2025-05-14",
        "office": "Roissy express hub",
        "transport_mode": "AIR",
        "channel": "EXPRESS",
        "is_ecommerce": "on",
        "origin_country": "CN",
        "departure_country": "HK",
        "transit_countries": "AE, NL",
        "destination_country": "FR",
        "detection_method": "RISK_PROFILE",
        "concealment": "MISDECLARED",
        "platform_type": "MARKETPLACE",
        "platform_name": "shop.example",
        "consignee_name": "Jean Dupont",
        "notes": "pens declared as cosmetics",
        "s-0-commodity_code": "MED-WEIGHT",
        "s-0-description": "semaglutide pens",
        "s-0-brand": "Brand X",
        "s-0-rights_holder": "Brand X Holdings",
        "s-0-hs_code": "300490",
        "s-0-pieces": "120",
        "s-0-weight_kg": "3.25",
        "s-0-value_amount": "9000",
        "s-0-currency": "EUR",
        "s-0-nature": "FALSIFIED",
        "s-1-commodity_code": "IPR-FOOT",
        "s-1-brand": "Runfast",
        "s-1-pieces": "12",
        "s-1-weight_kg": "9.6",
    }
    unknown = set(typed) - form.names
    assert not unknown, f"the form has no field {sorted(unknown)}"
    assert "s-2-commodity_code" in form.names  # a spare line is offered
    return {**form.values, **typed, "action": "submit"}


# ------------------------------------------------------------------------------------------ sign-in


def test_sign_in_form_sets_a_login_csrf_cookie_and_signs_in(client, world):
    page = client.get("/login", headers=HTML)
    assert page.status_code == 200
    login_cookie = next(h for h in page.headers.get_list("set-cookie") if h.startswith("stopnet_login_csrf="))
    assert "httponly" in login_cookie.lower() and "samesite=strict" in login_cookie.lower()
    token = csrf_from(page.text)
    assert client.cookies.get("stopnet_login_csrf") == token
    r = client.post(
        "/login",
        data={"email": world["fr_officer"].email, "password": PASSWORD, "csrf_token": token, "next": CASES},
        headers=HTML,
        follow_redirects=False,
    )
    assert r.status_code == 303
    assert r.headers["location"] == CASES
    session = next(h for h in r.headers.get_list("set-cookie") if h.startswith("stopnet_session="))
    assert "httponly" in session.lower() and "samesite=lax" in session.lower()
    home = client.get("/", headers=HTML)
    assert home.status_code == 200
    assert world["fr_officer"].email in home.text
    assert "Sign out" in home.text


def test_sign_in_without_its_csrf_token_is_refused(client, world, db):
    data = {"email": world["fr_officer"].email, "password": PASSWORD, "csrf_token": "forged"}
    no_cookie = client.post("/login", data=data, headers=HTML, follow_redirects=False)
    assert no_cookie.status_code == 403
    assert "expired" in no_cookie.text
    assert "stopnet_session" not in client.cookies
    client.get("/login", headers=HTML)  # a real login cookie, but the form carries another token
    wrong = client.post("/login", data=data, headers=HTML, follow_redirects=False)
    assert wrong.status_code == 403
    assert "stopnet_session" not in client.cookies
    # the refusal hands out a fresh token: signing in again from that page works
    retry = client.post(
        "/login", data={**data, "csrf_token": csrf_from(wrong.text)}, headers=HTML, follow_redirects=False
    )
    assert retry.status_code == 303
    user = db.scalar(select(User).where(User.email == world["fr_officer"].email))
    assert user.failed_logins == 0  # a refused form is not a failed password


def test_wrong_password_answers_401_with_a_message(client, world):
    r = sign_in(client, world["fr_officer"], password="not the password")
    assert r.status_code == 401
    assert 'id="login-error"' in r.text
    assert "wrong e-mail or password" in r.text
    assert f'value="{world["fr_officer"].email}"' in r.text  # the e-mail is kept, the password is not
    assert "not the password" not in r.text
    assert "stopnet_session" not in client.cookies
    unknown = sign_in(client, "nobody@example.test")
    assert unknown.status_code == 401
    assert "wrong e-mail or password" in unknown.text  # same answer: accounts cannot be guessed
    assert client.get("/", headers=HTML, follow_redirects=False).status_code == 303


def test_five_failures_lock_the_account(client, world, db):
    officer = world["fr_officer"]
    for _ in range(5):
        assert sign_in(client, officer, password="guess").status_code == 401
    locked = sign_in(client, officer)  # the right password no longer opens it
    assert locked.status_code == 401
    assert "too many failed sign-ins" in locked.text
    assert "stopnet_session" not in client.cookies
    user = db.scalar(select(User).where(User.email == officer.email))
    assert user.failed_logins == 5 and user.locked_until is not None
    assert sign_in(client, world["fr_ncp"]).status_code == 303  # other accounts are not affected


@pytest.mark.parametrize(
    "target", ["https://evil.example/", "//evil.example/x", "/\\evil.example", "javascript:alert(1)"]
)
def test_sign_in_never_redirects_to_another_site(client, world, target):
    r = sign_in(client, world["fr_officer"], next=target)
    assert r.status_code == 303
    assert urlparse(urljoin("http://testserver/login", r.headers["location"])).netloc == "testserver"
    page = client.get(f"/login?next={target}", headers=HTML, follow_redirects=False)  # signed in already
    assert urlparse(urljoin("http://testserver/login", page.headers["location"])).netloc == "testserver"


def test_sign_out_needs_the_csrf_token(client, world, signed_in):
    signed_in(world["fr_officer"])
    home = client.get("/", headers=HTML)
    for token in ("", "0" * 64):
        r = client.post("/logout", data={"csrf_token": token}, headers=HTML, follow_redirects=False)
        assert r.status_code == 403
        assert client.get("/", headers=HTML, follow_redirects=False).status_code == 200  # still signed in
    old_cookie = client.cookies.get("stopnet_session")
    r = client.post(
        "/logout", data={"csrf_token": read_form(home.text, "/logout").values["csrf_token"]}, headers=HTML
    )
    assert r.status_code == 200 and r.url.path == "/login"
    assert client.get("/", headers=HTML, follow_redirects=False).status_code == 303
    # a copy of the old cookie is worthless too: signing out ends the session on the server side
    client.cookies.set("stopnet_session", old_cookie)
    assert client.get("/", headers=HTML, follow_redirects=False).status_code == 303


# ------------------------------------------------------------------------------------------ sign-in wall

PAGES = [
    "/",
    "/operations/TEST-OP",
    CASES,
    CASES + "?status=submitted",
    NEW,
    IMPORT,
    "/cases/1",
    "/cases/1/correct",
]


@pytest.mark.parametrize("path", PAGES)
def test_every_page_requires_sign_in(client, world, path):
    r = client.get(path, headers=HTML, follow_redirects=False)
    assert r.status_code == 303
    assert r.headers["location"].startswith("/login?next=/")
    # the page asked for, query included, comes back after signing in
    assert parse_qs(urlsplit(r.headers["location"]).query)["next"] == [path]
    as_json = client.get(path, headers={"Accept": "application/json"})
    assert as_json.status_code == 401
    assert as_json.json()["error"] == "unauthenticated"


def test_forms_posted_without_sign_in_store_nothing(client, world, db):
    posts = {
        NEW: {"reference": "X-1", "detected_on": "2025-05-14", "csrf_token": "x"},
        "/cases/1/correct": {"reason": "nope", "csrf_token": "x"},
        "/cases/1/submit": {"expected_version": "1", "csrf_token": "x"},
        "/cases/1/validate": {"expected_version": "1", "csrf_token": "x"},
        "/logout": {"csrf_token": "x"},
    }
    for path, data in posts.items():
        r = client.post(path, data=data, headers=HTML, follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"].startswith("/login"), path
    r = client.post(IMPORT, files={"file": ("a.csv", b"x", "text/csv")}, data={"csrf_token": "x"})
    assert r.status_code == 401
    assert count(db, Case) == 0


def test_pages_follow_the_roles(client, world, signed_in):
    signed_in(world["rights_holder"])
    op = client.get("/operations/TEST-OP", headers=HTML)
    assert op.status_code == 200
    assert NEW not in op.text and IMPORT not in op.text  # no reporting links for who may not report
    assert client.get(NEW, headers=HTML).status_code == 403
    assert client.get(IMPORT, headers=HTML).status_code == 403
    signed_in(world["xx_officer"])  # does not take part: the operation does not exist for it
    assert client.get("/operations/TEST-OP", headers=HTML).status_code == 404
    assert client.get(CASES, headers=HTML).status_code == 404
    signed_in(world["fr_officer"])
    op = client.get("/operations/TEST-OP", headers=HTML)
    assert NEW in op.text and IMPORT in op.text


# ------------------------------------------------------------------------------------------ JSON twins


def test_every_page_has_a_json_twin_equal_to_the_api(client, world, signed_in):
    fr, de = world["fr_officer"], world["de_officer"]
    first = api_case(client, fr, reference="FR-1")
    api_case(client, fr, reference="FR-2", channel="POSTAL", detected_on="2025-05-20")
    api_case(client, de, reference="DE-1", seizures=[{"commodity_code": "IPR-CLOTH", "pieces": 40}])
    signed_in(fr)
    twins = {
        "/": "/api/v1/operations",
        "/operations/TEST-OP": "/api/v1/operations/TEST-OP",
        CASES: API,
        CASES + "?channel=POSTAL": API + "?channel=POSTAL",
        CASES + "?commodity_group=ipr&page_size=1&page=2": API + "?commodity_group=ipr&page_size=1&page=2",
        CASES + "?q=runfast&date_from=2025-05-12&date_to=2025-05-15": API
        + "?q=runfast&date_from=2025-05-12&date_to=2025-05-15",
        f"/cases/{first['id']}": f"/api/v1/cases/{first['id']}",
        f"/cases/{first['id']}/correct": f"/api/v1/cases/{first['id']}",
    }
    for page, api in twins.items():
        want = client.get(api, headers=fr.headers)
        assert want.status_code == 200, api
        sep = "&" if "?" in page else "?"
        as_param = client.get(page + sep + "format=json", headers=HTML)
        assert as_param.status_code == 200, page
        assert as_param.headers["content-type"].startswith("application/json"), page
        assert as_param.json() == want.json(), page
        as_accept = client.get(page, headers={"Accept": "application/json"})
        assert as_accept.json() == want.json(), page
        html = client.get(page, headers=HTML)
        assert html.headers["content-type"].startswith("text/html"), page
    listed = client.get(CASES + "?format=json").json()
    assert listed["total"] == 3
    html = client.get(CASES, headers=HTML).text
    for item in listed["items"]:
        assert f'href="/cases/{item["id"]}">{item["reference"]}</a>' in html
    assert "Jean Dupont" in client.get(f"/cases/{first['id']}", headers=HTML).text
    signed_in(de)  # personal data stays with the reporting administration, in the page and its twin
    assert client.get(f"/cases/{first['id']}?format=json").json()["consignee_name"] is None
    assert "Jean Dupont" not in client.get(f"/cases/{first['id']}", headers=HTML).text


def test_blank_filters_of_the_filter_form_mean_any(client, world, signed_in):
    api_case(client, world["fr_officer"], reference="FR-1")
    api_case(client, world["fr_officer"], reference="FR-2", channel="POSTAL")
    signed_in(world["fr_officer"])
    blank = "&".join(
        f"{k}=" for k in ("date_from", "date_to", "status", "region", "country", "commodity_group", "channel")
    )
    r = client.get(f"{CASES}?{blank}&is_ecommerce=&q=", headers=HTML)
    assert r.status_code == 200, r.text[:500]
    assert re.search(r'id="count-total">2</span> <span id="count-noun">cases<', r.text)
    one = client.get(f"{CASES}?{blank}&q=&channel=POSTAL&format=json")
    assert one.status_code == 200
    assert [c["reference"] for c in one.json()["items"]] == ["FR-2"]
    page = client.get(f"{CASES}?channel=POSTAL&status=submitted", headers=HTML).text
    assert '<option value="POSTAL" selected>' in page  # the form shows the filters in force
    assert '<option value="submitted" selected>' in page
    none = client.get(f"{CASES}?q=no-such-thing", headers=HTML)
    assert 'id="empty"' in none.text and "No case matches these filters" in none.text


def test_invalid_filters_are_named_not_a_crash(client, world, signed_in):
    signed_in(world["fr_officer"])
    r = client.get(f"{CASES}?date_from=yesterday&country=FRA", headers=HTML)
    assert r.status_code == 422
    assert r.headers["content-type"].startswith("text/html")
    assert 'id="filter-errors"' in r.text
    assert "date from" in r.text and "country" in r.text
    twin = client.get(f"{CASES}?date_from=yesterday&format=json")
    assert twin.status_code == 422
    assert [e["field"] for e in twin.json()["errors"]] == ["date_from"]
    assert client.get(f"{CASES}?status=bogus&format=json").json()["errors"][0]["field"] == "status"


# ------------------------------------------------------------------------------------------ case form


def test_case_form_reports_a_case(client, world, signed_in, db):
    signed_in(world["fr_officer"])
    page = client.get(NEW, headers=HTML)
    assert page.status_code == 200
    assert 'list="country-codes"' in page.text and '<option value="CN">China</option>' in page.text
    data = fill_new_case(page.text)
    r = client.post(NEW, data=data, headers=HTML, follow_redirects=False)
    assert r.status_code == 303, r.text
    case_id = int(r.headers["location"].rsplit("/", 1)[1])
    shown = client.get(r.headers["location"], headers=HTML)
    assert shown.status_code == 200
    assert "WEB-1" in shown.text and "semaglutide pens" in shown.text and "Runfast" in shown.text
    case = client.get(f"/api/v1/cases/{case_id}", headers=world["fr_officer"].headers).json()
    assert case["status"] == "submitted" and case["version"] == 1
    assert case["is_ecommerce"] is True
    assert case["transit_countries"] == ["AE", "NL"]
    assert case["visibility"] == "participants"  # the operation's default, preselected in the form
    assert case["consignee_name"] == "Jean Dupont"
    assert [(s["commodity_code"], s["pieces"]) for s in case["seizures"]] == [
        ("MED-WEIGHT", 120),
        ("IPR-FOOT", 12),
    ]
    assert Decimal(case["seizures"][0]["value_amount"]) == 9000
    assert case["seizures"][0]["nature"] == "FALSIFIED"
    assert count(db, Seizure) == 2  # the empty third line is ignored
    draft = fill_new_case(client.get(NEW, headers=HTML).text, reference="WEB-2") | {"action": "draft"}
    r = client.post(NEW, data=draft, headers=HTML)
    assert r.status_code == 200 and "draft" in r.text
    assert db.scalar(select(Case.status).where(Case.reference == "WEB-2")) is CaseStatus.DRAFT


@pytest.mark.parametrize("token", [None, "", "forged", "other-session"])
def test_case_form_without_the_right_csrf_token_is_refused(client, world, signed_in, db, app, token):
    if token == "other-session":  # a valid token, but of another user's session
        with TestClient(app) as other:
            sign_in(other, world["fr_ncp"])
            token = csrf_from(other.get(NEW, headers=HTML).text)
    signed_in(world["fr_officer"])
    data = fill_new_case(client.get(NEW, headers=HTML).text)
    if token is None:
        data.pop("csrf_token")
    else:
        data["csrf_token"] = token
    r = client.post(NEW, data=data, headers=HTML, follow_redirects=False)
    assert r.status_code == 403
    assert "CSRF" in r.text
    assert count(db, Case) == 0 and count(db, Seizure) == 0


def test_other_forms_need_the_csrf_token_too(client, world, signed_in, db):
    case = api_case(client, world["fr_officer"], submit=False)
    signed_in(world["fr_officer"])
    for action in ("submit", "correct"):
        r = client.post(
            f"/cases/{case['id']}/{action}",
            data={"expected_version": "1", "reason": "because", "csrf_token": "forged"},
            headers=HTML,
        )
        assert r.status_code == 403, action
    r = client.post(IMPORT, files={"file": ("a.csv", b"x", "text/csv")}, data={"csrf_token": "forged"})
    assert r.status_code == 403
    assert db.scalar(select(Case.version)) == 1
    assert count(db, ImportBatch) == 0


def test_form_errors_name_the_field_and_keep_what_was_typed(client, world, signed_in, db):
    signed_in(world["fr_officer"])
    data = fill_new_case(client.get(NEW, headers=HTML).text)
    data.update({"origin_country": "ZZ", "s-0-pieces": "-3", "s-1-pieces": "", "s-1-weight_kg": ""})
    r = client.post(NEW, data=data, headers=HTML)
    assert r.status_code == 422
    assert 'id="form-errors"' in r.text and "Nothing was saved" in r.text
    summary = r.text[
        r.text.index('id="form-errors"') : r.text.index("</div>", r.text.index('id="form-errors"'))
    ]
    assert '<a href="#f-origin_country">Origin country: &#39;ZZ&#39; is not a country code' in summary
    assert '<a href="#f-s-0-pieces">Seizure line 1, Pieces: &#39;-3&#39; is below 0' in summary
    assert '<a href="#f-s-1-pieces">Seizure line 2, Pieces: no pieces and no weight' in summary
    # next to the field: marked invalid, with its message
    assert re.search(r'id="f-origin_country"[^>]*value="ZZ"[^>]*aria-invalid="true"', r.text)
    assert re.search(r'id="e-origin_country">[^<]*is not a country code', r.text)
    assert re.search(r'id="e-s-0-pieces">[^<]*is below 0; give a whole number', r.text)
    # what was typed is still there
    kept = read_form(r.text, NEW).values
    for name in (
        "reference",
        "office",
        "notes",
        "s-0-brand",
        "s-0-commodity_code",
        "s-1-brand",
        "s-0-nature",
    ):
        assert kept[name] == data[name], name
    assert kept["is_ecommerce"] == "on"
    assert kept["lines"] == data["lines"] == "3"  # as many lines as before: the form does not grow
    assert count(db, Case) == 0
    # a rule of the operation (the date) is named in the same pass as the schema's problems
    again = read_form(r.text, NEW).values | {"detected_on": "2025-06-02"}
    outside = client.post(NEW, data=again, headers=HTML)
    assert outside.status_code == 422
    assert '<a href="#f-detected_on">Detected on: 2025-06-02 is outside the operation' in outside.text
    assert '<a href="#f-origin_country">Origin country:' in outside.text
    assert '<a href="#f-s-1-pieces">Seizure line 2, Pieces: no pieces and no weight' in outside.text
    assert count(db, Case) == 0


def test_a_taken_reference_is_named_next_to_the_field(client, world, signed_in, db):
    api_case(client, world["fr_officer"], reference="WEB-1")
    signed_in(world["fr_officer"])
    r = client.post(NEW, data=fill_new_case(client.get(NEW, headers=HTML).text), headers=HTML)
    assert r.status_code == 409
    assert re.search(r'id="e-reference">[^<]*already exists', r.text)
    assert read_form(r.text, NEW).values["s-0-brand"] == "Brand X"
    # with other problems: named in the same pass as them
    again = read_form(r.text, NEW).values | {"s-0-pieces": "-1", "origin_country": "ZZ"}
    r = client.post(NEW, data=again, headers=HTML)
    assert r.status_code == 422
    assert re.search(r'id="e-reference">Case reference: &#39;WEB-1&#39; is already used by case \d+', r.text)
    assert 'id="e-s-0-pieces"' in r.text and 'id="e-origin_country"' in r.text
    assert count(db, Case) == 1


def test_add_a_seizure_line_keeps_the_form(client, world, signed_in, db):
    signed_in(world["fr_officer"])
    page = client.get(NEW, headers=HTML).text
    assert 'id="add-line"' in page and 'hx-post="/operations/TEST-OP/cases/new"' in page
    data = fill_new_case(page) | {"action": "add_line"}
    r = client.post(NEW, data=data, headers=HTML | {"HX-Request": "true"})
    assert r.status_code == 200
    assert 'id="form-errors"' not in r.text
    values = read_form(r.text, NEW).values
    assert values["lines"] == "4" and "s-3-commodity_code" in values
    assert values["s-1-brand"] == "Runfast" and values["notes"] == data["notes"]
    assert count(db, Case) == 0


# ------------------------------------------------------------------------------------------ correct


def test_correction_through_the_page_writes_a_new_version(client, world, signed_in, db):
    case = api_case(client, world["fr_officer"])
    url = f"/cases/{case['id']}/correct"
    signed_in(world["fr_officer"])
    assert f'href="{url}"' in client.get(f"/cases/{case['id']}", headers=HTML).text
    page = client.get(url, headers=HTML)
    assert page.status_code == 200
    form = read_form(page.text, url).values
    assert form["expected_version"] == "1"
    assert form["s-0-pieces"] == "120" and form["s-1-brand"] == "Runfast" and form["origin_country"] == "CN"
    assert "reference" not in form  # the reference is not corrected
    missing_reason = client.post(url, data=form | {"s-0-pieces": "150"}, headers=HTML)
    assert missing_reason.status_code == 422
    assert (
        '<a href="#f-reason">Reason for the correction: required; give 3 to 2,000 characters'
        in missing_reason.text
    )
    assert read_form(missing_reason.text, url).values["s-0-pieces"] == "150"
    r = client.post(url, data=form | {"s-0-pieces": "150", "reason": "recount at the office"}, headers=HTML)
    assert r.status_code == 200 and r.url.path == f"/cases/{case['id']}"
    assert "recount at the office" in r.text and "version 2" in r.text
    got = client.get(f"/api/v1/cases/{case['id']}", headers=world["fr_officer"].headers).json()
    assert got["version"] == 2 and got["seizures"][0]["pieces"] == 150
    assert got["seizures"][0]["id"] == case["seizures"][0]["id"]
    assert count(db, CaseVersion) == 2
    history = client.get(f"/api/v1/cases/{case['id']}/history", headers=world["fr_officer"].headers).json()
    assert [v["snapshot"]["seizures"][0]["pieces"] for v in history] == [120, 150]
    stale = client.post(url, data=form | {"reason": "a second go on version 1"}, headers=HTML)
    assert stale.status_code == 409  # expected_version 1 is stale: nothing is overwritten
    assert count(db, CaseVersion) == 2
    signed_in(world["de_officer"])  # may read it, may not correct it
    assert client.get(f"/cases/{case['id']}", headers=HTML).status_code == 200
    assert f'href="{url}"' not in client.get(f"/cases/{case['id']}", headers=HTML).text
    assert client.get(url, headers=HTML).status_code == 403


# ------------------------------------------------------------------------------------------ submit, validate


def test_submit_and_validate_buttons(client, world, signed_in, db):
    case = api_case(client, world["fr_officer"], submit=False)
    page_url = f"/cases/{case['id']}"
    signed_in(world["fr_officer"])
    page = client.get(page_url, headers=HTML).text
    assert "This case is a draft" in page
    assert f"{page_url}/validate" not in page
    submit = read_form(page, f"{page_url}/submit").values
    r = client.post(f"{page_url}/submit", data=submit, headers=HTML)
    assert r.status_code == 200 and 'id="status">submitted<' in r.text
    assert f"{page_url}/submit" not in r.text
    assert f"{page_url}/validate" not in r.text  # an officer does not validate
    again = client.post(f"{page_url}/submit", data=submit, headers=HTML)
    assert again.status_code == 409  # a second click on a stale page changes nothing

    signed_in(world["de_ncp"])  # another administration's contact point sees no button and may not
    page = client.get(page_url, headers=HTML).text
    assert f"{page_url}/validate" not in page
    forced = client.post(
        f"{page_url}/validate", data={"expected_version": "2", "csrf_token": csrf_from(page)}, headers=HTML
    )
    assert forced.status_code == 403

    signed_in(world["fr_ncp"])
    page = client.get(page_url, headers=HTML).text
    assert "waits for your validation" in page
    r = client.post(f"{page_url}/validate", data=read_form(page, f"{page_url}/validate").values, headers=HTML)
    assert r.status_code == 200 and 'id="status">validated<' in r.text
    assert f"{page_url}/validate" not in r.text
    assert db.scalar(select(Case.status)) is CaseStatus.VALIDATED


# ------------------------------------------------------------------------------------------ import


def _csv(rows: list[dict[str, str]]) -> bytes:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=COLUMNS, lineterminator="\n")
    w.writeheader()
    w.writerows(rows)
    return buf.getvalue().encode()


def _row(ref: str, **kw: str) -> dict[str, str]:
    return {
        "case_reference": ref,
        "detected_on": "2025-05-14",
        "transport_mode": "AIR",
        "is_ecommerce": "yes",
        "channel": "POSTAL",
        "origin_country": "CN",
        "destination_country": "FR",
        "detection_method": "XRAY",
        "commodity_code": "IPR-CLOTH",
        "brand": "Brand X",
        "pieces": "10",
        "weight_kg": "1.5",
    } | kw


def test_import_page_lists_row_errors_then_imports_a_good_file(client, world, signed_in, db):
    signed_in(world["fr_officer"])
    page = client.get(IMPORT, headers=HTML)
    assert page.status_code == 200
    assert 'href="/api/v1/import-template.csv"' in page.text
    token = read_form(page.text, IMPORT).values["csrf_token"]
    bad = _csv([_row("IMP-1"), _row("IMP-2", origin_country="ZZ"), _row("IMP-3", pieces="lots")])
    r = client.post(IMPORT, files={"file": ("bad.csv", bad, "text/csv")}, data={"csrf_token": token})
    assert r.status_code == 422
    assert "nothing was imported" in r.text
    table = r.text[r.text.index('id="import-error-rows"') :]
    cells = re.findall(r'<tr><td class="num">(\d+)</td><td>(\w+)</td>', table)
    assert ("3", "origin_country") in cells and ("4", "pieces") in cells
    assert count(db, Case) == 0
    good = _csv([_row("IMP-1"), _row("IMP-1", commodity_code="IPR-FOOT", pieces="4"), _row("IMP-2")])
    r = client.post(IMPORT, files={"file": ("good.csv", good, "text/csv")}, data={"csrf_token": token})
    assert r.status_code == 200
    assert 'id="import-result"' in r.text
    assert "3 rows, 2 new cases, 3 seizures" in r.text
    assert count(db, Case) == 2 and count(db, Seizure) == 3
    again = client.post(IMPORT, files={"file": ("good.csv", good, "text/csv")}, data={"csrf_token": token})
    assert "already imported" in again.text
    assert count(db, Case) == 2
    twin = client.post(
        IMPORT + "?format=json", files={"file": ("good.csv", good, "text/csv")}, data={"csrf_token": token}
    )
    assert twin.json()["already_imported"] is True
    wrong_kind = client.post(
        IMPORT,
        files={"file": ("seizures.exe", b"MZ", "application/octet-stream")},
        data={"csrf_token": token},
    )
    assert wrong_kind.status_code == 422 and "only .csv and .xlsx" in wrong_kind.text


# ------------------------------------------------------------------------------------------ headers, errors


def _check_headers(r) -> None:  # type: ignore[no-untyped-def]
    csp = r.headers.get("content-security-policy", "")
    assert "default-src 'self'" in csp and "script-src 'self'" in csp, r.url
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp, r.url
    assert "frame-ancestors 'none'" in csp, r.url
    assert r.headers.get("x-frame-options") == "DENY", r.url
    assert r.headers.get("x-content-type-options") == "nosniff", r.url
    assert r.headers.get("referrer-policy") == "same-origin", r.url


_INLINE_SCRIPT = re.compile(r"<script(?![^>]*\bsrc=)[^>]*>", re.I)
_INLINE_HANDLER = re.compile(r"<[^>]+\son[a-z]+\s*=", re.I)
_INLINE_STYLE = re.compile(r"<[^>]+\sstyle\s*=|<style", re.I)
_FOREIGN = re.compile(r'(?:src|href|action)="(?:https?:)?//', re.I)


def test_security_headers_and_no_inline_code(client, world, signed_in):
    case = api_case(client, world["fr_officer"])
    anonymous = [client.get("/login", headers=HTML), sign_in(client, world["fr_officer"], password="no")]
    signed_in(world["fr_officer"])
    pages = [
        *anonymous,
        client.get("/", headers=HTML),
        client.get("/operations/TEST-OP", headers=HTML),
        client.get(CASES, headers=HTML),
        client.get(f"{CASES}?date_from=bad", headers=HTML),
        client.get(NEW, headers=HTML),
        client.get(f"/cases/{case['id']}", headers=HTML),
        client.get(f"/cases/{case['id']}/correct", headers=HTML),
        client.get(IMPORT, headers=HTML),
        client.get("/cases/999999", headers=HTML),
        client.post(NEW, data={"csrf_token": "forged"}, headers=HTML),
    ]
    for r in pages:
        _check_headers(r)
        assert r.headers["cache-control"] == "no-store", r.url
        assert not _INLINE_SCRIPT.search(r.text), r.url  # the CSP would block it: nothing may rely on it
        assert not _INLINE_HANDLER.search(r.text), r.url
        assert not _INLINE_STYLE.search(r.text), r.url
        assert not _FOREIGN.search(r.text), r.url  # no CDN, nothing outside this server
    for other in (
        client.get("/static/stopnet.css"),
        client.get("/static/vendor/htmx-2.0.11.min.js"),
        client.get(API, headers=world["fr_officer"].headers),
        client.get("/healthz"),
    ):
        assert other.status_code == 200
        _check_headers(other)


@pytest.fixture
def failing_client(app, world, monkeypatch):  # type: ignore[no-untyped-def]
    """A client of an app whose operations listing fails with an internal error."""
    import stopnet.operations.service as operations

    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("psycopg.OperationalError: password for user stopnet_prod=s3cret failed")

    monkeypatch.setattr(operations, "list_operations", broken)
    with TestClient(app, raise_server_exceptions=False) as c:
        yield c


def test_a_500_answer_shows_no_stack_trace(failing_client, world, caplog):
    sign_in(failing_client, world["fr_officer"])
    html = failing_client.get("/", headers=HTML)
    as_json = failing_client.get("/api/v1/operations", headers=world["fr_officer"].headers)
    for r in (html, as_json):
        assert r.status_code == 500
        for leak in ("Traceback", "RuntimeError", "s3cret", "stopnet_prod", 'File "', ".py"):
            assert leak not in r.text, leak
    assert "Internal error" in html.text
    assert as_json.json() == {"error": "internal", "detail": "internal error; it has been logged"}
    assert "s3cret" in caplog.text  # ... but the log has it, for the operators


def test_a_500_answer_has_the_security_headers(failing_client, world):
    sign_in(failing_client, world["fr_officer"])
    _check_headers(failing_client.get("/", headers=HTML))


def test_an_unknown_page_gets_the_sites_error_page_and_the_api_its_json(client, world):
    sign_in(client, world["fr_officer"])
    page = client.get("/no/such/page", headers=HTML)
    assert page.status_code == 404 and page.headers["content-type"].startswith("text/html")
    assert "404" in page.text and "not found" in page.text and 'action="/logout"' in page.text
    _check_headers(page)
    api = client.get("/api/v1/no/such/route")
    assert api.status_code == 404 and api.json()["error"] == "not_found"
