"""Sensitive changes to an account ask for the password again, on the pages and the API.

Turning two-step sign-in on or off, new recovery codes, changing the e-mail address and creating an API
token (page and API) are refused, with an error saying so and nothing written, when the password is
missing or wrong; with the right password they go through. A session left open (or stolen) is not enough.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pyotp
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from stopnet.db.models import ApiToken, AuditEntry, User
from tests.access.conftest import HTML, JSON, enrol, next_code, page_csrf, password_step, user_row
from tests.conftest import PASSWORD

Attempt = Callable[[TestClient, str], Any]  # (client, password) -> response


def _enable(client: TestClient, password: str) -> Any:
    enrolment = client.get("/account/totp", headers=JSON).json()
    data = {
        "enrolment_token": enrolment["enrolment_token"],
        "code": pyotp.TOTP(enrolment["secret"]).now(),
        "password": password,
        "csrf_token": page_csrf(client),
    }
    return client.post("/account/totp", data=data, headers=HTML)


def _disable(client: TestClient, password: str) -> Any:
    data = {"password": password, "code": next_code(client.authenticator), "csrf_token": page_csrf(client)}  # type: ignore[attr-defined]
    return client.post("/account/totp/disable", data=data, headers=HTML, follow_redirects=False)


def _recovery_codes(client: TestClient, password: str) -> Any:
    data = {"password": password, "csrf_token": page_csrf(client)}
    return client.post("/account/recovery-codes", data=data, headers=HTML)


def _email(client: TestClient, password: str) -> Any:
    data = {"new_email": "new.address@example.test", "password": password, "csrf_token": page_csrf(client)}
    return client.post("/account/email", data=data, headers=HTML, follow_redirects=False)


def _token_api(client: TestClient, password: str) -> Any:
    body = {"org": "FR-CUS", "name": "national system", "scopes": ["cases:read"], "password": password}
    return client.post("/api/v1/tokens", json=body)


def _token_page(client: TestClient, password: str) -> Any:
    data = {
        "org": "FR-CUS",
        "name": "national system",
        "role": "officer",
        "scopes": ["cases:read"],
        "password": password,
        "csrf_token": page_csrf(client, "/admin/tokens"),
    }
    return client.post("/admin/tokens", data=data, headers=HTML)


# (who, needs TOTP on first, the change, the words of its refusal)
CHANGES: dict[str, tuple[str, bool, Attempt, str]] = {
    "turn two-step sign-in on": ("fr_officer", False, _enable, "two-step sign-in was not turned on"),
    "turn two-step sign-in off": ("fr_officer", True, _disable, "two-step sign-in stays on"),
    "new recovery codes": ("fr_officer", True, _recovery_codes, "no new recovery codes were made"),
    "change the e-mail address": ("fr_officer", False, _email, "the e-mail address was not changed"),
    "create an API token (API)": ("fr_ncp", False, _token_api, "the token was not created"),
    "create an API token (page)": ("fr_ncp", False, _token_page, "your password"),
}


def snapshot(db: Any, email: str) -> tuple[Any, ...]:
    db.expire_all()
    user = db.scalar(select(User).where(User.email == email))
    return (
        db.scalar(select(func.count()).select_from(AuditEntry)),
        db.scalar(select(func.count()).select_from(ApiToken)),
        user.email if user else None,
        user.totp_enabled if user else None,
        user.totp_secret if user else None,
    )


@pytest.mark.parametrize("change", list(CHANGES))
def test_a_sensitive_change_asks_for_the_password_again(client, world, signed_in, db, change):
    actor_name, totp_first, attempt, words = CHANGES[change]
    actor = world[actor_name]
    signed_in(actor)
    if totp_first:
        client.authenticator, _ = enrol(client)  # type: ignore[attr-defined]
    before = snapshot(db, actor.email)
    for password, message in (("", "type your password"), ("not my password", "this is not your password")):
        r = attempt(client, password)
        assert r.status_code == 422, (change, password, r.status_code, r.text[:300])
        assert message in r.text, (change, r.text[:2000])
        assert words in r.text, (change, r.text[:2000])
        assert snapshot(db, actor.email) == before, change
    r = attempt(client, PASSWORD)
    assert r.status_code in (200, 201, 303), (change, r.status_code, r.text[:300])
    assert snapshot(db, actor.email) != before, change


def test_the_api_says_which_field_is_wrong(client, world, signed_in, db):
    signed_in(world["fr_ncp"])
    r = _token_api(client, "not my password")
    assert r.status_code == 422
    body = r.json()
    assert body["detail"] == "wrong password: the token was not created"
    assert body["errors"] == [
        {"field": "password", "code": "wrong_password", "message": "this is not your password"}
    ]


def test_a_changed_e_mail_address_signs_in_and_is_audited(client, world, signed_in, db):
    officer = world["fr_officer"]
    signed_in(officer)
    taken = _email_to(client, world["fr_ncp"].email)
    assert taken.status_code == 409 and "another account signs in with" in taken.text
    assert _email_to(client, "not an address").status_code == 422
    done = _email_to(client, "  New.Officer@Example.test ")
    assert done.status_code == 303 and done.headers["location"] == "/account?done=email"
    assert user_row(db, "new.officer@example.test").id
    entry = db.scalars(select(AuditEntry).where(AuditEntry.action == "user.email_change")).one()
    assert entry.details == {"from": officer.email, "to": "new.officer@example.test"}
    client.cookies.clear()
    assert password_step(client, officer.email).status_code != 303  # the old address no longer signs in
    assert password_step(client, "new.officer@example.test").status_code == 303


def _email_to(client: TestClient, address: str) -> Any:
    data = {"new_email": address, "password": PASSWORD, "csrf_token": page_csrf(client)}
    return client.post("/account/email", data=data, headers=HTML, follow_redirects=False)
