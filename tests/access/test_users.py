"""Account management: platform administrators manage every organisation, contact points their officers."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from stopnet.db.models import AuditEntry, Role, User
from tests.access.conftest import HTML, JSON, page_csrf, password_step, user_row

USERS = "/api/v1/users"


def test_account_search_matches_percent_and_underscore_literally(client, world, signed_in):
    signed_in(world["admin"])
    everyone = client.get(USERS).json()["total"]
    assert everyone > 1
    assert client.get(USERS, params={"q": "%"}).json()["total"] == 0
    with_underscore = {u["email"] for u in client.get(USERS, params={"page_size": 100}).json()["items"]}
    with_underscore = {e for e in with_underscore if "_" in e}
    assert len(with_underscore) < everyone
    found = {u["email"] for u in client.get(USERS, params={"q": "_", "page_size": 100}).json()["items"]}
    assert found == with_underscore
    body = {"org": "DE-CUS", "email": "jo@example.test", "display_name": "Jo 100%", "role": "officer"}
    assert client.post(USERS, json=body).status_code == 201
    assert [u["email"] for u in client.get(USERS, params={"q": "100%"}).json()["items"]] == [body["email"]]
    assert client.get(USERS, params={"q": "10_%"}).json()["total"] == 0


def test_admin_lists_and_creates_accounts_of_any_organisation(client, world, signed_in, db):
    signed_in(world["admin"])
    listing = client.get(USERS, params={"org": "FR-CUS"})
    assert listing.status_code == 200
    assert {u["email"] for u in listing.json()["items"]} == {world["fr_officer"].email, world["fr_ncp"].email}
    assert client.get(USERS).json()["total"] == len(world.actors)
    body = {"org": "DE-CUS", "email": "New.Officer@Example.test", "display_name": "New", "role": "officer"}
    r = client.post(USERS, json=body)
    assert r.status_code == 201, r.text
    created = r.json()
    assert created["user"]["email"] == "new.officer@example.test"
    assert created["user"]["must_change_password"] is True
    assert r.headers["location"] == f"/api/v1/users/{created['user']['id']}"
    assert client.post(USERS, json=body).status_code == 409
    wrong_kind = client.post(USERS, json={**body, "email": "x@example.test", "role": "analyst"})
    assert wrong_kind.status_code == 403 and "kind CUSTOMS" in wrong_kind.json()["detail"]
    short = client.post(USERS, json={**body, "email": "y@example.test", "temporary_password": "short"})
    assert short.status_code == 422
    entry = db.scalars(select(AuditEntry).where(AuditEntry.action == "user.create")).one()
    assert entry.details == {"email": "new.officer@example.test", "org": "DE-CUS", "role": "officer"}
    client.cookies.clear()
    first = password_step(client, "new.officer@example.test", created["temporary_password"])
    assert first.headers["location"].startswith("/login/new-password")


def test_contact_point_manages_the_officers_of_its_administration_only(client, world, signed_in, db):
    signed_in(world["fr_ncp"])
    mine = client.get(USERS).json()
    assert {u["org"] for u in mine["items"]} == {"FR-CUS"}
    assert client.get(USERS, params={"org": "DE-CUS"}).status_code == 403
    de_officer = user_row(db, world["de_officer"].email)
    assert client.get(f"{USERS}/{de_officer.id}").status_code == 404  # another administration's: not found
    assert client.post(f"{USERS}/{de_officer.id}/deactivate").status_code == 404
    ok = client.post(USERS, json={"org": "FR-CUS", "email": "o2@example.test", "role": "officer"})
    assert ok.status_code == 201
    assert (
        client.post(
            USERS, json={"org": "FR-CUS", "email": "n2@example.test", "role": "contact_point"}
        ).status_code
        == 403
    )
    assert (
        client.post(USERS, json={"org": "DE-CUS", "email": "o3@example.test", "role": "officer"}).status_code
        == 403
    )
    officer = user_row(db, world["fr_officer"].email)
    assert client.post(f"{USERS}/{officer.id}/role", json={"role": "contact_point"}).status_code == 403
    assert client.post(f"{USERS}/{officer.id}/deactivate").json()["is_active"] is False
    assert client.post(f"{USERS}/{officer.id}/activate").json()["is_active"] is True
    ncp = user_row(db, world["fr_ncp"].email)
    assert client.post(f"{USERS}/{ncp.id}/reset-password", json={}).status_code == 403  # not its own peers


def test_role_change_is_a_permission_change_written_to_the_audit_trail(client, world, signed_in, db):
    officer = user_row(db, world["fr_officer"].email)
    signed_in(world["admin"])
    r = client.post(f"{USERS}/{officer.id}/role", json={"role": "contact_point"})
    assert r.status_code == 200 and r.json()["role"] == "contact_point"
    entry = db.scalars(select(AuditEntry).where(AuditEntry.action == "user.role_change")).one()
    assert entry.details == {"email": officer.email, "from": "officer", "to": "contact_point"}
    assert entry.actor_label == world["admin"].email and entry.object_id == str(officer.id)
    assert client.post(f"{USERS}/{officer.id}/role", json={"role": "partner"}).status_code == 403  # org kind
    assert client.post(f"{USERS}/{officer.id}/role", json={"role": "boss"}).status_code == 422
    admin = user_row(db, world["admin"].email)
    assert (
        client.post(f"{USERS}/{admin.id}/role", json={"role": "coordinator"}).status_code == 403
    )  # own role
    assert client.post(f"{USERS}/{admin.id}/deactivate").status_code == 403  # own account
    # the page does the same, with the session's CSRF token
    csrf = page_csrf(client, f"/admin/users/{officer.id}")
    page = client.post(
        f"/admin/users/{officer.id}/role",
        data={"role": "officer", "csrf_token": csrf},
        follow_redirects=False,
    )
    assert page.status_code == 303
    assert user_row(db, world["fr_officer"].email).role is Role.OFFICER
    assert len(db.scalars(select(AuditEntry).where(AuditEntry.action == "user.role_change")).all()) == 2


def test_deactivated_account_is_signed_out_and_cannot_sign_in(client, world, signed_in, db, app):
    from fastapi.testclient import TestClient

    officer = world["fr_officer"]
    user_id = user_row(db, officer.email).id
    with TestClient(app) as officer_browser:
        password_step(officer_browser, officer.email)
        assert officer_browser.get("/", headers=HTML).status_code == 200
        signed_in(world["admin"])
        csrf = page_csrf(client, f"/admin/users/{user_id}")
        r = client.post(f"/admin/users/{user_id}/active", data={"active": "false", "csrf_token": csrf})
        assert r.status_code == 200 and "deactivated" in r.text
        assert officer_browser.get("/", headers=HTML, follow_redirects=False).status_code == 303
        assert password_step(officer_browser, officer.email).status_code == 401
    assert "user.deactivate" in db.scalars(select(AuditEntry.action)).all()


def test_admin_pages_list_create_and_show(client, world, signed_in, db):
    signed_in(world["admin"])
    page = client.get("/admin/users?org=FR-CUS", headers=HTML)
    assert page.status_code == 200
    assert world["fr_officer"].email in page.text and world["de_officer"].email not in page.text
    twin = client.get("/admin/users?org=FR-CUS&format=json").json()
    assert twin["total"] == 2
    csrf = page_csrf(client, "/admin/users")
    r = client.post(
        "/admin/users",
        data={"org": "KE-CUS", "email": "ke.new@example.test", "role": "contact_point", "csrf_token": csrf},
        headers=HTML,
    )
    assert r.status_code == 201, r.text
    assert 'id="temporary-password"' in r.text
    dup = client.post(
        "/admin/users",
        data={"org": "KE-CUS", "email": "ke.new@example.test", "role": "officer", "csrf_token": csrf},
        headers=HTML,
    )
    assert dup.status_code == 409 and 'id="email-error"' in dup.text
    bad_role = client.post(
        "/admin/users", data={"org": "KE-CUS", "email": "z@example.test", "role": "boss", "csrf_token": csrf}
    )
    assert bad_role.status_code == 422
    new_id = user_row(db, "ke.new@example.test").id
    detail = client.get(f"/admin/users/{new_id}", headers=JSON).json()
    assert detail["role"] == "contact_point" and detail["org"] == "KE-CUS"


ALLOWED_USERS = {"admin", "fr_ncp", "de_ncp"}


@pytest.mark.parametrize(
    "name", ["admin", "coordinator", "fr_officer", "fr_ncp", "analyst_we", "partner", "rights_holder"]
)
def test_only_admins_and_contact_points_reach_account_management(client, world, signed_in, name):
    actor = world[name]
    # an API token never manages accounts, whatever its role
    assert client.get(USERS, headers=actor.headers).status_code == 403
    assert (
        client.post(
            USERS,
            json={"org": actor.org_code, "email": "t@example.test", "role": "officer"},
            headers=actor.headers,
        ).status_code
        == 403
    )
    signed_in(actor)
    expected = 200 if name in ALLOWED_USERS else 403
    assert client.get(USERS).status_code == expected
    assert client.get("/admin/users", headers=HTML).status_code == expected
    assert client.get("/admin/users", headers=JSON).status_code == expected
    if expected == 403:
        assert (
            client.post(
                USERS, json={"org": actor.org_code, "email": "t@example.test", "role": "officer"}
            ).status_code
            == 403
        )
        assert client.get(f"{USERS}/1").status_code == 403
        assert client.post(f"{USERS}/1/reset-password", json={}).status_code == 403


def test_account_management_needs_sign_in(client, world):
    assert client.get(USERS).status_code == 401
    assert client.get("/admin/users", headers=HTML, follow_redirects=False).status_code == 303
    assert client.get("/account", headers=HTML, follow_redirects=False).status_code == 303


def test_a_json_api_write_needs_a_json_body(client, world, signed_in, db):
    """A cross-site form cannot forge an API call: text/plain bodies are refused (and the cookie is Lax)."""
    signed_in(world["admin"])
    body = '{"org": "FR-CUS", "email": "forged@example.test", "role": "officer"}'
    r = client.post(USERS, content=body, headers={"Content-Type": "text/plain"})
    assert r.status_code == 422
    assert db.scalar(select(AuditEntry.id).where(AuditEntry.action == "user.create")) is None


def test_new_account_form_asks_for_the_organisation(client, world, signed_in, db):
    """The form used to default silently to the first organisation of the list."""
    signed_in(world["admin"])
    page = client.get("/admin/users", headers=HTML)
    assert '<option value="" selected>— choose the organisation —</option>' in page.text
    csrf = page_csrf(client, "/admin/users")
    r = client.post(
        "/admin/users",
        data={"org": "", "email": "nobody@example.test", "role": "officer", "csrf_token": csrf},
        headers=HTML,
    )
    assert r.status_code == 422
    assert "choose the organisation of the account" in r.text and 'value="nobody@example.test"' in r.text
    assert db.scalar(select(User.id).where(User.email == "nobody@example.test")) is None
    # a contact point has one organisation: it is chosen for them
    client.cookies.clear()
    signed_in(world["fr_ncp"])
    own = client.get("/admin/users", headers=HTML).text
    assert "— choose the organisation —" not in own and 'value="FR-CUS" selected' in own


def test_admin_moves_an_account_to_another_organisation(client, world, signed_in, db, app):
    from fastapi.testclient import TestClient

    officer = world["fr_officer"]
    user_id = user_row(db, officer.email).id
    with TestClient(app) as officer_browser:
        password_step(officer_browser, officer.email)
        assert officer_browser.get("/", headers=HTML).status_code == 200
        signed_in(world["admin"])
        misfit = client.post(f"{USERS}/{user_id}/organisation", json={"org": "INTERPOL"})
        assert misfit.status_code == 422
        assert "does not fit INTERPOL" in misfit.text and "officer" in misfit.text
        unknown = client.post(f"{USERS}/{user_id}/organisation", json={"org": "XX-NOPE"})
        assert unknown.status_code == 422 and "no organisation" in unknown.text
        r = client.post(f"{USERS}/{user_id}/organisation", json={"org": "DE-CUS"})
        assert r.status_code == 200, r.text
        assert (r.json()["org"], r.json()["role"]) == ("DE-CUS", "officer")
        # what the account may see changed: its sessions ended
        assert officer_browser.get("/", headers=HTML, follow_redirects=False).status_code == 303
    entry = db.scalars(select(AuditEntry).where(AuditEntry.action == "user.move")).one()
    assert entry.details == {
        "email": officer.email,
        "from_org": "FR-CUS",
        "to_org": "DE-CUS",
        "from_role": "officer",
        "to_role": "officer",
    }
    partner = client.post(f"{USERS}/{user_id}/organisation", json={"org": "INTERPOL", "role": "partner"})
    assert partner.status_code == 200 and partner.json()["org"] == "INTERPOL"
    admin = user_row(db, world["admin"].email)
    assert client.post(f"{USERS}/{admin.id}/organisation", json={"org": "DE-CUS"}).status_code == 403


def test_only_administrators_move_accounts_and_the_page_keeps_what_was_typed(client, world, signed_in, db):
    officer_id = user_row(db, world["fr_officer"].email).id
    signed_in(world["fr_ncp"])
    assert client.post(f"{USERS}/{officer_id}/organisation", json={"org": "DE-CUS"}).status_code == 403
    client.cookies.clear()
    signed_in(world["admin"])
    page = client.get(f"/admin/users/{officer_id}", headers=HTML)
    assert 'id="move-user"' in page.text
    csrf = page_csrf(client, f"/admin/users/{officer_id}")
    bad = client.post(
        f"/admin/users/{officer_id}/organisation",
        data={"org": "INTERPOL", "role": "officer", "csrf_token": csrf},
        headers=HTML,
    )
    assert bad.status_code == 422 and 'id="move_role-error"' in bad.text
    assert 'value="INTERPOL" selected' in bad.text  # what was chosen is kept
    ok = client.post(
        f"/admin/users/{officer_id}/organisation",
        data={"org": "DE-CUS", "role": "officer", "csrf_token": csrf},
        follow_redirects=False,
    )
    assert ok.status_code == 303 and ok.headers["location"].endswith("done=moved")
    assert user_row(db, world["fr_officer"].email).org_id == user_row(db, world["de_officer"].email).org_id
