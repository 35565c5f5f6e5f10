"""What a case page shows of rights holders: the brands matched and the verification answers."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict

from sqlalchemy.orm import Session

from stopnet.access.principal import Principal
from stopnet.db.models import (
    Case,
)

from ..schemas import (
    CaseBrandLine,
    GuideHit,
    GuideSearch,
)
from .brand_seizures import brands_for_seizures
from .brands import brand_summary, contacts_for, org_codes
from .guides import search_guides


def case_brand_lines(
    session: Session, principal: Principal, case: Case, now: dt.datetime | None = None
) -> list[CaseBrandLine]:
    """For each seizure of a case: the approved brands it names, their published guides and contact
    points for the principal's country. The caller has checked that the principal may read the case."""
    seizures = list(case.seizures)
    matches = brands_for_seizures(session, seizures)
    all_ids = {b.id for bs in matches.values() for b in bs}
    guides: dict[int, list[GuideHit]] = defaultdict(list)
    if all_ids:
        hits, _ = search_guides(session, principal, GuideSearch(), 1, 500, now, brand_ids=all_ids)
        for h in hits:
            if h.brand_id is not None:
                guides[h.brand_id].append(h)
    codes = org_codes(session, {b.owner_org_id for bs in matches.values() for b in bs})
    out = []
    for s in seizures:
        brands = matches.get(s.id, [])
        out.append(
            CaseBrandLine(
                seizure_id=s.id,
                line_no=s.line_no,
                reported_brand=s.brand,
                commodity_code=s.commodity_code,
                hs_code=s.hs_code,
                pieces=s.pieces,
                brands=[brand_summary(session, b, now, codes) for b in brands],
                guides=[h for b in brands for h in guides.get(b.id, [])],
                contacts=[c for b in brands for c in contacts_for(b, principal.country_code, now)],
            )
        )
    return out
