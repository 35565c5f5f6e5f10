"""The account page: change one's password, sign out everywhere; an administrator's reset forces a change."""

from __future__ import annotations

from sqlalchemy import select

from stopnet.access.passwords import verify_password
from stopnet.db.models import AuditEntry
from tests.access.conftest import (
    HTML,
    JSON,
    code_step,
    csrf_from,
    enrol,
    next_code,
    page_csrf,
    password_step,
    user_row,
)
from tests.conftest import PASSWORD

NEW_PASSWORD = "a much longer new passphrase"


def audit_actions(db) -> list[str]:  # type: ignore[no-untyped-def]
    db.expire_all()
    return list(db.scalars(select(AuditEntry.action).order_by(AuditEntry.id)))


def test_account_page_and_its_json_twin(client, world, signed_in):
    signed_in(world["fr_ncp"])
    page = client.get("/account", headers=HTML)
    assert page.status_code == 200
    for form in ("/account/password", "/account/sign-out-everywhere", "/account/totp"):
        assert form in page.text
    twin = client.get("/account?format=json").json()
    assert (
        twin["email"] == world["fr_ncp"].email and twin["org"] == "FR-CUS" and twin["role"] == "contact_point"
    )
    assert twin["totp_enabled"] is False


def test_change_own_password_needs_the_current_one(client, world, signed_in, db, app):
    officer = world["fr_officer"]
    signed_in(officer)
    csrf = page_csrf(client)
    data = {"new_password": NEW_PASSWORD, "new_password_confirm": NEW_PASSWORD, "csrf_token": csrf}
    wrong = client.post("/account/password", data={**data, "current_password": "not it"}, headers=HTML)
    assert wrong.status_code == 422
    assert 'id="current_password-error"' in wrong.text
    short = client.post(
        "/account/password",
        data={**data, "current_password": PASSWORD, "new_password": "short", "new_password_confirm": "short"},
        headers=HTML,
    )
    assert short.status_code == 422 and "at least 12 characters" in short.text
    differ = client.post(
        "/account/password",
        data={**data, "current_password": PASSWORD, "new_password_confirm": NEW_PASSWORD + "x"},
        headers=HTML,
    )
    assert differ.status_code == 422 and "the two passwords differ" in differ.text
    assert verify_password(user_row(db, officer.email).password_hash, PASSWORD)
    # another browser signed in as the same user
    from fastapi.testclient import TestClient

    with TestClient(app) as other:
        assert password_step(other, officer.email).status_code == 303
        assert other.get("/", headers=HTML).status_code == 200
        ok = client.post(
            "/account/password",
            data={**data, "current_password": PASSWORD},
            headers=HTML,
            follow_redirects=False,
        )
        assert ok.status_code == 303 and ok.headers["location"] == "/account?done=password"
        assert client.get("/account", headers=HTML).status_code == 200  # this browser stays signed in
        assert other.get("/", headers=HTML, follow_redirects=False).status_code == 303  # the other does not
    assert verify_password(user_row(db, officer.email).password_hash, NEW_PASSWORD)
    assert "password.change" in audit_actions(db)
    client.cookies.clear()
    assert password_step(client, officer.email).status_code == 401
    assert password_step(client, officer.email, NEW_PASSWORD).status_code == 303


