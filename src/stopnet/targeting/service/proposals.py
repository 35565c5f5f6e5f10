"""Rules proposed from rising seizures (route x category) and inspection results; accepted as new rule
versions or dismissed."""

from __future__ import annotations

import datetime as dt
import math
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from sqlalchemy import and_, select
from sqlalchemy.orm import Session

from stopnet.access.policy import case_read_clause
from stopnet.access.principal import Principal
from stopnet.audit.service import record
from stopnet.core.errors import Conflict, NotFound
from stopnet.db.models import Case, Operation, Seizure, utcnow
from stopnet.db.models.targeting import (
    Consignment,
    InspectionOutcome,
    InspectionResult,
    ProposalStatus,
    RuleProposal,
    RuleStatus,
    TargetingRule,
    TargetingRuleVersion,
)

from ..schemas import (
    ProposalOut,
    ProposeIn,
    RuleCreate,
    RuleEdit,
)
from .access import _org_codes, access, target_org
from .constants import PROPOSAL_TEST
from .rules import _version, create_rule, edit_rule, get_rule


def _hs_category() -> tuple[list[tuple[str, str]], dict[str, list[str]], dict[str, str]]:
    from stopnet.reference import get_reference

    ref = get_reference()
    prefixes: list[tuple[str, str]] = []
    by_group: dict[str, list[str]] = defaultdict(list)
    commodity_group: dict[str, str] = {}
    for c in ref.commodities.values():
        commodity_group[c.code] = str(c.group)
        for p in c.hs_prefixes:
            prefixes.append((p, str(c.group)))
            by_group[str(c.group)].append(p)
    prefixes.sort(key=lambda t: -len(t[0]))
    for g, ps in by_group.items():
        kept = sorted(set(ps), key=len)
        minimal = [p for i, p in enumerate(kept) if not any(p.startswith(q) for q in kept[:i])]
        by_group[g] = sorted(minimal)
    return prefixes, dict(by_group), commodity_group


def category_of(hs_code: str, prefixes: Sequence[tuple[str, str]]) -> str:
    for p, g in prefixes:
        if hs_code.startswith(p):
            return g
    return "other"


