"""Every form of the account, token and audit pages carries a CSRF token, and is refused without it."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import func, select

from stopnet.db.models import ApiToken, AuditEntry, User
from tests.access.conftest import HTML, enrol, password_step, user_row
from tests.conftest import PASSWORD

_POST_FORM = re.compile(r'<form method="post" action="([^"]+)"[^>]*>(.*?)</form>', re.S)


def forms_of(html: str) -> dict[str, str]:
    return {m.group(1): m.group(2) for m in _POST_FORM.finditer(html)}


def state(db) -> tuple[int, ...]:  # type: ignore[no-untyped-def]
    """What a refused form must leave alone: the audit trail, the accounts, the tokens."""
    db.expire_all()
    return (
        db.scalar(select(func.count()).select_from(AuditEntry)) or 0,
        db.scalar(select(func.sum(User.session_epoch))) or 0,
        db.scalar(select(func.count()).select_from(User)) or 0,
        db.scalar(select(func.count()).select_from(ApiToken).where(ApiToken.revoked_at.is_(None))) or 0,
    )


def test_every_post_form_of_the_pages_has_a_csrf_token(client, world, signed_in, db):
    officer_id = user_row(db, world["fr_officer"].email).id
    signed_in(world["fr_officer"])
    enrol(client)
    signed_in(world["admin"])
    seen: set[str] = set()
    for path in (
        "/account",
        "/account/totp",
        "/admin/users",
        f"/admin/users/{officer_id}",
        "/admin/tokens",
        "/audit",
    ):
        page = client.get(path, headers=HTML)
        assert page.status_code == 200, path
        for action, body in forms_of(page.text).items():
            assert (
                'name="csrf_token" value="' in body and 'value=""' not in body.split("csrf_token")[1][:10]
            ), (
                path,
                action,
            )
            seen.add(re.sub(r"/\d+", "/{id}", action))
    assert {
        "/account/password",
        "/account/sign-out-everywhere",
        "/account/totp",
        "/admin/users",
        "/admin/users/{id}/role",
        "/admin/users/{id}/reset-password",
        "/admin/users/{id}/reset-totp",
        "/admin/users/{id}/active",
        "/admin/tokens",
        "/admin/tokens/{id}/revoke",
        "/logout",
    } <= seen


@pytest.mark.parametrize("token", ["", "0" * 64])
def test_forms_without_the_csrf_token_are_refused(client, world, signed_in, db, token):
    officer_id = user_row(db, world["fr_officer"].email).id
    signed_in(world["fr_officer"])
    enrol(client)  # so that turning it off, and new recovery codes, are possible
    own = {
        "/account/password": {
            "current_password": PASSWORD,
            "new_password": "another long password",
            "new_password_confirm": "another long password",
        },
        "/account/sign-out-everywhere": {},
        "/account/email": {"new_email": "csrf@example.test", "password": PASSWORD},
        "/account/totp": {"enrolment_token": "x", "code": "123456", "password": PASSWORD},
        "/account/totp/disable": {"password": PASSWORD, "code": "123456"},
        "/account/recovery-codes": {"password": PASSWORD},
    }
    admin = {
        "/admin/users": {"org": "FR-CUS", "email": "csrf@example.test", "role": "officer"},
        f"/admin/users/{officer_id}/role": {"role": "contact_point"},
        f"/admin/users/{officer_id}/active": {"active": "false"},
        f"/admin/users/{officer_id}/reset-password": {},
        f"/admin/users/{officer_id}/reset-totp": {},
        "/admin/tokens": {"org": "FR-CUS", "name": "csrf", "role": "officer", "scopes": "cases:read"},
        "/admin/tokens/1/revoke": {},
    }
    before = state(db)
    for path, data in own.items():
        r = client.post(path, data={**data, "csrf_token": token}, headers=HTML, follow_redirects=False)
        assert r.status_code == 403, (path, r.status_code)
        assert "CSRF" in r.text
    assert state(db) == before
    signed_in(world["admin"])
    before = state(db)
    for path, data in admin.items():
        r = client.post(path, data={**data, "csrf_token": token}, headers=HTML, follow_redirects=False)
        assert r.status_code == 403, (path, r.status_code)
    assert state(db) == before
    assert user_row(db, world["fr_officer"].email).totp_enabled


def test_a_csrf_token_of_another_session_is_refused(client, world, signed_in, db, app):
    from fastapi.testclient import TestClient

    with TestClient(app) as other:
        password_step(other, world["fr_ncp"].email)
        foreign = re.search(r'name="csrf_token" value="([^"]+)"', other.get("/account", headers=HTML).text)
        assert foreign is not None
    signed_in(world["fr_officer"])
    before = state(db)
    r = client.post("/account/sign-out-everywhere", data={"csrf_token": foreign.group(1)}, headers=HTML)
    assert r.status_code == 403
    assert state(db) == before


def test_sign_in_step_forms_need_their_token(client, world, signed_in, db):
    officer = world["fr_officer"]
    signed_in(officer)
    authenticator, _ = enrol(client)
    client.cookies.clear()
    password_step(client, officer.email)
    for token in ("", "f" * 64):
        r = client.post("/login/code", data={"code": authenticator.now(), "csrf_token": token}, headers=HTML)
        assert r.status_code == 403 and "expired" in r.text
        assert "stopnet_session" not in client.cookies
    user = user_row(db, officer.email)
    user.must_change_password = True
    user.totp_enabled = False
    db.commit()
    client.cookies.clear()
    password_step(client, officer.email)
    r = client.post(
        "/login/new-password",
        data={"new_password": "x" * 20, "new_password_confirm": "x" * 20, "csrf_token": ""},
        headers=HTML,
    )
    assert r.status_code == 403 and "stopnet_session" not in client.cookies
    assert user_row(db, officer.email).must_change_password


_INLINE = re.compile(r"<script(?![^>]*\bsrc=)[^>]*>|<[^>]+\son[a-z]+\s*=|<[^>]+\sstyle\s*=|<style", re.I)
_FOREIGN = re.compile(r'(?:src|href|action)="(?:https?:)?//', re.I)


def test_the_pages_keep_the_security_headers_and_need_no_inline_code(client, world, signed_in, db):
    officer = world["fr_officer"]
    officer_id = user_row(db, officer.email).id
    signed_in(officer)
    pages = [client.get("/account", headers=HTML), client.get("/account/totp", headers=HTML)]
    enrol(client)
    client.cookies.clear()
    password_step(client, officer.email)
    pages.append(client.get("/login/code", headers=HTML))
    signed_in(world["admin"])
    for path in (
        "/admin/users",
        f"/admin/users/{officer_id}",
        "/admin/tokens",
        "/audit",
        "/audit?date_from=x",
    ):
        pages.append(client.get(path, headers=HTML))
    for r in pages:
        assert r.status_code in (200, 422), r.url
        assert "default-src 'self'" in r.headers["content-security-policy"], r.url
        assert r.headers["x-frame-options"] == "DENY" and r.headers["cache-control"] == "no-store", r.url
        assert not _INLINE.search(r.text), r.url
        assert not _FOREIGN.search(r.text), r.url