def test_sign_out_everywhere_invalidates_an_existing_cookie(client, world, signed_in, db):
    signed_in(world["fr_officer"])
    old_cookie = client.cookies.get("stopnet_session")
    csrf = page_csrf(client)
    r = client.post("/account/sign-out-everywhere", data={"csrf_token": csrf}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/login"
    client.cookies.clear()
    client.cookies.set("stopnet_session", old_cookie)
    assert client.get("/", headers=HTML, follow_redirects=False).status_code == 303
    assert client.get("/api/v1/operations").status_code == 401
    assert audit_actions(db)[-1] == "auth.sign_out_everywhere"
    assert "auth.sign_out" not in audit_actions(db)
    signed_in(world["fr_officer"])  # signing in again works
    client.post("/logout", data={"csrf_token": page_csrf(client)})
    assert audit_actions(db)[-1] == "auth.sign_out"


def test_admin_reset_forces_a_new_password_at_next_sign_in(client, world, signed_in, db, app):
    officer = world["fr_officer"]
    user_id = user_row(db, officer.email).id
    from fastapi.testclient import TestClient

    with TestClient(app) as officer_browser:
        password_step(officer_browser, officer.email)
        assert officer_browser.get("/", headers=HTML).status_code == 200
        signed_in(world["admin"])
        csrf = page_csrf(client, f"/admin/users/{user_id}")
        r = client.post(
            f"/admin/users/{user_id}/reset-password",
            data={"csrf_token": csrf, "temporary_password": "temporary password 1"},
            headers=HTML,
        )
        assert r.status_code == 200
        assert 'id="temporary-password"' in r.text and "temporary password 1" in r.text
        # the officer's session has ended
        assert officer_browser.get("/", headers=HTML, follow_redirects=False).status_code == 303
    user = user_row(db, officer.email)
    assert user.must_change_password
    entry = db.scalars(select(AuditEntry).where(AuditEntry.action == "password.reset")).one()
    assert entry.actor_label == world["admin"].email and entry.object_id == str(user_id)
    assert "temporary password 1" not in str(entry.details)
    client.cookies.clear()
    assert password_step(client, officer.email).status_code == 401  # the old password is gone
    r = password_step(client, officer.email, "temporary password 1", next="/operations/TEST-OP")
    assert r.status_code == 303 and r.headers["location"].startswith("/login/new-password")
    assert "stopnet_session" not in client.cookies
    assert client.get("/", headers=HTML, follow_redirects=False).status_code == 303  # no session yet
    page = client.get("/login/new-password", headers=HTML)
    assert page.status_code == 200
    csrf = csrf_from(page.text)
    same = client.post(
        "/login/new-password",
        data={
            "new_password": "temporary password 1",
            "new_password_confirm": "temporary password 1",
            "csrf_token": csrf,
        },
        headers=HTML,
    )
    assert same.status_code == 422 and "temporary one" in same.text
    done = client.post(
        "/login/new-password",
        data={
            "new_password": NEW_PASSWORD,
            "new_password_confirm": NEW_PASSWORD,
            "csrf_token": csrf,
            "next": "/operations/TEST-OP",
        },
        headers=HTML,
        follow_redirects=False,
    )
    assert done.status_code == 303 and done.headers["location"] == "/operations/TEST-OP"
    assert client.get("/", headers=HTML).status_code == 200
    user = user_row(db, officer.email)
    assert not user.must_change_password and verify_password(user.password_hash, NEW_PASSWORD)
    assert audit_actions(db)[-2:] == ["password.change", "auth.sign_in"]


def test_reset_with_two_step_sign_in_asks_the_code_then_the_new_password(client, world, signed_in, db):
    officer = world["fr_officer"]
    signed_in(officer)
    authenticator, _ = enrol(client)
    user_id = user_row(db, officer.email).id
    signed_in(world["fr_ncp"])  # the contact point of the officer's administration may reset it
    r = client.post(f"/api/v1/users/{user_id}/reset-password", json={})
    assert r.status_code == 200, r.text
    temporary = r.json()["temporary_password"]
    assert len(temporary) >= 16 and r.json()["user"]["must_change_password"] is True
    client.cookies.clear()
    first = password_step(client, officer.email, temporary)
    assert first.headers["location"].startswith("/login/code")
    second = code_step(client, next_code(authenticator))
    assert second.status_code == 303 and second.headers["location"].startswith("/login/new-password")
    assert "stopnet_session" not in client.cookies
    page = client.get("/login/new-password", headers=HTML)
    done = client.post(
        "/login/new-password",
        data={
            "new_password": NEW_PASSWORD,
            "new_password_confirm": NEW_PASSWORD,
            "csrf_token": csrf_from(page.text),
        },
        follow_redirects=False,
    )
    assert done.status_code == 303
    assert client.get("/account", headers=JSON).json()["totp_enabled"] is True


def test_the_new_password_step_cannot_skip_the_code(client, world, signed_in, db, app):
    """A pending cookie of the code step does not open the new-password step."""
    officer = world["fr_officer"]
    signed_in(officer)
    enrol(client)
    user = user_row(db, officer.email)
    user.must_change_password = True
    db.commit()
    client.cookies.clear()
    password_step(client, officer.email)
    page = client.get("/login/new-password", headers=HTML)
    assert page.status_code == 401 and "expired" in page.text
    assert "stopnet_session" not in client.cookies
