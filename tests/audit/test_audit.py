"""The audit trail is a keyed hash chain with signed checkpoints of its head kept outside the database.

Each test attacks the trail as someone with write access to the database (not to the data directory):
altering, deleting, inserting, cutting the newest entries, re-chaining with the unkeyed hash, forging a
checkpoint. `stopnet audit verify` must find every one.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json

import pytest
from sqlalchemy import delete, func, insert, select, update
from typer.testing import CliRunner

from stopnet.audit import checkpoints
from stopnet.audit.checkpoints import Checkpoint
from stopnet.audit.service import KEYED, AuditKeyMissing, record, signed_head, verify
from stopnet.core.keys import AuditKeys, audit_keys
from stopnet.db.engine import make_sessionmaker
from stopnet.db.models import AuditEntry
from tests.conftest import case_payload


def _report(client, world, n: int) -> None:
    for i in range(n):
        r = client.post(
            "/api/v1/operations/TEST-OP/cases",
            json=case_payload(f"A-{i}"),
            headers=world["fr_officer"].headers,
        )
        assert r.status_code == 201, r.text


def _entries(db) -> list[AuditEntry]:
    db.expire_all()
    return list(db.scalars(select(AuditEntry).order_by(AuditEntry.seq)))


def test_entries_are_numbered_keyed_and_the_head_is_signed_on_commit(client, world, db, settings):
    _report(client, world, 3)
    entries = _entries(db)
    assert [e.seq for e in entries] == list(range(1, len(entries) + 1))
    assert {e.scheme for e in entries} == {KEYED}
    assert verify(db) == []
    head = checkpoints.latest(audit_keys(settings).directory)  # type: ignore[arg-type]
    assert head is not None and head.count == len(entries) and head.head == entries[-1].entry_hash
    assert head.valid_for(audit_keys(settings).public_key)
    # the hourly log keeps the first head of the hour
    assert checkpoints.read(audit_keys(settings).directory)[0].count >= 1  # type: ignore[arg-type]


def test_altered_entry_is_detected(client, world, db):
    _report(client, world, 3)
    target = _entries(db)[1]
    db.execute(update(AuditEntry).where(AuditEntry.id == target.id).values(details={"reference": "forged"}))
    db.commit()
    problems = verify(db)
    assert [p.entry_id for p in problems] == [target.seq]
    assert "altered" in problems[0].problem


def test_deleted_entry_is_detected(client, world, db):
    _report(client, world, 3)
    entries = _entries(db)
    db.execute(delete(AuditEntry).where(AuditEntry.id == entries[1].id))
    db.commit()
    problems = verify(db)
    assert any("deleted" in p.problem for p in problems)
    assert problems[0].entry_id == entries[1].seq


def test_cutting_the_newest_entries_is_caught_by_the_signed_head(client, world, db):
    _report(client, world, 3)
    entries = _entries(db)
    db.execute(delete(AuditEntry).where(AuditEntry.seq > entries[-3].seq))
    db.commit()
    problems = verify(db)
    assert problems, "a cut trail passed verify"
    assert "cut" in problems[0].problem and str(len(entries)) in problems[0].problem


def test_rechaining_with_the_unkeyed_hash_is_detected(client, world, db):
    """The attack that passed before: rewrite an entry and recompute every plain SHA-256 after it."""
    _report(client, world, 3)
    entries = _entries(db)
    prev = entries[0].prev_hash
    for e in entries:
        details = {"reference": "forged"} if e.seq == 2 else e.details
        body = {
            "prev": prev,
            "at": e.at.astimezone(dt.UTC).isoformat(),
            "actor_user_id": e.actor_user_id,
            "actor_org_id": e.actor_org_id,
            "actor_label": e.actor_label,
            "action": e.action,
            "object_type": e.object_type,
            "object_id": e.object_id,
            "details": details,
        }
        digest = hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":")).encode()).hexdigest()
        db.execute(
            update(AuditEntry)
            .where(AuditEntry.id == e.id)
            .values(details=details, prev_hash=prev, entry_hash=digest, scheme="sha256")
        )
        prev = digest
    db.commit()
    problems = verify(db)
    assert any("rewritten" in p.problem for p in problems)  # the signed head no longer matches


def test_inserted_entry_is_detected(client, world, db):
    _report(client, world, 2)
    entries = _entries(db)
    db.execute(
        insert(AuditEntry).values(
            seq=entries[-1].seq + 1,
            scheme=KEYED,
            at=dt.datetime.now(dt.UTC),
            actor_label="intruder",
            action="case.delete",
            object_type="case",
            object_id="1",
            details={},
            prev_hash=entries[-1].entry_hash,
            entry_hash="f" * 64,
        )
    )
    db.commit()
    problems = verify(db)
    assert [p.entry_id for p in problems] == [entries[-1].seq + 1]
    assert "forged" in problems[0].problem


def test_checkpoint_from_a_report_catches_a_cut_even_when_the_data_dir_head_is_gone(
    client, world, db, settings
):
    _report(client, world, 3)
    kept = signed_head(db)  # e.g. printed in yesterday's daily report
    assert kept is not None
    keys = audit_keys(settings)
    for f in keys.directory.iterdir():  # type: ignore[union-attr]
        f.unlink()
    db.execute(delete(AuditEntry).where(AuditEntry.seq == kept.count))
    db.commit()
    assert verify(db) == []  # with no checkpoint left, a cut of the newest entry cannot be seen
    problems = verify(db, extra=[kept])
    assert problems and "cut" in problems[0].problem


def test_forged_checkpoint_is_refused(client, world, db):
    _report(client, world, 1)
    foreign = AuditKeys.from_secret(b"someone else's key")
    forged = Checkpoint.sign(foreign, 1, _entries(db)[0].entry_hash)
    problems = verify(db, extra=[forged])
    assert problems and "not signed by this installation" in problems[0].problem


def test_keyed_chain_is_not_extended_without_the_keys(client, world, db, engine):
    _report(client, world, 1)
    keyless = make_sessionmaker(engine)()
    try:
        with pytest.raises(AuditKeyMissing):
            record(keyless, None, "system.test")
    finally:
        keyless.rollback()
        keyless.close()


def test_rolled_back_entries_do_not_move_the_head(client, world, db, settings):
    _report(client, world, 1)
    keys = audit_keys(settings)
    before = checkpoints.latest(keys.directory)  # type: ignore[arg-type]
    record(db, world["coordinator"].principal, "system.test")
    db.rollback()
    assert checkpoints.latest(keys.directory) == before  # type: ignore[arg-type]
    assert verify(db) == []


def test_cli_verify_checkpoint_and_public_key(
    client, world, db, database_url, settings, monkeypatch, tmp_path
):
    from stopnet.cli import app
    from stopnet.config import get_settings

    _report(client, world, 2)
    monkeypatch.setenv("STOPNET_DATABASE_URL", database_url)
    monkeypatch.setenv("STOPNET_SECRET_KEY", settings.secret_key)
    monkeypatch.setenv("STOPNET_DATA_DIR", str(settings.data_dir))
    get_settings.cache_clear()
    try:
        runner = CliRunner()
        ok = runner.invoke(app, ["audit", "verify"])
        assert ok.exit_code == 0, ok.output
        count = db.scalar(select(func.count()).select_from(AuditEntry))
        assert f"intact: {count} entries" in ok.output
        cp = runner.invoke(app, ["audit", "checkpoint"])
        assert cp.exit_code == 0, cp.output
        saved = tmp_path / "elsewhere.jsonl"
        saved.write_text(cp.output)
        assert Checkpoint.from_json(cp.output.strip()).count == count
        key = runner.invoke(app, ["audit", "public-key"])
        assert key.output.strip() == audit_keys(settings).public_key_hex()
        # cut the newest entry and lose the data directory's copies: the saved checkpoint still tells
        for f in audit_keys(settings).directory.iterdir():  # type: ignore[union-attr]
            f.unlink()
        db.execute(delete(AuditEntry).where(AuditEntry.seq == count))
        db.commit()
        bad = runner.invoke(app, ["audit", "verify", "--checkpoint", str(saved)])
        assert bad.exit_code == 1
        assert "cut" in bad.output
    finally:
        get_settings.cache_clear()
