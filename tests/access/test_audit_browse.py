"""The audit trail page, its JSON twin and GET /api/v1/audit: who may read it, filters, paging, entries."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import update

from stopnet.audit.service import record, verify
from stopnet.db.models import AuditEntry
from tests.access.conftest import HTML, JSON, page_csrf, password_step, user_row
from tests.conftest import PASSWORD, case_payload

AUDIT = "/api/v1/audit"


@pytest.mark.parametrize(
    "name", ["admin", "coordinator", "fr_officer", "fr_ncp", "analyst_we", "partner", "rights_holder"]
)
def test_only_coordinators_and_admins_read_the_audit_trail(client, world, signed_in, name):
    actor = world[name]
    expected = 200 if name in ("admin", "coordinator") else 403
    assert client.get(AUDIT, headers=actor.headers).status_code == expected  # a token with audit:read
    signed_in(actor)
    assert client.get(AUDIT).status_code == expected
    assert client.get("/audit", headers=HTML).status_code == expected
    assert client.get("/audit", headers=JSON).status_code == expected


def test_a_token_without_the_audit_scope_is_refused(client, world, db):
    from stopnet.access.service import create_token

    _, raw = create_token(
        db, None, world.orgs["WCO-OCU"], "dashboards", world["coordinator"].role, frozenset({"cases:read"})
    )
    db.commit()
    r = client.get(AUDIT, headers={"Authorization": f"Bearer {raw}"})
    assert r.status_code == 403 and "audit:read" in r.json()["detail"]


def test_account_events_are_written_and_filters_find_them(client, world, signed_in, db):
    officer = world["fr_officer"]
    officer_id = user_row(db, officer.email).id
    assert password_step(client, officer.email, "wrong password").status_code == 401  # auth.failure
    signed_in(officer)  # auth.sign_in
    client.post("/logout", data={"csrf_token": page_csrf(client)})  # auth.sign_out
    client.post(
        "/api/v1/operations/TEST-OP/cases", json=case_payload(), headers=officer.headers
    )  # case.create
    signed_in(world["admin"])
    client.post(f"/api/v1/users/{officer_id}/role", json={"role": "contact_point"})  # user.role_change
    client.post(f"/api/v1/users/{officer_id}/reset-password", json={})  # password.reset
    token = client.post(
        "/api/v1/tokens", json={"org": "FR-CUS", "name": "x", "scopes": ["cases:read"], "password": PASSWORD}
    ).json()
    client.post(f"/api/v1/tokens/{token['token']['id']}/revoke")  # token.create, token.revoke
    signed_in(world["coordinator"])

    def actions(**params: str) -> list[str]:
        r = client.get(AUDIT, params={"page_size": "500", **params})
        assert r.status_code == 200, r.text
        return [e["action"] for e in r.json()["items"]]

    about_officer = actions(object_type="user", object_id=str(officer_id))
    for expected in ("auth.failure", "auth.sign_in", "auth.sign_out", "user.role_change", "password.reset"):
        assert expected in about_officer, expected
    assert set(actions(action="auth.")) == {"auth.failure", "auth.sign_in", "auth.sign_out"}
    assert set(actions(action="token.*")) == {"token.create", "token.revoke"}
    assert actions(action="user.role_change") == ["user.role_change"]
    by_admin = actions(actor="admin@example")
    assert set(by_admin) >= {
        "user.role_change",
        "password.reset",
        "token.create",
        "token.revoke",
        "auth.sign_in",
    }
    assert "case.create" not in by_admin
    by_fr = actions(org="FR-CUS")
    assert "case.create" in by_fr and "user.role_change" not in by_fr
    assert actions(actor=str(officer_id)) == ["case.create", "auth.sign_out", "auth.sign_in"]  # newest first
    failure = client.get(AUDIT, params={"action": "auth.failure"}).json()["items"][0]
    assert failure["actor_label"] == "system" and failure["details"]["factor"] == "password"
    assert failure["details"]["ip"] == "testclient"
    role = client.get(AUDIT, params={"action": "user.role_change"}).json()["items"][0]
    assert role["actor_org"] == "WCO-OCU" and role["details"]["to"] == "contact_point"
    assert len(role["entry_hash"]) == 64
    assert verify(db) == []  # every entry the pages wrote is in the chain


def test_date_range_and_paging(client, world, signed_in, db):
    for i in range(7):
        record(db, world["coordinator"].principal, "export.cases", "operation", "TEST-OP", {"n": i})
    db.commit()
    old = dt.datetime(2025, 5, 14, 12, tzinfo=dt.UTC)
    ids = db.scalars(
        AuditEntry.__table__.select()
        .with_only_columns(AuditEntry.id)
        .where(AuditEntry.action == "export.cases")
    ).all()
    db.execute(
        update(AuditEntry).where(AuditEntry.id.in_(ids[:3])).values(at=old)
    )  # break nothing: dates only
    db.commit()
    signed_in(world["admin"])
    in_may = client.get(AUDIT, params={"date_from": "2025-05-14", "date_to": "2025-05-14"}).json()
    assert in_may["total"] == 3 and {e["details"]["n"] for e in in_may["items"]} == {0, 1, 2}
    assert client.get(AUDIT, params={"date_from": "2025-05-15", "date_to": "2025-05-31"}).json()["total"] == 0
    later = client.get(AUDIT, params={"action": "export.cases", "date_from": "2025-05-15"}).json()
    assert later["total"] == 4
    first = client.get(AUDIT, params={"action": "export.cases", "page_size": "3"}).json()
    second = client.get(AUDIT, params={"action": "export.cases", "page_size": "3", "page": "2"}).json()
    assert first["total"] == 7 and len(first["items"]) == 3 and len(second["items"]) == 3
    assert first["items"][0]["id"] > first["items"][-1]["id"] > second["items"][0]["id"]  # newest first
    assert not {e["id"] for e in first["items"]} & {e["id"] for e in second["items"]}
    backwards = client.get(AUDIT, params={"date_from": "2025-05-15", "date_to": "2025-05-14"})
    assert backwards.status_code == 422 and backwards.json()["errors"][0]["field"] == "date_to"
    assert client.get(AUDIT, params={"date_from": "yesterday"}).status_code == 422


def test_audit_page_filters_and_shows_bad_filters(client, world, signed_in, db):
    signed_in(world["admin"])
    client.post(
        f"/api/v1/users/{user_row(db, world['fr_officer'].email).id}/role", json={"role": "contact_point"}
    )
    page = client.get("/audit?action=user.role_change", headers=HTML)
    assert page.status_code == 200
    assert "user.role_change" in page.text and "auth.sign_in</code>" not in page.text
    twin = client.get("/audit?action=user.role_change&format=json").json()
    assert twin["total"] == 1 and twin["items"][0]["action"] == "user.role_change"
    bad = client.get("/audit?date_from=not-a-date", headers=HTML)
    assert bad.status_code == 422 and 'id="filter-errors"' in bad.text
    assert client.get("/audit?date_from=not-a-date&format=json").status_code == 422
