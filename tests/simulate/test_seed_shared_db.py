"""The demo seed on the shared test database (so it also runs in the PostgreSQL pass)."""

from __future__ import annotations

from decimal import Decimal

from sqlalchemy import func, select

from stopnet.audit.service import verify
from stopnet.db.models import Case, Operation, Seizure, User
from stopnet.simulate import SPECS, seed_demo


def test_demo_seed_matches_published_figures(db):
    info = seed_demo(db, seed=42)
    db.commit()
    assert list(info.operations) == ["STOP-IV", "STOP-III"]
    for code, spec in SPECS.items():
        op_id = db.scalar(select(Operation.id).where(Operation.code == code))
        assert db.scalar(select(func.count(Case.id)).where(Case.operation_id == op_id)) == spec.cases
        assert db.scalar(select(func.count(Seizure.id)).where(Seizure.operation_id == op_id)) == spec.seizures
        rows = db.execute(
            select(Seizure.commodity_group, func.sum(Seizure.pieces), func.sum(Seizure.weight_kg))
            .where(Seizure.operation_id == op_id)
            .group_by(Seizure.commodity_group)
        ).all()
        got = {g: (int(p), Decimal(w)) for g, p, w in rows}
        assert got == {g: (t.pieces, t.weight_kg) for g, t in spec.group_totals.items()}
    roles = set(db.scalars(select(User.role)).all())
    assert {r.value for r in roles} == {
        "admin",
        "coordinator",
        "analyst",
        "contact_point",
        "officer",
        "partner",
        "rights_holder",
    }
    assert info.api_token and info.api_token.startswith("stn_")
    assert verify(db) == []
