"""Test data for the dashboard: cases and seizures inserted directly."""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal

from sqlalchemy.orm import Session, sessionmaker

from stopnet.db.models import Case, CaseStatus, Seizure, Visibility
from stopnet.reference import get_reference
from tests.conftest import World


@dataclass
class S:
    """One seizure line."""

    code: str = "IPR-CLOTH"
    pieces: int = 10
    kg: str = "1.5"
    brand: str = ""


@dataclass
class C:
    """One case, with the columns the dashboard reads."""

    org: str = "FR-CUS"
    day: int = 14  # day of May 2025
    status: CaseStatus = CaseStatus.VALIDATED
    visibility: Visibility = Visibility.PARTICIPANTS
    channel: str = "POSTAL"
    ecom: bool = True
    mode: str = "AIR"
    detection: str = "RISK_PROFILE"
    origin: str | None = "CN"
    destination: str | None = None  # the reporting country
    seizures: Sequence[S] = field(default_factory=lambda: [S()])


_refs = itertools.count(1)


def seed(factory: sessionmaker[Session], world: World, cases: Sequence[C]) -> list[int]:
    """Insert cases and their seizures directly (committed); returns their ids."""
    ref = get_reference()
    ids = []
    with factory() as s:
        for c in cases:
            org = world.orgs[c.org]
            case = Case(
                operation_id=world.op.id,
                reporting_org_id=org.id,
                reference=f"T-{next(_refs):06d}",
                status=c.status,
                version=1,
                visibility=c.visibility,
                detected_on=dt.date(2025, 5, c.day),
                reporting_country=org.country_code or "",
                region_code=org.region_code,
                transport_mode=c.mode,
                is_ecommerce=c.ecom,
                channel=c.channel,
                origin_country=c.origin,
                departure_country=c.origin,
                destination_country=c.destination or org.country_code,
                detection_method=c.detection,
                submitted_at=None if c.status is CaseStatus.DRAFT else dt.datetime.now(dt.UTC),
            )
            case.seizures = [
                Seizure(
                    operation_id=world.op.id,
                    line_no=i,
                    commodity_code=x.code,
                    commodity_group=ref.commodities[x.code].group,
                    brand=x.brand,
                    pieces=x.pieces,
                    weight_kg=Decimal(x.kg),
                    infringement_type="TRADEMARK",
                    nature="COUNTERFEIT",
                )
                for i, x in enumerate(c.seizures, start=1)
            ]
            s.add(case)
            s.flush()
            ids.append(case.id)
        s.commit()
    return ids
