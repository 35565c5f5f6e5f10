"""The day's selection within capacity: scored, stored with every consignment's lane and reason."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

import numpy as np
import polars as pl
from sqlalchemy import func, insert, select
from sqlalchemy.orm import Session

from stopnet.access.principal import Principal
from stopnet.audit.service import record
from stopnet.core.errors import FieldError, InvalidInput, NotFound
from stopnet.db.models import Operation
from stopnet.db.models.targeting import (
    Consignment,
    ConsignmentScore,
    InspectionResult,
    SelectionItem,
    TargetingSelection,
)

from ..schemas import (
    Contribution,
    RuleHitOut,
    SelectionIn,
    SelectionOut,
    SelectionRow,
)
from .access import _org_codes, access, target_org
from .constants import ALERT_THRESHOLD
from .scoring import _score_and_store


def run_selection(
    session: Session, principal: Principal, op: Operation, data: SelectionIn
) -> TargetingSelection:
    """Score the day's consignments of one administration and select within capacity (stored)."""
    from stopnet.risk.selection import LANES, REASONS, Capacity, select_for_inspection

    scope = access(session, principal, op, write=True)
    org = target_org(session, scope, data.org_code)
    try:
        capacity = Capacity.parse(data.capacity)
    except ValueError as e:
        raise InvalidInput([FieldError("capacity", str(e))]) from e
    if "day" in capacity.per:
        capacity = Capacity(
            count=capacity.count, share=capacity.share, per=tuple(p for p in capacity.per if p != "day")
        )
    where = [
        Consignment.operation_id == op.id,
        Consignment.org_id == org.id,
        Consignment.arrival_date == data.day,
    ]
    pks, score_ids, batch, rules, frame = _score_and_store(session, op, org.id, where)
    if not pks:
        raise InvalidInput([FieldError("day", f"no consignment of {org.code} arrives on {data.day}")])
    codes = [r.id for r in rules]
    matrix = np.zeros((len(pks), len(codes)), dtype=bool)
    for i, hits in enumerate(batch.hits):
        for h in hits:
            matrix[i, codes.index(h["rule"])] = True
    sel = select_for_inspection(
        batch.scores,
        capacity,
        rule_hits=matrix if codes else None,
        rule_weights=np.array([r.weight for r in rules]) if codes else None,
        groups=frame.select(pl.col("office")),
        exploration_share=data.exploration_share,
        alert_threshold=ALERT_THRESHOLD,
        seed=data.seed,
    )
    selection = TargetingSelection(
        operation_id=op.id,
        org_id=org.id,
        day=data.day,
        capacity=capacity.describe(),
        exploration_share=data.exploration_share,
        seed=data.seed,
        model_version=batch.model_version,
        n_consignments=len(pks),
        n_selected=sel.n_selected,
        created_by_label=principal.label,
    )
    session.add(selection)
    session.flush()
    session.execute(
        insert(SelectionItem),
        [
            {
                "selection_id": selection.id,
                "consignment_pk": pk,
                "score_id": score_ids[i],
                "lane": LANES[int(sel.lane[i])],
                "reason": REASONS[int(sel.reason[i])] if sel.selected[i] else None,
            }
            for i, pk in enumerate(pks)
        ],
    )
    record(
        session,
        principal,
        "targeting.selection",
        "tgt_selection",
        selection.id,
        {"org": org.code, "day": str(data.day), "capacity": selection.capacity, "selected": sel.n_selected},
    )
    session.flush()
    return selection


def latest_selections(
    session: Session, principal: Principal, op: Operation, day: dt.date, org_code: str | None = None
) -> list[TargetingSelection]:
    scope = access(session, principal, op)
    where = [
        TargetingSelection.operation_id == op.id,
        TargetingSelection.day == day,
        scope.clause(TargetingSelection.org_id),
    ]
    if org_code:
        where.append(TargetingSelection.org_id == target_org(session, scope, org_code).id)
    latest = (
        select(func.max(TargetingSelection.id)).where(*where).group_by(TargetingSelection.org_id)
    ).scalar_subquery()
    return list(
        session.scalars(
            select(TargetingSelection)
            .where(TargetingSelection.id.in_(latest))
            .order_by(TargetingSelection.org_id)
        )
    )


def get_selection(
    session: Session, principal: Principal, op: Operation, selection_id: int
) -> TargetingSelection:
    scope = access(session, principal, op)
    s = session.get(TargetingSelection, selection_id)
    if s is None or s.operation_id != op.id or (scope.org_ids is not None and s.org_id not in scope.org_ids):
        raise NotFound(f"no selection {selection_id} in {op.code}")
    return s


def selection_out(
    session: Session,
    selection: TargetingSelection,
    lanes: Sequence[str] = ("RED", "AMBER", "GREEN"),
    limit: int = 500,
) -> SelectionOut:
    rows = session.execute(
        select(SelectionItem, Consignment, ConsignmentScore, InspectionResult.outcome)
        .join(Consignment, Consignment.id == SelectionItem.consignment_pk)
        .outerjoin(ConsignmentScore, ConsignmentScore.id == SelectionItem.score_id)
        .outerjoin(InspectionResult, InspectionResult.consignment_pk == Consignment.id)
        .where(SelectionItem.selection_id == selection.id)
    ).all()
    counts = {"RED": 0, "AMBER": 0, "GREEN": 0}
    for item, *_ in rows:
        counts[item.lane] = counts.get(item.lane, 0) + 1
    order = {"RED": 0, "AMBER": 1, "GREEN": 2}
    shown = sorted(
        (r for r in rows if r[0].lane in lanes),
        key=lambda r: (
            order.get(r[0].lane, 3),
            -(r[2].score if r[2] and r[2].score is not None else -1.0),
            r[1].consignment_id,
        ),
    )[:limit]
    out_rows = [
        SelectionRow(
            consignment_id=c.consignment_id,
            office=c.office,
            channel=c.channel,
            origin_country=c.origin_country,
            hs_code=c.hs_code,
            description=c.description,
            declared_value=c.declared_value,
            currency=c.currency,
            score=s.score if s else None,
            lane=item.lane,
            reason=item.reason,
            rule_hits=[RuleHitOut(**h) for h in (s.rule_hits if s else [])],
            explanation=[Contribution(**e) for e in (s.explanation if s else [])],
            inspection=outcome,
        )
        for item, c, s, outcome in shown
    ]
    return SelectionOut(
        id=selection.id,
        org_code=_org_codes(session, [selection.org_id])[selection.org_id],
        day=selection.day,
        capacity=selection.capacity,
        exploration_share=selection.exploration_share,
        model_version=selection.model_version,
        n_consignments=selection.n_consignments,
        n_selected=selection.n_selected,
        created_by=selection.created_by_label,
        created_at=selection.created_at,
        lanes=counts,
        rows=out_rows,
    )
