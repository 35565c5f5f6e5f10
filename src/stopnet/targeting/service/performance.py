"""Performance of targeting: precision of the selected consignments per week, rules' hit and seizure
rates, the models seen."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from stopnet.access.principal import Principal
from stopnet.db.models import Operation
from stopnet.db.models.targeting import (
    Consignment,
    InspectionOutcome,
    InspectionResult,
    SelectionItem,
    TargetingSelection,
)

from ..schemas import (
    PerformanceOut,
    WeekPrecision,
)
from .access import access, target_org
from .rules import _latest_scores, _performance_by_rule, _week
from .scoring import list_models


def performance(
    session: Session, principal: Principal, op: Operation, org_code: str | None = None
) -> PerformanceOut:
    """Precision of the selected consignments per week, and each rule's hits and seizure rate."""
    scope = access(session, principal, op)
    org_clause = scope.clause(Consignment.org_id)
    if org_code:
        org_clause = Consignment.org_id == target_org(session, scope, org_code).id
    latest = (
        select(func.max(TargetingSelection.id))
        .where(TargetingSelection.operation_id == op.id)
        .group_by(TargetingSelection.org_id, TargetingSelection.day)
    ).scalar_subquery()
    rows = session.execute(
        select(TargetingSelection.day, InspectionResult.outcome)
        .join(SelectionItem, SelectionItem.selection_id == TargetingSelection.id)
        .join(Consignment, Consignment.id == SelectionItem.consignment_pk)
        .outerjoin(InspectionResult, InspectionResult.consignment_pk == Consignment.id)
        .where(TargetingSelection.id.in_(latest), SelectionItem.lane == "RED", org_clause)
    ).all()
    weeks: dict[dt.date, list[int]] = defaultdict(lambda: [0, 0, 0])
    for day, outcome in rows:
        cell = weeks[_week(day)]
        cell[0] += 1
        if outcome is not None:
            cell[1] += 1
            cell[2] += outcome is InspectionOutcome.SEIZURE
    week_rows = [
        WeekPrecision(week=w, selected=a, inspected=b, seizures=c, precision=c / b if b else None)
        for w, (a, b, c) in sorted(weeks.items())
    ]
    scored = _latest_scores(session, [Consignment.operation_id == op.id, org_clause])
    return PerformanceOut(
        weeks=week_rows, rules=_performance_by_rule(scored), models=list_models(session, principal, op)
    )
