"""API tokens managed by the organisation's contact point or an administrator: create, list, revoke."""

from __future__ import annotations

import hashlib

import pytest
from sqlalchemy import select

from stopnet.db.models import ApiToken, AuditEntry
from tests.access.conftest import HTML, JSON, csrf_from, page_csrf
from tests.conftest import PASSWORD

TOKENS = "/api/v1/tokens"
CASES = "/api/v1/operations/TEST-OP/cases"


def test_create_list_and_revoke_through_the_api(client, world, signed_in, db):
    signed_in(world["fr_ncp"])
    r = client.post(
        TOKENS,
        json={"org": "FR-CUS", "name": "national system", "scopes": ["cases:read"], "password": PASSWORD},
    )
    assert r.status_code == 201, r.text
    created = r.json()
    secret = created["secret"]
    token = created["token"]
    assert secret.startswith(f"stn_{token['prefix']}_")
    assert token["role"] == "officer" and token["scopes"] == ["cases:read"] and token["active"] is True
    stored = db.scalar(select(ApiToken).where(ApiToken.id == token["id"]))
    assert stored is not None and stored.token_hash == hashlib.sha256(secret.encode()).hexdigest()
    # the secret works, within its scopes
    machine = {"Authorization": f"Bearer {secret}"}
    assert client.get(CASES, headers=machine).status_code == 200
    listing = client.get(TOKENS).json()
    mine = next(t for t in listing["items"] if t["id"] == token["id"])
    assert mine["last_used_at"] is not None
    assert secret not in str(listing)  # never shown again
    assert {t["org"] for t in listing["items"]} == {"FR-CUS"}
    revoked = client.post(f"{TOKENS}/{token['id']}/revoke")
    assert revoked.status_code == 200 and revoked.json()["revoked_at"] is not None
    assert revoked.json()["active"] is False
    refused = client.get(CASES, headers=machine)
    assert refused.status_code == 401 and "revoked" in refused.json()["detail"]
    assert client.post(f"{TOKENS}/{token['id']}/revoke").status_code == 200  # idempotent
    entries = db.scalars(
        select(AuditEntry).where(
            AuditEntry.object_type == "api_token", AuditEntry.object_id == str(token["id"])
        )
    ).all()
    assert [e.action for e in entries] == ["token.create", "token.revoke"]
    entry = entries[0]
    assert entry.actor_label == world["fr_ncp"].email
    assert entry.details["scopes"] == "cases:read" and secret not in str(entry.details)


def test_rules_of_a_new_token(client, world, signed_in):
    signed_in(world["fr_ncp"])
    base = {"org": "FR-CUS", "name": "x", "scopes": ["cases:read"], "password": PASSWORD}
    assert client.post(TOKENS, json={**base, "org": "DE-CUS"}).status_code == 403
    assert client.post(TOKENS, json={**base, "role": "admin"}).status_code == 403
    assert client.post(TOKENS, json={**base, "scopes": ["everything"]}).status_code == 422
    assert client.post(TOKENS, json={**base, "scopes": []}).status_code == 422
    assert client.post(TOKENS, json={**base, "expires_on": "2001-01-01"}).status_code == 422
    ok = client.post(TOKENS, json={**base, "role": "contact_point", "expires_on": "2099-12-31"})
    assert ok.status_code == 201 and ok.json()["token"]["expires_at"].startswith("2100-01-01")
    signed_in(world["admin"])
    assert client.post(TOKENS, json={**base, "org": "RILO-WE", "role": "officer"}).status_code == 403  # kind
    assert client.post(TOKENS, json={**base, "org": "RILO-WE", "role": "analyst"}).status_code == 201
    assert client.get(TOKENS, params={"org": "RILO-WE"}).json()["total"] == 2  # the world's and this one


def test_contact_point_cannot_touch_another_administrations_tokens(client, world, signed_in, db):
    de_token = db.scalars(select(ApiToken).where(ApiToken.name == "de_officer token")).one()
    signed_in(world["fr_ncp"])
    assert client.get(f"{TOKENS}/{de_token.id}").status_code == 404
    assert client.post(f"{TOKENS}/{de_token.id}/revoke").status_code == 404
    assert client.get(TOKENS, params={"org": "DE-CUS"}).status_code == 403
    db.expire_all()
    assert db.get(ApiToken, de_token.id).revoked_at is None  # type: ignore[union-attr]


