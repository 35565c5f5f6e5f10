"""Figures of the rights holders' side: requests by state, answer times, brands and seizures."""

from __future__ import annotations

import datetime as dt
import statistics
from collections import defaultdict
from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from stopnet.access import policy
from stopnet.access.principal import Principal
from stopnet.core.errors import Forbidden, NotFound
from stopnet.db.models import (
    Case,
    CaseStatus,
    Operation,
    OrgKind,
    Participant,
    ParticipantRole,
    Role,
    Seizure,
)
from stopnet.db.models.rightsholders import (
    Brand,
    BrandStatus,
    VerificationRequest,
    VerificationStatus,
)

from .. import deadlines
from ..schemas import (
    Outreach,
    OutreachRow,
)
from .access import _require_read, is_private
from .brand_seizures import holder_case_clause, reported_brand_texts
from .brands import org_codes
from .constants import CUSTOMS_ROLES, OutreachScope, _now


def outreach(
    session: Session, principal: Principal, operation: str | None = None, now: dt.datetime | None = None
) -> Outreach:
    """Seizures, requests sent/answered, median response time and overdue requests per brand and
    operation: everything for the coordinating unit, its own brands for a rights holder, its own
    administration's seizures and requests for customs."""
    _require_read(principal)
    at = _now(now)
    ops_q = select(Operation)
    if principal.is_admin:
        scope: OutreachScope = "all"
    elif principal.role is Role.COORDINATOR and not is_private(principal):
        scope = "all"
        ops_q = ops_q.where(
            Operation.id.in_(
                select(Participant.operation_id).where(
                    Participant.org_id == principal.org_id, Participant.role == ParticipantRole.COORDINATOR
                )
            )
        )
    elif principal.org_kind is OrgKind.RIGHTS_HOLDER:
        scope = "own_brands"
        ops_q = ops_q.where(
            Operation.id.in_(select(Participant.operation_id).where(Participant.org_id == principal.org_id))
        )
    elif principal.role in CUSTOMS_ROLES and principal.org_kind is OrgKind.CUSTOMS:
        scope = "own_administration"
        ops_q = ops_q.where(
            Operation.id.in_(select(Participant.operation_id).where(Participant.org_id == principal.org_id))
        )
    else:
        raise Forbidden("outreach figures are for the coordinating unit, rights holders and customs")
    if operation:
        ops_q = ops_q.where(Operation.code == operation.upper())
    ops = {o.id: o for o in session.scalars(ops_q)}
    if operation and not ops:
        raise NotFound(f"no operation with code {operation!r}")
    brand_q = select(Brand).where(Brand.status == BrandStatus.APPROVED)
    if scope == "own_brands":
        brand_q = brand_q.where(Brand.owner_org_id == principal.org_id)
    brands = {b.id: b for b in session.scalars(brand_q)}
    codes = org_codes(session, {b.owner_org_id for b in brands.values()})

    acc: dict[tuple[int, int], _Tally] = defaultdict(_Tally)
    texts = reported_brand_texts(session, list(brands))
    for op_id in ops if texts else ():
        if scope == "all":
            clause = policy.case_read_clause(session, principal, op_id)
        elif scope == "own_brands":
            clause = holder_case_clause([op_id])
        else:
            clause = Case.reporting_org_id == principal.org_id
        agg = session.execute(
            select(Seizure.brand, func.count(), func.sum(Seizure.pieces), func.sum(Seizure.weight_kg))
            .join(Case, Case.id == Seizure.case_id)
            .where(
                Case.operation_id == op_id, Case.status != CaseStatus.DRAFT, Seizure.brand.in_(texts), clause
            )
            .group_by(Seizure.brand)
        ).all()
        for text, n, pieces, kg in agg:
            for bid in texts[text]:
                t = acc[(op_id, bid)]
                t.seizures += int(n)
                t.pieces += int(pieces or 0)
                t.kg += Decimal(kg or 0)
    if ops and brands:
        req_q = select(VerificationRequest).where(
            VerificationRequest.operation_id.in_(ops), VerificationRequest.brand_id.in_(brands)
        )
        if scope == "own_administration":
            req_q = req_q.where(VerificationRequest.requesting_org_id == principal.org_id)
        for req in session.scalars(req_q):
            acc[(req.operation_id, req.brand_id)].add_request(req, at)
    out = [
        t.row(ops[op_id].code, brands[bid], codes[brands[bid].owner_org_id])
        for (op_id, bid), t in sorted(acc.items(), key=lambda kv: (ops[kv[0][0]].code, brands[kv[0][1]].name))
    ]
    total = _Tally()
    for t in acc.values():
        total.merge(t)
    return Outreach(
        scope=scope,
        as_of=at,
        rows=out,
        totals=total.row(operation.upper() if operation else "*", None, "", "all brands"),
    )


@dataclass
class _Tally:
    seizures: int = 0
    pieces: int = 0
    kg: Decimal = Decimal(0)
    sent: int = 0
    answered: int = 0
    open: int = 0
    overdue: int = 0
    late: int = 0
    hours: list[float] | None = None

    def add_request(self, req: VerificationRequest, now: dt.datetime) -> None:
        self.sent += 1
        if req.status is VerificationStatus.ANSWERED and req.answered_at is not None:
            self.answered += 1
            self.hours = [*(self.hours or []), (req.answered_at - req.sent_at).total_seconds() / 3600]
            if req.answered_at > deadlines.end_of_day(req.due_on):
                self.late += 1
        elif req.status is VerificationStatus.OPEN:
            self.open += 1
            if deadlines.is_overdue(req.due_on, now):
                self.overdue += 1

    def merge(self, o: _Tally) -> None:
        self.seizures += o.seizures
        self.pieces += o.pieces
        self.kg += o.kg
        self.sent += o.sent
        self.answered += o.answered
        self.open += o.open
        self.overdue += o.overdue
        self.late += o.late
        self.hours = [*(self.hours or []), *(o.hours or [])]

    def row(self, op_code: str, brand: Brand | None, owner: str, name: str = "") -> OutreachRow:
        return OutreachRow(
            operation=op_code,
            brand_id=brand.id if brand else 0,
            brand=brand.name if brand else name,
            owner_org=owner,
            seizures=self.seizures,
            pieces=self.pieces,
            weight_kg=self.kg,
            requests_sent=self.sent,
            requests_answered=self.answered,
            requests_open=self.open,
            overdue=self.overdue,
            answered_late=self.late,
            median_response_hours=round(statistics.median(self.hours), 1) if self.hours else None,
        )