def propose(
    session: Session, principal: Principal, op: Operation, data: ProposeIn, today: dt.date
) -> list[RuleProposal]:
    """Propose rules for routes (origin -> destination) x commodity groups whose seizures rose.

    Two sources, each tested (see :data:`PROPOSAL_TEST`): the seizures of the reporting module the
    principal may read (an origin x category taking a larger share of recent seizures, wherever they were
    bound: proposed as the route from that origin to the administration's country), and the
    administration's own inspection results (a higher seizure rate recently than in the baseline).
    The windows end on ``data.today``; without it, the inspections' window ends today and the seizure
    reports' on the operation's last day once it is over (its reports stop there), so an operation that
    has ended still proposes from its own seizures.
    """
    from stopnet.core.trends import benjamini_hochberg, detect_trends, fisher_greater

    scope = access(session, principal, op, write=True)
    org = target_org(session, scope, data.org_code)
    day = data.today or today
    recent_from = day - dt.timedelta(days=data.recent_days - 1)
    base_from = recent_from - dt.timedelta(days=data.baseline_days)
    reports_day = day if data.today else max(min(day, op.ends_on), op.starts_on)
    reports_recent_from = reports_day - dt.timedelta(days=data.recent_days - 1)
    reports_base_from = reports_recent_from - dt.timedelta(days=data.baseline_days)
    prefixes, by_group, commodity_group = _hs_category()

    # 1. seizure reports (through the case visibility clause)
    clause = case_read_clause(session, principal, op.id)
    rows = session.execute(
        select(Case.detected_on, Case.origin_country, Case.destination_country, Seizure.commodity_group)
        .join(Seizure, Seizure.case_id == Case.id)
        .where(
            Case.operation_id == op.id,
            clause,
            Case.detected_on >= reports_base_from,
            Case.detected_on <= reports_day,
        )
    ).all()
    counts: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0])
    total = [0, 0]
    # the administration targets what arrives in its country: a rise from an origin anywhere in the
    # operation is tested as the route from that origin to it
    home = org.country_code
    for detected, origin, dest, group in rows:
        if not origin or not (dest or home):
            continue
        dest = home or dest
        window = 1 if detected >= reports_recent_from else 0
        counts[("route_category", f"{origin}>{dest}:{group}")][window] += 1
        total[window] += 1
    report_tests = {
        r.code: r
        for r in detect_trends(
            {key: (v[0], v[1]) for key, v in counts.items()},
            total[0],
            total[1],
            alpha=data.alpha,
            min_ratio=data.min_ratio,
        )
    }

    # 2. inspection results of the administration
    insp = session.execute(
        select(
            Consignment.origin_country,
            Consignment.destination_country,
            Consignment.hs_code,
            InspectionResult.outcome,
            InspectionResult.commodity_code,
            InspectionResult.inspected_on,
        )
        .join(InspectionResult, InspectionResult.consignment_pk == Consignment.id)
        .where(
            Consignment.operation_id == op.id,
            Consignment.org_id == org.id,
            InspectionResult.inspected_on >= base_from,
            InspectionResult.inspected_on <= day,
        )
    ).all()
    cells: dict[str, list[int]] = defaultdict(
        lambda: [0, 0, 0, 0]
    )  # recent seized, recent not, base seized, base not
    for origin, dest, hs_code, outcome, code, on in insp:
        group = commodity_group.get(code or "", "") or category_of(hs_code, prefixes)
        cell = cells[f"{origin}>{dest}:{group}"]
        seized = outcome is InspectionOutcome.SEIZURE
        cell[(0 if on >= recent_from else 2) + (0 if seized else 1)] += 1
    tested = [(k, v) for k, v in cells.items() if v[0] + v[2] >= 5]
    p_values = [fisher_greater(*v) for _, v in tested]
    q_values = benjamini_hochberg(p_values)
    insp_tests: dict[str, dict[str, Any]] = {}
    for (cell_key, v), p_value, q in zip(tested, p_values, q_values, strict=True):
        recent_rate = v[0] / (v[0] + v[1]) if v[0] + v[1] else 0.0
        base_rate = v[2] / (v[2] + v[3]) if v[2] + v[3] else 0.0
        ratio = (recent_rate + 1e-9) / (base_rate + 1e-9) if base_rate else math.inf
        insp_tests[cell_key] = {
            "recent_seizures": v[0],
            "recent_inspections": v[0] + v[1],
            "baseline_seizures": v[2],
            "baseline_inspections": v[2] + v[3],
            "recent_rate": round(recent_rate, 4),
            "baseline_rate": round(base_rate, 4),
            "p_value": p_value,
            "q_value": q,
            "flagged": q <= data.alpha and ratio >= data.min_ratio,
        }

    flagged = {k for k, r in report_tests.items() if r.flagged} | {
        k for k, t in insp_tests.items() if t["flagged"]
    }
    existing = active_rule_versions(session, op.id, org.id)
    proposals: list[RuleProposal] = []
    for key in sorted(flagged):
        route, group = key.split(":", 1)
        origin, dest = route.split(">", 1)
        evidence: dict[str, Any] = {
            "test": PROPOSAL_TEST,
            "window": {"recent_from": str(recent_from), "baseline_from": str(base_from), "until": str(day)},
        }
        if key in report_tests:
            evidence["reports_window"] = {
                "recent_from": str(reports_recent_from),
                "baseline_from": str(reports_base_from),
                "until": str(reports_day),
            }
            r = report_tests[key]
            evidence["seizure_reports"] = {
                "before": r.before,
                "after": r.after,
                "share_before": round(r.share_before, 4),
                "share_after": round(r.share_after, 4),
                "rate_ratio": round(r.rate_ratio, 3),
                "p_value": r.p_value,
                "q_value": r.q_value,
                "flagged": r.flagged,
            }
        if key in insp_tests:
            evidence["inspections"] = insp_tests[key]
        hs = by_group.get(group, [])
        expression = f'origin_country == "{origin}" and destination_country == "{dest}"'
        if hs:
            expression += f' and hs_code ~ "^({"|".join(hs)})"'
        kind, weight, rule_id = "new", 1.0, None
        for rule, version in existing:
            text = version.expression
            if f'"{origin}"' in text and f'"{dest}"' in text and (not hs or any(p in text for p in hs)):
                kind, weight, rule_id, expression = "change", version.weight + 1.0, rule.id, text
                break
        open_one = session.scalar(
            select(RuleProposal).where(
                RuleProposal.operation_id == op.id,
                RuleProposal.org_id == org.id,
                RuleProposal.status == ProposalStatus.OPEN,
                RuleProposal.origin_country == origin,
                RuleProposal.destination_country == dest,
                RuleProposal.commodity_group == group,
            )
        )
        if open_one is not None:
            open_one.evidence, open_one.expression, open_one.kind = evidence, expression, kind
            open_one.weight, open_one.rule_id = weight, rule_id
            proposals.append(open_one)
            continue
        proposal = RuleProposal(
            operation_id=op.id,
            org_id=org.id,
            kind=kind,
            origin_country=origin,
            destination_country=dest,
            commodity_group=group,
            expression=expression,
            weight=weight,
            rule_id=rule_id,
            evidence=evidence,
        )
        session.add(proposal)
        proposals.append(proposal)
    record(
        session,
        principal,
        "targeting.propose",
        "operation",
        op.code,
        {"org": org.code, "proposals": len(proposals)},
    )
    session.flush()
    return proposals