def test_token_pages_create_show_once_and_revoke(client, world, signed_in, db):
    signed_in(world["fr_ncp"])
    page = client.get("/admin/tokens", headers=HTML)
    assert page.status_code == 200
    assert "fr_officer token" in page.text and "de_officer token" not in page.text
    r = client.post(
        "/admin/tokens",
        data={
            "org": "FR-CUS",
            "name": "customs system",
            "role": "officer",
            "scopes": ["cases:read", "cases:write"],
            "password": PASSWORD,
            "csrf_token": csrf_from(page.text),
        },
        headers=HTML,
    )
    assert r.status_code == 201, r.text
    secret = r.text.split('id="token-secret">')[1].split("<")[0]
    assert secret.startswith("stn_")
    assert client.get(CASES, headers={"Authorization": f"Bearer {secret}"}).status_code == 200
    listing = client.get("/admin/tokens", headers=HTML)
    assert "customs system" in listing.text and secret not in listing.text
    token = db.scalars(select(ApiToken).where(ApiToken.name == "customs system")).one()
    assert token.scopes == "cases:read cases:write"
    no_scope = client.post(
        "/admin/tokens",
        data={
            "org": "FR-CUS",
            "name": "n",
            "role": "officer",
            "password": PASSWORD,
            "csrf_token": csrf_from(listing.text),
        },
        headers=HTML,
    )
    assert no_scope.status_code == 422 and 'id="scopes-error"' in no_scope.text
    revoke = client.post(
        f"/admin/tokens/{token.id}/revoke",
        data={"csrf_token": page_csrf(client, "/admin/tokens")},
        follow_redirects=False,
    )
    assert revoke.status_code == 303 and revoke.headers["location"] == "/admin/tokens?org=FR-CUS&done=revoked"
    assert client.get(CASES, headers={"Authorization": f"Bearer {secret}"}).status_code == 401
    twin = client.get("/admin/tokens?format=json").json()
    assert next(t for t in twin["items"] if t["id"] == token.id)["revoked_at"] is not None


@pytest.mark.parametrize(
    "name", ["admin", "coordinator", "fr_officer", "fr_ncp", "analyst_we", "partner", "rights_holder"]
)
def test_only_contact_points_and_admins_reach_token_management(client, world, signed_in, name):
    actor = world[name]
    assert client.get(TOKENS, headers=actor.headers).status_code == 403  # never with a token
    body = {"org": actor.org_code, "name": "t", "scopes": ["cases:read"]}
    assert client.post(TOKENS, json=body, headers=actor.headers).status_code == 403
    signed_in(actor)
    expected = 200 if name in ("admin", "fr_ncp") else 403
    assert client.get(TOKENS).status_code == expected
    assert client.get("/admin/tokens", headers=HTML).status_code == expected
    assert client.get("/admin/tokens", headers=JSON).status_code == expected
    if expected == 403:
        assert client.post(TOKENS, json=body).status_code == 403
        assert client.post(f"{TOKENS}/1/revoke").status_code == 403


def test_the_tokens_of_a_deactivated_account_stop_for_good(client, world, signed_in, db):
    """A token made by a person acts for that person: deactivating the account revokes it (audited), and
    reactivating the account does not revive it. Organisation tokens made on the server keep working."""
    from stopnet.access.service import create_token
    from stopnet.db.models import Organisation, Role, User

    signed_in(world["fr_ncp"])
    made = client.post(
        TOKENS,
        json={"org": "FR-CUS", "name": "national system", "scopes": ["cases:read"], "password": PASSWORD},
    )
    assert made.status_code == 201, made.text
    token, secret = made.json()["token"], made.json()["secret"]
    assert token["created_by"] == world["fr_ncp"].email
    machine = {"Authorization": f"Bearer {secret}"}
    assert client.get(CASES, headers=machine).status_code == 200
    fr = db.scalar(select(Organisation).where(Organisation.code == "FR-CUS"))
    _, org_secret = create_token(db, None, fr, "made on the server", Role.OFFICER, frozenset({"cases:read"}))
    db.commit()
    ncp = db.scalar(select(User).where(User.email == world["fr_ncp"].email))

    signed_in(world["admin"])
    assert client.post(f"/api/v1/users/{ncp.id}/deactivate").status_code == 200
    refused = client.get(CASES, headers=machine)
    assert refused.status_code == 401 and "revoked" in refused.json()["detail"], refused.text
    listed = {t["id"]: t for t in client.get(TOKENS, params={"org": "FR-CUS"}).json()["items"]}
    assert listed[token["id"]]["active"] is False and listed[token["id"]]["revoked_at"] is not None
    assert listed[token["id"]]["created_by"] == world["fr_ncp"].email
    org_tokens = [t for t in listed.values() if t["name"] == "made on the server"]
    assert org_tokens and org_tokens[0]["created_by"] is None and org_tokens[0]["active"] is True
    assert client.get(CASES, headers={"Authorization": f"Bearer {org_secret}"}).status_code == 200
    revocation = db.scalar(
        select(AuditEntry).where(
            AuditEntry.action == "token.revoke", AuditEntry.object_id == str(token["id"])
        )
    )
    assert revocation is not None and revocation.details["reason"] == "account deactivated"
    assert revocation.actor_label == world["admin"].email
    page = client.get("/admin/tokens?org=FR-CUS", headers=HTML)
    assert world["fr_ncp"].email in page.text and "the organisation (made on the server)" in page.text

    assert client.post(f"/api/v1/users/{ncp.id}/activate").status_code == 200
    assert client.get(CASES, headers=machine).status_code == 401  # not revived


def test_a_token_of_an_inactive_account_is_refused_whatever_deactivated_it(client, world, db):
    """Even an account switched off outside the service (by hand in the database) stops its tokens."""
    from stopnet.db.models import User

    officer = world["fr_officer"]
    assert client.get(CASES, headers=officer.headers).status_code == 200
    user = db.scalar(select(User).where(User.email == officer.email))
    user.is_active = False
    db.commit()
    refused = client.get(CASES, headers=officer.headers)
    assert refused.status_code == 401 and "deactivated" in refused.json()["detail"], refused.text
