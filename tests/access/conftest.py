"""Fixtures of the account, API-token and audit tests: sign-in through every step, helpers."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pyotp
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from stopnet.db.models import User
from stopnet.web.sessions import COOKIE, CSRF_HEADER, csrf_token
from tests.conftest import PASSWORD, Actor

HTML = {"Accept": "text/html,application/xhtml+xml"}
JSON = {"Accept": "application/json"}
_CSRF = re.compile(r'name="csrf_token" value="([^"]*)"')


def csrf_from(html: str) -> str:
    m = _CSRF.search(html)
    assert m is not None, "no csrf_token field in the page"
    return m.group(1)


def password_step(client: TestClient, email: str, password: str = PASSWORD, next: str = "/") -> Any:
    """GET the sign-in form and POST it, as a browser does; the answer is not followed."""
    page = client.get("/login", headers=HTML)
    assert page.status_code == 200, page.text
    return client.post(
        "/login",
        data={"email": email, "password": password, "csrf_token": csrf_from(page.text), "next": next},
        headers=HTML,
        follow_redirects=False,
    )


def code_step(client: TestClient, code: str, next: str = "/") -> Any:
    """GET the code page (its CSRF token is bound to the pending cookie) and POST a code."""
    page = client.get(f"/login/code?next={next}", headers=HTML)
    assert page.status_code == 200, page.text
    return client.post(
        "/login/code",
        data={"code": code, "csrf_token": csrf_from(page.text), "next": next},
        headers=HTML,
        follow_redirects=False,
    )


def signed_in_as(client: TestClient, actor: Actor) -> TestClient:
    """Sign in through the pages; API changes then carry the session's CSRF token, as this site's
    scripts would (tests/access/test_csrf.py calls without it)."""
    client.cookies.clear()
    r = password_step(client, actor.email)
    assert r.status_code == 303 and r.headers["location"] == "/", r.text
    with_csrf_header(client)
    return client


def with_csrf_header(client: TestClient) -> None:
    """Send the CSRF token of the client's session in ``X-CSRF-Token`` from now on."""
    cookie = client.cookies.get(COOKIE)
    assert cookie, "not signed in"
    client.headers[CSRF_HEADER] = csrf_token(client.app.state.secret, cookie)  # type: ignore[attr-defined]


def page_csrf(client: TestClient, path: str = "/account") -> str:
    page = client.get(path, headers=HTML)
    assert page.status_code == 200, (path, page.text)
    return csrf_from(page.text)


def enrol(client: TestClient) -> tuple[pyotp.TOTP, list[str]]:
    """Turn on TOTP for the signed-in user through the pages; returns the authenticator and the codes."""
    page = client.get("/account/totp", headers=JSON)
    assert page.status_code == 200, page.text
    enrolment = page.json()
    authenticator = pyotp.TOTP(enrolment["secret"])
    r = client.post(
        "/account/totp",
        data={
            "enrolment_token": enrolment["enrolment_token"],
            "code": authenticator.now(),
            "password": PASSWORD,
            "csrf_token": page_csrf(client),
        },
        headers=JSON,
    )
    assert r.status_code == 200, r.text
    codes = r.json()["recovery_codes"]
    assert len(codes) == 10
    return authenticator, codes


def next_code(authenticator: pyotp.TOTP) -> str:
    """A code of the next time step: accepted (clock drift) even when this step's code was just used."""
    import time

    return authenticator.at(time.time() + 30)


def user_row(db: Session, email: str) -> User:
    db.expire_all()
    user = db.scalar(select(User).where(User.email == email))
    assert user is not None
    return user


SignIn = Callable[[Actor], TestClient]


@pytest.fixture
def signed_in(client: TestClient) -> SignIn:
    return lambda actor: signed_in_as(client, actor)
