"""The audit trail is hash-chained: any altered or deleted entry is detected."""

from __future__ import annotations

from sqlalchemy import delete, select, update
from typer.testing import CliRunner

from stopnet.audit.service import record, verify
from stopnet.db.models import AuditEntry
from tests.conftest import case_payload


def test_chain_verifies_and_detects_tampering(client, world, db):
    for i in range(3):
        client.post(
            "/api/v1/operations/TEST-OP/cases",
            json=case_payload(f"A-{i}"),
            headers=world["fr_officer"].headers,
        )
    record(db, world["coordinator"].principal, "export.cases", "operation", "TEST-OP", {"rows": 3})
    db.commit()
    assert verify(db) == []
    ids = db.scalars(select(AuditEntry.id).order_by(AuditEntry.id)).all()
    assert len(ids) >= 4
    db.execute(update(AuditEntry).where(AuditEntry.id == ids[1]).values(details={"reference": "forged"}))
    db.commit()
    problems = verify(db)
    assert [p.entry_id for p in problems] == [ids[1]]
    assert "altered" in problems[0].problem


def test_deleted_entry_is_detected(client, world, db):
    for i in range(3):
        client.post(
            "/api/v1/operations/TEST-OP/cases",
            json=case_payload(f"A-{i}"),
            headers=world["fr_officer"].headers,
        )
    ids = db.scalars(select(AuditEntry.id).order_by(AuditEntry.id)).all()
    db.execute(delete(AuditEntry).where(AuditEntry.id == ids[1]))
    db.commit()
    problems = verify(db)
    assert problems and problems[0].entry_id == ids[2]
    assert "deleted" in problems[0].problem


def test_cli_audit_verify_exit_codes(client, world, db, database_url, monkeypatch):
    from stopnet.cli import app
    from stopnet.config import get_settings

    client.post("/api/v1/operations/TEST-OP/cases", json=case_payload(), headers=world["fr_officer"].headers)
    monkeypatch.setenv("STOPNET_DATABASE_URL", database_url)
    get_settings.cache_clear()
    try:
        ok = CliRunner().invoke(app, ["audit", "verify"])
        assert ok.exit_code == 0, ok.output
        assert "intact" in ok.output
        db.execute(update(AuditEntry).values(action="case.delete"))
        db.commit()
        bad = CliRunner().invoke(app, ["audit", "verify"])
        assert bad.exit_code == 1
    finally:
        get_settings.cache_clear()