def active_rule_versions(
    session: Session, op_id: int, org_id: int
) -> list[tuple[TargetingRule, TargetingRuleVersion]]:
    rows = session.execute(
        select(TargetingRule, TargetingRuleVersion)
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
    return [(r, v) for r, v in rows]


def list_proposals(
    session: Session, principal: Principal, op: Operation, status: ProposalStatus | None = None
) -> list[ProposalOut]:
    scope = access(session, principal, op)
    stmt = select(RuleProposal).where(RuleProposal.operation_id == op.id, scope.clause(RuleProposal.org_id))
    if status is not None:
        stmt = stmt.where(RuleProposal.status == status)
    items = list(session.scalars(stmt.order_by(RuleProposal.id.desc())))
    return [proposal_out(session, p) for p in items]


def proposal_out(session: Session, p: RuleProposal) -> ProposalOut:
    codes = _org_codes(session, [p.org_id])
    rule = session.get(TargetingRule, p.rule_id) if p.rule_id else None
    return ProposalOut(
        id=p.id,
        org_code=codes[p.org_id],
        kind=p.kind,
        origin_country=p.origin_country,
        destination_country=p.destination_country,
        commodity_group=p.commodity_group,
        expression=p.expression,
        weight=p.weight,
        rule=rule.code if rule else None,
        evidence=p.evidence,
        status=p.status,
        decided_by=p.decided_by_label,
        decided_at=p.decided_at,
        created_at=p.created_at,
    )


def _proposal(session: Session, principal: Principal, op: Operation, proposal_id: int) -> RuleProposal:
    scope = access(session, principal, op, write=True)
    p = session.get(RuleProposal, proposal_id)
    if p is None or p.operation_id != op.id or (scope.org_ids is not None and p.org_id not in scope.org_ids):
        raise NotFound(f"no proposal {proposal_id} in {op.code}")
    if p.status is not ProposalStatus.OPEN:
        raise Conflict(f"proposal {proposal_id} is already {p.status.value}")
    return p


def accept_proposal(
    session: Session, principal: Principal, op: Operation, proposal_id: int
) -> tuple[RuleProposal, TargetingRule]:
    """Accept: a new rule (draft, version 1) or a new version of the rule it changes (not active yet)."""
    p = _proposal(session, principal, op, proposal_id)
    org_code = _org_codes(session, [p.org_id])[p.org_id]
    note = f"from proposal #{p.id} ({p.origin_country}->{p.destination_country}, {p.commodity_group})"
    name = f"{p.commodity_group} from {p.origin_country} to {p.destination_country}"
    if p.kind == "change" and p.rule_id is not None:
        rule = get_rule(session, principal, op, p.rule_id, write=True)
        latest = _version(session, rule, None)
        edit_rule(
            session,
            principal,
            op,
            rule.id,
            RuleEdit(name=latest.name, expression=p.expression, weight=p.weight, note=note),
        )
    else:
        code = f"P{p.id}-{p.origin_country}{p.destination_country}-{p.commodity_group}".upper()
        rule = create_rule(
            session,
            principal,
            op,
            RuleCreate(
                code=code, name=name, expression=p.expression, weight=p.weight, note=note, org_code=org_code
            ),
        )
    p.status = ProposalStatus.ACCEPTED
    p.rule_id = rule.id
    p.decided_by_label = principal.label
    p.decided_at = utcnow()
    record(session, principal, "targeting.proposal.accept", "tgt_proposal", p.id, {"rule": rule.code})
    session.flush()
    return p, rule


def dismiss_proposal(session: Session, principal: Principal, op: Operation, proposal_id: int) -> RuleProposal:
    p = _proposal(session, principal, op, proposal_id)
    p.status = ProposalStatus.DISMISSED
    p.decided_by_label = principal.label
    p.decided_at = utcnow()
    record(session, principal, "targeting.proposal.dismiss", "tgt_proposal", p.id)
    session.flush()
    return p
