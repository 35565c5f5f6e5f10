"""Risk profiles (rules), versioned: create, edit (a new version), test against stored consignments,
activate, deactivate; each rule's weekly hits, inspections and seizures."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import polars as pl
from sqlalchemy import ColumnElement, and_, func, select
from sqlalchemy.orm import Session

from stopnet.access.principal import Principal
from stopnet.audit.service import record
from stopnet.core.errors import Conflict, FieldError, InvalidInput, NotFound
from stopnet.db.models import Operation, utcnow
from stopnet.db.models.targeting import (
    Consignment,
    ConsignmentScore,
    InspectionOutcome,
    InspectionResult,
    RuleStatus,
    TargetingRule,
    TargetingRuleVersion,
)
from stopnet.risk.rules import Rule, RuleError, compile_expression, compile_rules

from ..schemas import (
    RuleCreate,
    RuleEdit,
    RuleOut,
    RulePerformance,
    RuleTestOut,
    RuleVersionOut,
    RuleWeek,
    SampleHit,
)
from .access import _org_codes, access, target_org
from .consignments import _load_frame
from .constants import RULE_SCHEMA


def _rule_error(e: RuleError) -> InvalidInput:
    where = f" (at position {e.position})" if e.position is not None else ""
    return InvalidInput([FieldError("expression", f"{e.message}{where}")], f"the rule does not compile: {e}")


def check_expression(expression: str) -> None:
    """Parse and type-check a rule against the consignment schema (``InvalidInput`` with the position)."""
    try:
        compile_expression(expression, RULE_SCHEMA, {})
    except RuleError as e:
        raise _rule_error(e) from e


def _version_out(v: TargetingRuleVersion) -> RuleVersionOut:
    return RuleVersionOut(
        version=v.version,
        name=v.name,
        expression=v.expression,
        weight=v.weight,
        note=v.note,
        created_by=v.created_by_label,
        created_at=v.created_at,
        tested_at=v.tested_at,
        test_rows=v.test_rows,
        test_hits=v.test_hits,
        activated_at=v.activated_at,
    )


def _versions(session: Session, rule: TargetingRule) -> list[TargetingRuleVersion]:
    return list(
        session.scalars(
            select(TargetingRuleVersion)
            .where(TargetingRuleVersion.rule_id == rule.id)
            .order_by(TargetingRuleVersion.version.desc())
        )
    )


def _version(session: Session, rule: TargetingRule, version: int | None) -> TargetingRuleVersion:
    n = version or rule.latest_version
    v = session.scalar(
        select(TargetingRuleVersion).where(
            TargetingRuleVersion.rule_id == rule.id, TargetingRuleVersion.version == n
        )
    )
    if v is None:
        raise NotFound(f"rule {rule.code} has no version {n}")
    return v


def rule_out(session: Session, rule: TargetingRule, org_code: str | None = None) -> RuleOut:
    current = _version(session, rule, rule.active_version or rule.latest_version)
    code = org_code or _org_codes(session, [rule.org_id])[rule.org_id]
    return RuleOut(
        id=rule.id,
        code=rule.code,
        org_code=code,
        status=rule.status,
        latest_version=rule.latest_version,
        active_version=rule.active_version,
        current=_version_out(current),
    )


def rule_versions(session: Session, rule: TargetingRule) -> list[RuleVersionOut]:
    return [_version_out(v) for v in _versions(session, rule)]


def list_rules(session: Session, principal: Principal, op: Operation) -> list[RuleOut]:
    scope = access(session, principal, op)
    rules = list(
        session.scalars(
            select(TargetingRule)
            .where(TargetingRule.operation_id == op.id, scope.clause(TargetingRule.org_id))
            .order_by(TargetingRule.org_id, TargetingRule.code)
        )
    )
    codes = _org_codes(session, {r.org_id for r in rules})
    return [rule_out(session, r, codes[r.org_id]) for r in rules]


def get_rule(
    session: Session, principal: Principal, op: Operation, rule_id: int, *, write: bool = False
) -> TargetingRule:
    scope = access(session, principal, op, write=write)
    rule = session.get(TargetingRule, rule_id)
    if (
        rule is None
        or rule.operation_id != op.id
        or (scope.org_ids is not None and rule.org_id not in scope.org_ids)
    ):
        raise NotFound(f"no rule {rule_id} in {op.code}")
    return rule


def create_rule(session: Session, principal: Principal, op: Operation, data: RuleCreate) -> TargetingRule:
    scope = access(session, principal, op, write=True)
    org = target_org(session, scope, data.org_code)
    code = data.code.upper()
    try:
        Rule(id=code, name=data.name, expression=data.expression, weight=data.weight)
    except RuleError as e:
        raise InvalidInput([FieldError("code", e.message)]) from e
    check_expression(data.expression)
    if session.scalar(
        select(TargetingRule.id).where(
            TargetingRule.operation_id == op.id, TargetingRule.org_id == org.id, TargetingRule.code == code
        )
    ):
        raise Conflict(f"{org.code} already has a rule {code}; edit it to write a new version")
    rule = TargetingRule(
        operation_id=op.id, org_id=org.id, code=code, status=RuleStatus.DRAFT, latest_version=1
    )
    session.add(rule)
    session.flush()
    session.add(
        TargetingRuleVersion(
            rule_id=rule.id,
            version=1,
            name=data.name,
            expression=data.expression,
            weight=data.weight,
            note=data.note,
            created_by_id=principal.user_id,
            created_by_label=principal.label,
        )
    )
    record(session, principal, "targeting.rule.create", "tgt_rule", rule.id, {"code": code, "org": org.code})
    session.flush()
    return rule


def edit_rule(
    session: Session, principal: Principal, op: Operation, rule_id: int, data: RuleEdit
) -> TargetingRuleVersion:
    """Write the next version (earlier versions are kept; the active version stays until activation)."""
    rule = get_rule(session, principal, op, rule_id, write=True)
    check_expression(data.expression)
    latest = _version(session, rule, None)
    if (latest.name, latest.expression, latest.weight) == (data.name, data.expression, data.weight):
        raise Conflict(f"version {latest.version} of {rule.code} already says exactly this")
    rule.latest_version += 1
    v = TargetingRuleVersion(
        rule_id=rule.id,
        version=rule.latest_version,
        name=data.name,
        expression=data.expression,
        weight=data.weight,
        note=data.note,
        created_by_id=principal.user_id,
        created_by_label=principal.label,
    )
    session.add(v)
    record(
        session,
        principal,
        "targeting.rule.version",
        "tgt_rule",
        rule.id,
        {"code": rule.code, "version": v.version},
    )
    session.flush()
    return v


def test_rule(
    session: Session,
    principal: Principal,
    op: Operation,
    rule_id: int,
    version: int | None = None,
    since: dt.date | None = None,
    sample_size: int = 10,
) -> RuleTestOut:
    """Run a version against the administration's stored consignments: hits, and how inspections went."""
    rule = get_rule(session, principal, op, rule_id, write=True)
    v = _version(session, rule, version)
    where = [Consignment.operation_id == op.id, Consignment.org_id == rule.org_id]
    if since is not None:
        where.append(Consignment.arrival_date >= since)
    frame, _ = _load_frame(session, where)
    try:
        compiled = compile_rules(
            [Rule(rule.code, v.name, v.expression, v.version, v.weight)], RULE_SCHEMA, {}
        )
    except RuleError as e:
        raise _rule_error(e) from e
    hit = compiled.evaluate(frame).matrix[:, 0] if frame.height else np.zeros(0, dtype=bool)
    hits = frame.filter(pl.Series(hit)) if frame.height else frame
    inspected = int(hits.get_column("inspected").sum()) if hits.height else 0
    seizures = int(hits.get_column("seized").fill_null(False).sum()) if hits.height else 0
    sample = [
        SampleHit(
            consignment_id=r["consignment_id"],
            arrival_date=r["arrival_date"],
            channel=r["channel"],
            origin_country=r["origin_country"],
            destination_country=r["destination_country"],
            hs_code=r["hs_code"],
            description=r["description"],
            declared_value=r["declared_value"],
            currency=r["currency"],
            inspection=None
            if not r["inspected"]
            else (InspectionOutcome.SEIZURE if r["seized"] else InspectionOutcome.NOTHING_FOUND),
        )
        for r in hits.sort("declared_at", descending=True).head(sample_size).iter_rows(named=True)
    ]
    v.tested_at = utcnow()
    v.test_rows = frame.height
    v.test_hits = hits.height
    record(
        session,
        principal,
        "targeting.rule.test",
        "tgt_rule",
        rule.id,
        {"code": rule.code, "version": v.version, "rows": frame.height, "hits": hits.height},
    )
    session.flush()
    return RuleTestOut(
        rule=rule.code,
        version=v.version,
        rows=frame.height,
        hits=hits.height,
        hit_rate=hits.height / frame.height if frame.height else None,
        inspected_hits=inspected,
        seizures=seizures,
        seizure_rate=seizures / inspected if inspected else None,
        sample=sample,
    )


