"""The demo seed on the shared test database (so it also runs in the PostgreSQL pass)."""

from __future__ import annotations

from decimal import Decimal

from sqlalchemy import func, select

from stopnet.audit.service import verify
from stopnet.db.models import Case, Seizure, User
from stopnet.simulate import SPECS, seed_demo


def test_demo_seed_matches_published_figures(db):
    info = seed_demo(db, seed=42)
    db.commit()
    spec = SPECS["STOP-IV"]
    assert db.scalar(select(func.count()).select_from(Case)) == spec.cases
    assert db.scalar(select(func.count()).select_from(Seizure)) == spec.seizures
    rows = db.execute(
        select(Seizure.commodity_group, func.sum(Seizure.pieces), func.sum(Seizure.weight_kg)).group_by(
            Seizure.commodity_group
        )
    ).all()
    got = {g: (int(p), Decimal(w)) for g, p, w in rows}
    assert got == {
        "ipr": (5_500_000, Decimal("68000.000")),
        "medicines": (171_700_000, Decimal("27000.000")),
        "other": (10_900_000, Decimal("106000.000")),
    }
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
