"""Data protection: personal data never reaches rights holders, partners or other administrations (API,
pages, exports), and ``stopnet purge`` pseudonymises it after the operation's retention period."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from sqlalchemy import select, update
from typer.testing import CliRunner

from stopnet.audit.service import verify
from stopnet.db.models import AuditEntry, Case, CaseVersion, IdempotencyRecord, Operation
from tests.conftest import case_payload

NAME = "Jean-Baptiste Marchetti"  # the consignee: it must not appear in any answer below
OTHERS = [
    "rights_holder",
    "partner",
    "de_officer",
    "de_ncp",
    "analyst_we",
    "coordinator",
    "admin",
    "xx_officer",
]


def report(client: Any, world: Any, reference: str, name: str = NAME, **overrides: Any) -> dict[str, Any]:
    body = case_payload(reference, consignee_name=name, visibility="partners", **overrides)
    r = client.post(
        "/api/v1/operations/TEST-OP/cases",
        json=body,
        headers={**world["fr_officer"].headers, "Idempotency-Key": f"key-{reference}"},
    )
    assert r.status_code == 201, r.text
    out: dict[str, Any] = r.json()
    return out


def answers(client: Any, actor: Any, case_id: int) -> dict[str, Any]:
    """Every read of the case, its list, history, pages and exports an actor may try, by URL."""
    urls = [
        "/api/v1/operations/TEST-OP/cases",
        f"/api/v1/cases/{case_id}",
        f"/api/v1/cases/{case_id}/history",
        f"/cases/{case_id}?format=json",
        "/operations/TEST-OP/cases?format=json",
        "/api/v1/operations/TEST-OP/exports/cases.csv",
        "/api/v1/operations/TEST-OP/exports/cases.json",
        "/api/v1/operations/TEST-OP/exports/seizures.csv",
        "/api/v1/operations/TEST-OP/exports/seizures.json",
        "/api/v1/rights/seizures",
        "/api/v1/operations/TEST-OP/dashboard",
    ]
    return {url: client.get(url, headers=actor.headers) for url in urls}


def test_personal_data_reaches_the_reporting_administration_only(client: Any, world: Any) -> None:
    case = report(client, world, "FR-DP-1")
    correction = case_payload("FR-DP-1", consignee_name=NAME, visibility="partners", office="Orly")
    del correction["reference"]
    r = client.post(
        f"/api/v1/cases/{case['id']}/corrections",
        json={**correction, "expected_version": 1, "reason": "office corrected"},
        headers=world["fr_officer"].headers,
    )
    assert r.status_code == 200, r.text

    # the reporting administration sees the name: the check below could fail
    own = answers(client, world["fr_officer"], case["id"])
    assert own[f"/api/v1/cases/{case['id']}"].json()["consignee_name"] == NAME
    assert NAME not in own["/api/v1/operations/TEST-OP/exports/cases.csv"].text  # no export carries it

    for who in OTHERS:
        readable = 0
        for url, r in answers(client, world[who], case["id"]).items():
            assert r.status_code < 500, (who, url, r.text)
            assert NAME not in r.text, (who, url)
            assert "Marchetti" not in r.text, (who, url)
            readable += r.status_code == 200
        assert readable >= 1 or who == "xx_officer", who  # each participant did read something
    # the partner (visibility "partners") and the coordinator do read the case itself, without the name
    for who in ("partner", "coordinator", "de_officer"):
        r = client.get(f"/api/v1/cases/{case['id']}", headers=world[who].headers)
        assert r.status_code == 200 and r.json()["consignee_name"] is None


def test_retention_policy_is_set_by_the_coordinator_or_an_admin(client: Any, world: Any, db: Any) -> None:
    url = "/api/v1/operations/TEST-OP/data-protection"
    for who in ("fr_officer", "fr_ncp", "partner", "rights_holder", "analyst_we"):
        r = client.put(url, json={"personal_data_retention_days": 30}, headers=world[who].headers)
        assert r.status_code in (403, 404), (who, r.text)
    for bad in (0, -5, 100_000, "soon"):
        r = client.put(url, json={"personal_data_retention_days": bad}, headers=world["coordinator"].headers)
        assert r.status_code == 422, bad
    r = client.put(url, json={"personal_data_retention_days": 90}, headers=world["coordinator"].headers)
    assert r.status_code == 200, r.text
    assert r.json()["personal_data_retention_days"] == 90
    r = client.put(url, json={"personal_data_retention_days": None}, headers=world["admin"].headers)
    assert r.status_code == 200 and r.json()["personal_data_retention_days"] is None
    assert (
        db.scalar(select(Operation.personal_data_retention_days).where(Operation.code == "TEST-OP")) is None
    )
    changes = db.scalars(
        select(AuditEntry.details).where(AuditEntry.action == "operation.retention_set")
    ).all()
    assert [c["personal_data_retention_days"] for c in changes] == [[None, 90], [90, None]]


def _age(db: Any, case_id: int, days: int) -> None:
    then = dt.datetime.now(dt.UTC) - dt.timedelta(days=days)
    db.execute(update(Case).where(Case.id == case_id).values(created_at=then))
    db.commit()


def test_purge_pseudonymises_expired_personal_data_everywhere_it_is_stored(
    client: Any, world: Any, db: Any
) -> None:
    old = report(client, world, "FR-OLD-1")
    old_again = report(client, world, "FR-OLD-2", name=NAME.upper())  # the same consignee, written otherwise
    other = report(client, world, "FR-OLD-3", name="Amina Okafor")
    recent = report(client, world, "FR-NEW-1", name="Recent Person")
    for c, days in ((old, 40), (old_again, 45), (other, 31)):
        _age(db, c["id"], days)
    url = "/api/v1/operations/TEST-OP/data-protection"
    coordinator = world["coordinator"].headers

    # no policy: nothing to purge
    r = client.post(url + "/purge", headers=coordinator)
    assert r.status_code == 200 and r.json()["cases_examined"] == 0
    client.put(url, json={"personal_data_retention_days": 30}, headers=coordinator)

    # dry run: counted, nothing changed, nothing audited
    r = client.post(url + "/purge", params={"dry_run": True}, headers=coordinator)
    assert r.status_code == 200, r.text
    dry = r.json()
    assert (dry["cases_examined"], dry["consignee_names_removed"]) == (3, 3)
    assert dry["case_versions_scrubbed"] == 3 and dry["idempotency_records_scrubbed"] == 3
    assert client.get(url, headers=coordinator).json()["pending"]["consignee_names_removed"] == 3
    db.expire_all()
    assert db.get(Case, old["id"]).consignee_name == NAME
    assert not db.scalars(select(AuditEntry).where(AuditEntry.action == "personal_data.purged")).all()

    # a reporter cannot purge
    assert client.post(url + "/purge", headers=world["fr_ncp"].headers).status_code == 403

    r = client.post(url + "/purge", headers=coordinator)
    assert r.status_code == 200, r.text
    assert r.json()["consignee_names_removed"] == 3 and not r.json()["dry_run"]
    db.expire_all()
    purged = {c["id"]: db.get(Case, c["id"]) for c in (old, old_again, other)}
    for case in purged.values():
        assert case.consignee_name == "" and case.personal_data_purged_at is not None
        assert case.consignee_pseudonym and len(case.consignee_pseudonym) == 16
    # the same consignee keeps the same pseudonym (linkable), another gets another one
    assert purged[old["id"]].consignee_pseudonym == purged[old_again["id"]].consignee_pseudonym
    assert purged[other["id"]].consignee_pseudonym != purged[old["id"]].consignee_pseudonym
    # the recent case is untouched
    assert db.get(Case, recent["id"]).consignee_name == "Recent Person"
    # no stored copy of the names is left: versions, stored API answers
    for v in db.scalars(select(CaseVersion).where(CaseVersion.case_id.in_(purged))):
        assert v.snapshot["consignee_name"] == ""
        assert v.snapshot["consignee_pseudonym"] == purged[v.case_id].consignee_pseudonym
    for rec in db.scalars(select(IdempotencyRecord)):
        assert (rec.response["consignee_name"] == "") == (rec.response["id"] in purged)
    # even the reporting administration now reads no name; a retry with the same key replays no name
    assert (
        client.get(f"/api/v1/cases/{old['id']}", headers=world["fr_officer"].headers).json()["consignee_name"]
        == ""
    )
    retry = client.post(
        "/api/v1/operations/TEST-OP/cases",
        json=case_payload("FR-OLD-1", consignee_name=NAME, visibility="partners"),
        headers={**world["fr_officer"].headers, "Idempotency-Key": "key-FR-OLD-1"},
    )
    assert retry.status_code == 201 and NAME not in retry.text
    # one audit entry with the counts; the chain still verifies
    (entry,) = db.scalars(select(AuditEntry).where(AuditEntry.action == "personal_data.purged")).all()
    assert (
        entry.details["consignee_names_removed"] == 3 and entry.details["personal_data_retention_days"] == 30
    )
    assert verify(db) == []

    # a second purge finds nothing left
    again = client.post(url + "/purge", headers=coordinator).json()
    assert again["cases_examined"] == 0 and again["consignee_names_removed"] == 0


@pytest.fixture
def cli_env(monkeypatch: pytest.MonkeyPatch, database_url: str) -> Any:
    from stopnet.config import get_settings

    monkeypatch.setenv("STOPNET_DATABASE_URL", database_url)
    monkeypatch.setenv("STOPNET_PSEUDONYM_KEY", "test-pseudonym-key")
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def test_purge_command(client: Any, world: Any, db: Any, cli_env: Any) -> None:
    from stopnet.cli import app

    old = report(client, world, "FR-CLI-1")
    _age(db, old["id"], 400)
    runner = CliRunner()
    shown = runner.invoke(app, ["retention", "--operation", "test-op"])
    assert shown.exit_code == 0 and "none" in shown.output
    bad = runner.invoke(app, ["retention", "--operation", "TEST-OP", "--days", "0"])
    assert bad.exit_code == 2
    assert runner.invoke(app, ["purge", "--operation", "NOPE"]).exit_code == 2
    assert runner.invoke(app, ["retention", "--operation", "TEST-OP", "--days", "365"]).exit_code == 0

    dry = runner.invoke(app, ["purge", "--operation", "TEST-OP", "--dry-run"])
    assert dry.exit_code == 0, dry.output
    assert "would remove 1 consignee names" in dry.output and "nothing changed" in dry.output
    db.expire_all()
    assert db.get(Case, old["id"]).consignee_name == NAME

    done = runner.invoke(app, ["purge", "--operation", "TEST-OP"])
    assert done.exit_code == 0, done.output
    assert "removed 1 consignee names" in done.output and "audit entry written" in done.output
    assert "purge: " in done.stderr and "cases (100%)" in done.stderr
    db.expire_all()
    case = db.get(Case, old["id"])
    assert case.consignee_name == "" and case.consignee_pseudonym
    entry = db.scalar(select(AuditEntry).where(AuditEntry.action == "personal_data.purged"))
    assert entry is not None and entry.actor_label == "cli:WCO-OCU"
