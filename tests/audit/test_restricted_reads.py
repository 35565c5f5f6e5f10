"""Every path that returns a restricted case (``own`` or ``coordinator``) to someone outside its reporting
administration writes a ``case.read_restricted`` entry naming the case and the path; reads by the reporter
and reads of shared cases write none."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from stopnet.db.models import AuditEntry
from tests.conftest import World, case_payload

OP = "TEST-OP"
HTML = {"Accept": "text/html"}


def _report(client: TestClient, world: World, actor: str, reference: str, visibility: str) -> int:
    body = case_payload(reference, submit=True, visibility=visibility, destination_country="DE")
    r = client.post(f"/api/v1/operations/{OP}/cases", json=body, headers=world[actor].headers)
    assert r.status_code == 201, r.text
    return int(r.json()["id"])


def _restricted_reads(db: Session) -> list[tuple[str, str, str]]:
    db.expire_all()
    rows = db.scalars(
        select(AuditEntry).where(AuditEntry.action == "case.read_restricted").order_by(AuditEntry.id)
    )
    return [(e.actor_label, e.object_id, e.details.get("via", "")) for e in rows]


def _paths(case_id: int) -> list[tuple[str, dict[str, str], set[str]]]:
    """(path, extra headers, the ``via`` entries it must write)."""
    return [
        (f"/api/v1/operations/{OP}/cases?page_size=200", {}, {"list"}),
        (f"/api/v1/operations/{OP}/cases?q=DE-RESTRICTED", {}, {"search"}),
        (f"/operations/{OP}/cases?format=json", {}, {"list"}),
        (f"/operations/{OP}/cases?q=restricted", HTML, {"search"}),
        (f"/operations/{OP}/cases", HTML, {"list"}),
        (f"/api/v1/cases/{case_id}", {}, {"case"}),
        (f"/api/v1/cases/{case_id}/history", {}, {"history"}),
        (f"/cases/{case_id}", HTML, {"case", "history"}),
        (f"/cases/{case_id}?format=json", {}, {"case", "history"}),
        (f"/api/v1/operations/{OP}/exports/cases.csv", {}, {"export"}),
        (f"/api/v1/operations/{OP}/exports/seizures.xlsx", {}, {"export"}),
        (f"/api/v1/operations/{OP}/exports/cases.json?q=DE-RESTRICTED", {}, {"export"}),
    ]


@pytest.mark.db
def test_every_path_that_returns_a_restricted_case_audits_it(
    client: TestClient, world: World, db: Session
) -> None:
    restricted = _report(client, world, "de_officer", "DE-RESTRICTED", "coordinator")
    _report(client, world, "de_officer", "DE-SHARED", "participants")
    coordinator = world["coordinator"]
    for path, headers, vias in _paths(restricted):
        before = len(_restricted_reads(db))
        r = client.get(path, headers={**coordinator.headers, **headers})
        assert r.status_code == 200, (path, r.status_code, r.text[:300])
        assert "DE-RESTRICTED" in r.text or r.headers["content-type"].startswith("application/vnd"), path
        new = _restricted_reads(db)[before:]
        assert {via for _, _, via in new} == vias, (path, new)
        assert {obj for _, obj, _ in new} == {str(restricted)}, (path, new)  # the shared case is not logged
        assert all("coordinator" in label for label, _, _ in new), new


@pytest.mark.db
def test_the_reporter_and_shared_reads_write_no_restricted_entry(
    client: TestClient, world: World, db: Session
) -> None:
    restricted = _report(client, world, "de_officer", "DE-RESTRICTED", "coordinator")
    _report(client, world, "fr_officer", "FR-SHARED", "participants")
    for actor in ("de_officer", "fr_officer"):  # DE reads its own case; FR cannot read it at all
        for path, headers, _ in _paths(restricted):
            r = client.get(path, headers={**world[actor].headers, **headers})
            assert r.status_code in (200, 404), (actor, path, r.status_code)
    assert _restricted_reads(db) == []