def activate_rule(
    session: Session, principal: Principal, op: Operation, rule_id: int, version: int | None = None
) -> TargetingRule:
    rule = get_rule(session, principal, op, rule_id, write=True)
    v = _version(session, rule, version)
    if v.tested_at is None:
        raise Conflict(
            f"test version {v.version} of {rule.code} against the stored consignments before activating it"
        )
    rule.status = RuleStatus.ACTIVE
    rule.active_version = v.version
    v.activated_at = utcnow()
    record(
        session,
        principal,
        "targeting.rule.activate",
        "tgt_rule",
        rule.id,
        {"code": rule.code, "version": v.version},
    )
    session.flush()
    return rule


def deactivate_rule(session: Session, principal: Principal, op: Operation, rule_id: int) -> TargetingRule:
    rule = get_rule(session, principal, op, rule_id, write=True)
    if rule.status is not RuleStatus.ACTIVE:
        raise Conflict(f"rule {rule.code} is not active")
    previous = rule.active_version
    rule.status = RuleStatus.INACTIVE
    rule.active_version = None
    record(
        session,
        principal,
        "targeting.rule.deactivate",
        "tgt_rule",
        rule.id,
        {"code": rule.code, "version": previous},
    )
    session.flush()
    return rule


def active_rules(session: Session, op_id: int, org_id: int) -> list[Rule]:
    rows = session.execute(
        select(TargetingRule.code, TargetingRuleVersion)
        .join(
            TargetingRuleVersion,
            and_(
                TargetingRuleVersion.rule_id == TargetingRule.id,
                TargetingRuleVersion.version == TargetingRule.active_version,
            ),
        )
        .where(
            TargetingRule.operation_id == op_id,
            TargetingRule.org_id == org_id,
            TargetingRule.status == RuleStatus.ACTIVE,
        )
        .order_by(TargetingRule.code)
    ).all()
    return [Rule(code, v.name, v.expression, v.version, v.weight) for code, v in rows]


def _week(d: dt.date) -> dt.date:
    return d - dt.timedelta(days=d.weekday())


def _latest_scores(
    session: Session, where: Sequence[ColumnElement[bool]]
) -> list[tuple[Consignment, ConsignmentScore, InspectionOutcome | None]]:
    latest = (
        select(ConsignmentScore.consignment_pk, func.max(ConsignmentScore.id).label("sid"))
        .group_by(ConsignmentScore.consignment_pk)
        .subquery()
    )
    rows = session.execute(
        select(Consignment, ConsignmentScore, InspectionResult.outcome)
        .join(latest, latest.c.consignment_pk == Consignment.id)
        .join(ConsignmentScore, ConsignmentScore.id == latest.c.sid)
        .outerjoin(InspectionResult, InspectionResult.consignment_pk == Consignment.id)
        .where(*where)
    ).all()
    return [(c, s, o) for c, s, o in rows]


def _performance_by_rule(
    rows: Sequence[tuple[Consignment, ConsignmentScore, InspectionOutcome | None]],
    codes: Iterable[str] | None = None,
) -> list[RulePerformance]:
    weeks: dict[str, dict[dt.date, list[Any]]] = defaultdict(lambda: defaultdict(lambda: [set(), 0, 0, 0]))
    for c, s, outcome in rows:
        for h in s.rule_hits or []:
            cell = weeks[h["rule"]][_week(c.arrival_date)]
            cell[0].add(int(h["version"]))
            cell[1] += 1
            if outcome is not None:
                cell[2] += 1
                cell[3] += outcome is InspectionOutcome.SEIZURE
    out = []
    for code in sorted(set(weeks) | set(codes or ())):
        items = [
            RuleWeek(
                week=w,
                versions=sorted(cell[0]),
                hits=cell[1],
                inspections=cell[2],
                seizures=cell[3],
                seizure_rate=cell[3] / cell[2] if cell[2] else None,
            )
            for w, cell in sorted(weeks[code].items())
        ]
        hits, insp, seiz = (
            sum(i.hits for i in items),
            sum(i.inspections for i in items),
            sum(i.seizures for i in items),
        )
        out.append(
            RulePerformance(
                rule=code,
                weeks=items,
                hits=hits,
                inspections=insp,
                seizures=seiz,
                seizure_rate=seiz / insp if insp else None,
            )
        )
    return out


def rule_performance(session: Session, principal: Principal, op: Operation, rule_id: int) -> RulePerformance:
    """Hits, inspections and seizure rate of a rule per week, from the stored scores (which name versions)."""
    rule = get_rule(session, principal, op, rule_id)
    rows = _latest_scores(session, [Consignment.operation_id == op.id, Consignment.org_id == rule.org_id])
    perf = [p for p in _performance_by_rule(rows, [rule.code]) if p.rule == rule.code]
    return perf[0]
