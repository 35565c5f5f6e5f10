"""Risk targeting on stored data: consignments, versioned risk profiles, scoring, the day's selection,
inspection results, retraining and rule proposals.

The pure engine (``stopnet.risk``) does the statistics; this module stores, authorises and audits.
Every function takes the acting :class:`Principal` and checks it:

* customs officers and national contact points of an administration taking part in the operation as a
  member see and change their administration's consignments, rules and selections only;
* the operation's coordinator (and platform administrators) see every administration's; they act for
  one administration by naming it (``org_code``);
* rights holders, partner agencies and regional analysts see nothing of it (403).

Services flush, never commit.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import math
import threading
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
from sqlalchemy import ColumnElement, and_, func, insert, or_, select, true
from sqlalchemy.orm import Session

from stopnet.access.policy import case_read_clause, participation
from stopnet.access.principal import Principal
from stopnet.audit.service import record
from stopnet.core.errors import Conflict, FieldError, Forbidden, InvalidInput, NotFound
from stopnet.db.models import Case, Operation, Organisation, OrgKind, ParticipantRole, Role, Seizure, utcnow
from stopnet.db.models.rightsholders import VerificationAnswer, VerificationRequest
from stopnet.db.models.targeting import (
    Consignment,
    ConsignmentScore,
    InspectionOutcome,
    InspectionResult,
    ProposalStatus,
    RuleProposal,
    RuleStatus,
    SelectionItem,
    TargetingModel,
    TargetingRule,
    TargetingRuleVersion,
    TargetingSelection,
)
from stopnet.risk.consignments import (
    CONSIGNMENT_LABEL_SCHEMA,
    CONSIGNMENT_SCHEMA,
    ConsignmentSchemaError,
    coerce_consignments,
    consignment_frame,
    consignment_row,
    pseudonymise,
    pseudonymise_series,
)
from stopnet.risk.rules import CompiledRules, Rule, RuleError, compile_expression, compile_rules

from .schemas import (
    ConsignmentOut,
    Contribution,
    IngestOut,
    InspectionIn,
    InspectionOut,
    ModelOut,
    PerformanceOut,
    ProposalOut,
    ProposeIn,
    RetrainOut,
    RuleCreate,
    RuleEdit,
    RuleHitOut,
    RuleOut,
    RulePerformance,
    RuleTestOut,
    RuleVersionOut,
    RuleWeek,
    SampleHit,
    ScoreOut,
    ScoreRunOut,
    SelectionIn,
    SelectionOut,
    SelectionRow,
    WeekPrecision,
)

#: Fields a rule may use: the consignment schema and the inspection labels.
RULE_SCHEMA: dict[str, pl.DataType] = {**CONSIGNMENT_SCHEMA, **CONSIGNMENT_LABEL_SCHEMA}
CONSIGNMENT_FIELDS: tuple[str, ...] = tuple(CONSIGNMENT_SCHEMA)
ALERT_THRESHOLD = 0.5
EXPLAIN_TOP_K = 3
PROPOSAL_TEST = (
    "seizure reports: one-sided exact conditional binomial test of two Poisson rates (exposure = all "
    "seizures visible in each window); inspections: one-sided Fisher exact test of the seizure rate "
    "(recent against baseline); Benjamini-Hochberg adjusted over every route x category tested"
)
_STAFF_ROLES = (Role.OFFICER, Role.CONTACT_POINT)


# ------------------------------------------------------------------------------------------ access


@dataclass(frozen=True)
class Scope:
    """What ``principal`` may reach in one operation: ``org_ids`` None means every administration."""

    op: Operation
    principal: Principal
    org_ids: frozenset[int] | None

    @property
    def is_coordinator(self) -> bool:
        return self.org_ids is None

    def clause(self, column: Any) -> ColumnElement[bool]:
        return true() if self.org_ids is None else column.in_(self.org_ids)


def access(session: Session, principal: Principal, op: Operation, *, write: bool = False) -> Scope:
    """Authorise ``principal`` for the operation's targeting data (403 for every other role)."""
    if principal.role in (Role.RIGHTS_HOLDER, Role.PARTNER, Role.ANALYST):
        raise Forbidden(
            "risk targeting data (consignments, rules, selections) is for customs administrations"
        )
    scope_name = "cases:write" if write else "cases:read"
    if not principal.has_scope(scope_name):
        raise Forbidden(f"this API token lacks the scope {scope_name}")
    role = participation(session, principal, op.id)
    if principal.role is Role.ADMIN or (
        principal.role is Role.COORDINATOR and role is ParticipantRole.COORDINATOR
    ):
        return Scope(op, principal, None)
    if (
        principal.role in _STAFF_ROLES
        and principal.org_kind is OrgKind.CUSTOMS
        and role is ParticipantRole.MEMBER
    ):
        return Scope(op, principal, frozenset({principal.org_id}))
    raise Forbidden(f"{principal.org_code} has no access to risk targeting in {op.code}")


def target_org(session: Session, scope: Scope, org_code: str | None) -> Organisation:
    """The administration an action is for: one's own, or (coordinator) the one named."""
    if org_code is None or org_code.strip() == "":
        if not scope.is_coordinator:
            return session.get_one(Organisation, scope.principal.org_id)
        raise InvalidInput([FieldError("org_code", "name the administration (the coordinator acts for one)")])
    org = session.scalar(select(Organisation).where(Organisation.code == org_code.strip().upper()))
    if org is None or participation_of(session, org.id, scope.op.id) is not ParticipantRole.MEMBER:
        raise InvalidInput(
            [FieldError("org_code", f"{org_code!r} is not an administration of {scope.op.code}")]
        )
    if scope.org_ids is not None and org.id not in scope.org_ids:
        raise Forbidden("an administration sees and changes only its own targeting data")
    return org


def participation_of(session: Session, org_id: int, op_id: int) -> ParticipantRole | None:
    from stopnet.db.models import Participant

    return session.scalar(
        select(Participant.role).where(Participant.operation_id == op_id, Participant.org_id == org_id)
    )


def member_orgs(session: Session, scope: Scope) -> list[Organisation]:
    """Administrations the principal may choose from (its own, or every member for the coordinator)."""
    from stopnet.db.models import Participant

    stmt = (
        select(Organisation)
        .join(Participant, Participant.org_id == Organisation.id)
        .where(Participant.operation_id == scope.op.id, Participant.role == ParticipantRole.MEMBER)
        .order_by(Organisation.code)
    )
    if scope.org_ids is not None:
        stmt = stmt.where(Organisation.id.in_(scope.org_ids))
    return list(session.scalars(stmt))


def _org_codes(session: Session, ids: Iterable[int]) -> dict[int, str]:
    ids = set(ids)
    if not ids:
        return {}
    return dict(
        session.execute(select(Organisation.id, Organisation.code).where(Organisation.id.in_(ids))).all()
    )


# ------------------------------------------------------------------------------------------ pseudonyms


def org_key(master: bytes, org_code: str) -> bytes:
    """The administration's pseudonymisation key, derived from the platform's master key."""
    return hmac.digest(master, b"stopnet-consignment-pseudonym:" + org_code.upper().encode(), "sha256")


def _pseudonymise_frame(frame: pl.DataFrame, key: bytes) -> pl.DataFrame:
    for party in ("sender", "consignee"):
        name_col, id_col = f"{party}_name", f"{party}_id"
        if name_col in frame.columns:
            if id_col in frame.columns:
                raise InvalidInput(
                    [
                        FieldError(
                            name_col, f"give either {name_col} (pseudonymised here) or {id_col}, not both"
                        )
                    ]
                )
            frame = frame.with_columns(
                pseudonymise_series(frame.get_column(name_col), key).alias(id_col)
            ).drop(name_col)
    return frame


# ------------------------------------------------------------------------------------------ consignments


def _schema_error(e: ConsignmentSchemaError, what: str = "consignments") -> InvalidInput:
    return InvalidInput([FieldError(e.column or "file", e.reason)], f"the {what} do not fit the schema: {e}")


def ingest_frame(
    session: Session,
    principal: Principal,
    op: Operation,
    frame: pl.DataFrame,
    key_master: bytes,
    org_code: str | None = None,
) -> IngestOut:
    """Validate and store consignments (already stored ids are skipped: re-sending a file is harmless).

    ``sender_name``/``consignee_name`` columns are replaced by keyed pseudonyms; ``inspected``/``seized``/
    ``commodity_code`` columns, when present, are stored as inspection results (historical labels).
    """
    scope = access(session, principal, op, write=True)
    org = target_org(session, scope, org_code)
    received = frame.height
    frame = _pseudonymise_frame(frame, org_key(key_master, org.code))
    known = set(RULE_SCHEMA)
    ignored = [c for c in frame.columns if c not in known]
    try:
        frame = coerce_consignments(frame.drop(ignored), keep_extra=False)
    except ConsignmentSchemaError as e:
        raise _schema_error(e) from e
    dup = frame.get_column("consignment_id").is_duplicated()
    if dup.any():
        first = frame.get_column("consignment_id").filter(dup)[0]
        raise InvalidInput([FieldError("consignment_id", f"appears more than once in the batch: {first!r}")])
    too_long = frame.filter(pl.col("consignment_id").str.len_chars() > 64)
    if too_long.height:
        raise InvalidInput([FieldError("consignment_id", "at most 64 characters", value=too_long[0, 0])])
    frame = frame.with_columns(pl.col("arrival_date").fill_null(pl.col("declared_at").cast(pl.Date)))
    ids = frame.get_column("consignment_id").to_list()
    existing: set[str] = set()
    for start in range(0, len(ids), 900):
        existing.update(
            session.scalars(
                select(Consignment.consignment_id).where(
                    Consignment.operation_id == op.id,
                    Consignment.org_id == org.id,
                    Consignment.consignment_id.in_(ids[start : start + 900]),
                )
            )
        )
    new = frame.filter(~pl.col("consignment_id").is_in(list(existing))) if existing else frame
    now = utcnow()
    rows = []
    for r in new.select(CONSIGNMENT_FIELDS).iter_rows(named=True):
        r["declared_at"] = r["declared_at"].replace(tzinfo=dt.UTC)
        rows.append({**r, "operation_id": op.id, "org_id": org.id, "created_at": now})
    if rows:
        session.execute(insert(Consignment), rows)
    inspections = 0
    if "inspected" in new.columns and new.height:
        labelled = new.filter(pl.col("inspected").fill_null(False))
        if labelled.height:
            pk = dict(
                session.execute(
                    select(Consignment.consignment_id, Consignment.id).where(
                        Consignment.operation_id == op.id,
                        Consignment.org_id == org.id,
                        Consignment.consignment_id.in_(labelled.get_column("consignment_id").to_list()),
                    )
                ).all()
            )
            has_seized = "seized" in labelled.columns
            has_code = "commodity_code" in labelled.columns
            results = []
            for r in labelled.iter_rows(named=True):
                seized = bool(r.get("seized")) if has_seized else False
                results.append(
                    {
                        "consignment_pk": pk[r["consignment_id"]],
                        "outcome": InspectionOutcome.SEIZURE if seized else InspectionOutcome.NOTHING_FOUND,
                        "commodity_code": (r.get("commodity_code") if has_code else None) if seized else None,
                        "note": "imported with the consignments",
                        "inspected_on": r["arrival_date"],
                        "recorded_by_label": principal.label,
                        "recorded_at": now,
                    }
                )
            session.execute(insert(InspectionResult), results)
            inspections = len(results)
    record(
        session,
        principal,
        "targeting.consignments.ingest",
        "operation",
        op.code,
        {"org": org.code, "received": received, "stored": len(rows), "inspections": inspections},
    )
    session.flush()
    return IngestOut(
        operation=op.code,
        org_code=org.code,
        received=received,
        stored=len(rows),
        already_stored=len(existing),
        inspections_recorded=inspections,
        ignored_columns=ignored,
    )


def ingest_records(
    session: Session,
    principal: Principal,
    op: Operation,
    records: Sequence[Mapping[str, Any]],
    key_master: bytes,
    org_code: str | None = None,
) -> IngestOut:
    """The API batch: each record is checked like one row of a file (errors name the record)."""
    access(session, principal, op, write=True)
    allowed = set(RULE_SCHEMA) | {"sender_name", "consignee_name"}
    for i, rec in enumerate(records):
        unknown = [k for k in rec if k not in allowed]
        if unknown:
            raise InvalidInput([FieldError(unknown[0], "unknown field", row=i + 1)])
    columns = sorted({k for rec in records for k in rec})
    try:
        frame = pl.DataFrame(
            {c: [None if rec.get(c) is None else str(rec.get(c)) for rec in records] for c in columns},
            schema={c: pl.String for c in columns},
        )
    except (TypeError, ValueError) as e:  # pragma: no cover - str() of JSON values does not fail
        raise InvalidInput([FieldError("consignments", str(e))]) from e
    return ingest_frame(session, principal, op, frame, key_master, org_code)


def _consignment_out(c: Consignment, org_code: str) -> ConsignmentOut:
    return ConsignmentOut(
        id=c.id,
        org_code=org_code,
        consignment_id=c.consignment_id,
        declared_at=c.declared_at,
        arrival_date=c.arrival_date,
        channel=c.channel,
        carrier=c.carrier,
        sender_id=c.sender_id,
        consignee_id=c.consignee_id,
        origin_country=c.origin_country,
        departure_country=c.departure_country,
        destination_country=c.destination_country,
        office=c.office,
        description=c.description,
        hs_code=c.hs_code,
        declared_value=c.declared_value,
        currency=c.currency,
        weight_kg=c.weight_kg,
        quantity=c.quantity,
        marketplace=c.marketplace,
    )


def list_consignments(
    session: Session,
    principal: Principal,
    op: Operation,
    *,
    day: dt.date | None = None,
    limit: int = 200,
    offset: int = 0,
) -> tuple[list[ConsignmentOut], int]:
    scope = access(session, principal, op)
    where = [Consignment.operation_id == op.id, scope.clause(Consignment.org_id)]
    if day is not None:
        where.append(Consignment.arrival_date == day)
    total = session.scalar(select(func.count()).select_from(Consignment).where(*where)) or 0
    items = list(
        session.scalars(
            select(Consignment)
            .where(*where)
            .order_by(Consignment.arrival_date.desc(), Consignment.id)
            .limit(limit)
            .offset(offset)
        )
    )
    codes = _org_codes(session, {c.org_id for c in items})
    return [_consignment_out(c, codes[c.org_id]) for c in items], int(total)


def _load_frame(session: Session, where: Sequence[ColumnElement[bool]]) -> tuple[pl.DataFrame, list[int]]:
    """Stored consignments as a frame of the risk schema, with ``inspected``/``seized`` labels; and PKs.

    A seizure whose case the rights holder later verified as **genuine** (a verification request of the
    case answered ``genuine``, none ``counterfeit``) is labelled not seized: the goods were not
    counterfeit, so the model must not learn them as a hit.
    """
    cols = [getattr(Consignment, c) for c in CONSIGNMENT_FIELDS]
    answers = select(VerificationRequest.id).where(VerificationRequest.case_id == InspectionResult.case_id)
    cleared = and_(
        answers.where(VerificationRequest.answer == VerificationAnswer.GENUINE).exists(),
        ~answers.where(VerificationRequest.answer == VerificationAnswer.COUNTERFEIT).exists(),
    )
    rows = session.execute(
        select(Consignment.id, *cols, InspectionResult.outcome, cleared)
        .outerjoin(InspectionResult, InspectionResult.consignment_pk == Consignment.id)
        .where(*where)
        .order_by(Consignment.declared_at, Consignment.id)
    ).all()
    data: dict[str, list[Any]] = {c: [] for c in CONSIGNMENT_FIELDS}
    pks: list[int] = []
    inspected: list[bool] = []
    seized: list[bool | None] = []
    for row in rows:
        pks.append(row[0])
        for i, c in enumerate(CONSIGNMENT_FIELDS, start=1):
            v = row[i]
            if c == "declared_at" and v is not None:
                v = v.astimezone(dt.UTC).replace(tzinfo=None)
            data[c].append(v)
        outcome, genuine = row[-2], bool(row[-1])
        inspected.append(outcome is not None)
        seized.append(None if outcome is None else outcome is InspectionOutcome.SEIZURE and not genuine)
    frame = pl.DataFrame(
        {**data, "inspected": inspected, "seized": seized},
        schema={
            **CONSIGNMENT_SCHEMA,
            "inspected": pl.Boolean,
            "seized": pl.Boolean,
        },
    )
    return frame, pks


# ------------------------------------------------------------------------------------------ rules


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


# ------------------------------------------------------------------------------------------ models and cache


class ModelCache:
    """Loaded models by file hash, and compiled rule sets, kept warm in the process (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._models: dict[str, Any] = {}
        self._rules: dict[tuple[tuple[str, int, float, str], ...], CompiledRules] = {}

    def model(self, row: TargetingModel) -> Any:
        scorer = self._models.get(row.sha256)
        if scorer is not None:
            return scorer
        with self._lock:
            scorer = self._models.get(row.sha256)
            if scorer is None:
                from stopnet.risk.model import RiskModel
                from stopnet.risk.pipeline import as_scorer

                path = Path(row.path)
                if not path.exists():
                    raise Conflict(f"the file of model {row.version} is missing: {path}")
                data = path.read_bytes()
                if hashlib.sha256(data).hexdigest() != row.sha256:
                    raise Conflict(f"the file of model {row.version} changed on disk (hash differs): {path}")
                scorer = as_scorer(RiskModel.from_bytes(data), num_threads=1)
                if len(self._models) >= 8:
                    self._models.clear()
                self._models[row.sha256] = scorer
            return scorer

    def rules(self, rules: Sequence[Rule]) -> CompiledRules:
        key = tuple((r.id, r.version, r.weight, r.expression) for r in rules)
        compiled = self._rules.get(key)
        if compiled is None:
            compiled = compile_rules(rules, RULE_SCHEMA, {})
            with self._lock:
                if len(self._rules) >= 256:
                    self._rules.clear()
                self._rules[key] = compiled
        return compiled

    def clear(self) -> None:
        with self._lock:
            self._models.clear()
            self._rules.clear()


MODEL_CACHE = ModelCache()


def active_model(session: Session, op_id: int, org_id: int) -> TargetingModel | None:
    """The model that scores ``org_id``'s consignments: its own active model, else the operation's active
    pooled model where the coordinator has shared it with the members."""
    rows = session.scalars(
        select(TargetingModel).where(
            TargetingModel.operation_id == op_id,
            TargetingModel.active.is_(True),
            or_(
                TargetingModel.org_id == org_id,
                TargetingModel.org_id.is_(None) & TargetingModel.shared.is_(True),
            ),
        )
    ).all()
    return next((m for m in rows if m.org_id == org_id), rows[0] if rows else None)


@dataclass
class ScoredBatch:
    scores: np.ndarray  # NaN when no model
    hits: list[list[dict[str, Any]]]
    rule_score: np.ndarray
    explanations: list[list[dict[str, Any]]]
    model_version: str | None


def score_frame(
    frame: pl.DataFrame,
    model: Any | None,
    compiled: CompiledRules,
    explain_top_k: int = EXPLAIN_TOP_K,
    rows: Sequence[Mapping[str, Any]] | None = None,
) -> ScoredBatch:
    """Model probabilities, rule hits (naming versions) and top contributions of ``frame``'s rows.
    ``rows``, the same consignments as dicts of schema values, let the model's features be built in
    plain Python (a single API consignment: microseconds instead of milliseconds; the same values)."""
    from stopnet.risk.pipeline import prepare_consignments, prepare_record

    n = frame.height
    scores = np.full(n, np.nan)
    explanations: list[list[dict[str, Any]]] = [[] for _ in range(n)]
    if model is not None and n:
        if rows is not None:
            x = model.features_rows([prepare_record(r) for r in rows])
        else:
            x = model.features(prepare_consignments(frame))
        scores = np.asarray(model.predict_matrix(x), dtype=np.float64)
        if explain_top_k > 0:
            explanations = [
                [{"feature": f, "value": v, "contribution": round(c, 4)} for f, v, c in row]
                for row in model.explain_matrix(x, explain_top_k)
            ]
    hits: list[list[dict[str, Any]]] = [[] for _ in range(n)]
    rule_score = np.zeros(n)
    if compiled.rule_ids and n:
        rh = compiled.evaluate(frame)
        rule_score = rh.weighted()
        for i, j in zip(*np.nonzero(rh.matrix), strict=True):
            hits[int(i)].append(
                {"rule": rh.rule_ids[j], "version": int(rh.versions[j]), "weight": float(rh.weights[j])}
            )
    return ScoredBatch(scores, hits, rule_score, explanations, None if model is None else str(model.version))


def _score_and_store(
    session: Session, op: Operation, org_id: int, where: Sequence[ColumnElement[bool]]
) -> tuple[list[int], list[int], ScoredBatch, list[Rule], pl.DataFrame]:
    frame, pks = _load_frame(session, where)
    model_row = active_model(session, op.id, org_id)
    model = MODEL_CACHE.model(model_row) if model_row else None
    rules = active_rules(session, op.id, org_id)
    batch = score_frame(frame.drop("inspected", "seized"), model, MODEL_CACHE.rules(rules))
    now = utcnow()
    score_ids: list[int] = []
    for i, pk in enumerate(pks):
        s = ConsignmentScore(
            consignment_pk=pk,
            model_id=model_row.id if model_row else None,
            model_version=batch.model_version,
            score=None if math.isnan(batch.scores[i]) else float(batch.scores[i]),
            rule_hits=batch.hits[i],
            rule_score=float(batch.rule_score[i]),
            explanation=batch.explanations[i],
            scored_at=now,
        )
        session.add(s)
        session.flush()
        score_ids.append(s.id)
    return pks, score_ids, batch, rules, frame


def score_stored(
    session: Session,
    principal: Principal,
    op: Operation,
    org_code: str | None = None,
    day: dt.date | None = None,
) -> ScoreRunOut:
    """Score the administration's stored consignments (of one arrival day, or all) with the active model and
    rules; every score names the model version and the rule versions that hit."""
    scope = access(session, principal, op, write=True)
    org = target_org(session, scope, org_code)
    where = [Consignment.operation_id == op.id, Consignment.org_id == org.id]
    if day is not None:
        where.append(Consignment.arrival_date == day)
    pks, _, batch, rules, _ = _score_and_store(session, op, org.id, where)
    record(
        session,
        principal,
        "targeting.score",
        "operation",
        op.code,
        {"org": org.code, "rows": len(pks), "model": batch.model_version},
    )
    session.flush()
    return ScoreRunOut(
        scored=len(pks), model_version=batch.model_version, rules=[f"{r.id}@v{r.version}" for r in rules]
    )


def stored_score(
    session: Session, principal: Principal, op: Operation, consignment_id: str, org_code: str | None = None
) -> tuple[Consignment, ConsignmentScore | None]:
    c = _consignment(session, principal, op, consignment_id, org_code, write=False)
    s = session.scalar(
        select(ConsignmentScore)
        .where(ConsignmentScore.consignment_pk == c.id)
        .order_by(ConsignmentScore.id.desc())
        .limit(1)
    )
    return c, s


def score_one(
    session: Session,
    principal: Principal,
    op: Operation,
    consignment: Mapping[str, Any],
    key_master: bytes,
    org_code: str | None = None,
    explain_top_k: int = EXPLAIN_TOP_K,
) -> ScoreOut:
    """Score one consignment (not stored) with the warm model and the administration's active rules."""
    scope = access(session, principal, op)
    org = target_org(session, scope, org_code)
    record_in = dict(consignment)
    key: bytes | None = None
    for party in ("sender", "consignee"):
        name = record_in.pop(f"{party}_name", None)
        if name is not None:
            if f"{party}_id" in record_in:
                raise InvalidInput(
                    [FieldError(f"{party}_name", f"give either {party}_name or {party}_id, not both")]
                )
            key = key or org_key(key_master, org.code)
            record_in[f"{party}_id"] = pseudonymise(str(name), key)
    try:
        row = consignment_row(record_in)
    except ConsignmentSchemaError as e:
        raise _schema_error(e, "consignment") from e
    row = {k: row[k] for k in CONSIGNMENT_FIELDS}
    frame = consignment_frame(row)
    model_row = active_model(session, op.id, org.id)
    model = MODEL_CACHE.model(model_row) if model_row else None
    compiled = MODEL_CACHE.rules(active_rules(session, op.id, org.id))
    batch = score_frame(frame, model, compiled, explain_top_k, rows=[row])
    score = None if math.isnan(batch.scores[0]) else float(batch.scores[0])
    hits = batch.hits[0]
    return ScoreOut(
        consignment_id=str(frame.get_column("consignment_id")[0]),
        score=score,
        lane="AMBER" if (hits or (score is not None and score >= ALERT_THRESHOLD)) else "GREEN",
        rule_hits=[RuleHitOut(**h) for h in hits],
        rule_score=float(batch.rule_score[0]),
        explanation=[Contribution(**e) for e in batch.explanations[0]],
        model_version=batch.model_version,
    )


def model_clause(scope: Scope) -> ColumnElement[bool]:
    """The models ``scope`` may see: every model for the coordinator; its administration's own models and
    the shared ones for a member (a model's metrics tell about the consignments it was trained on)."""
    if scope.org_ids is None:
        return true()
    return or_(TargetingModel.org_id.in_(scope.org_ids), TargetingModel.shared.is_(True))


def _model_out(m: TargetingModel, org_codes: Mapping[int, str], scope: Scope) -> ModelOut:
    return ModelOut(
        version=m.version,
        may_share=may_manage_model(scope, m.org_id),
        org_code=org_codes.get(m.org_id) if m.org_id is not None else None,
        shared=m.shared,
        active=m.active,
        sha256=m.sha256,
        metrics=m.metrics,
        registered_by=m.registered_by_label,
        created_at=m.created_at,
    )


def list_models(session: Session, principal: Principal, op: Operation) -> list[ModelOut]:
    """The operation's models that ``principal`` may see, newest first."""
    scope = access(session, principal, op)
    rows = list(
        session.scalars(
            select(TargetingModel)
            .where(TargetingModel.operation_id == op.id, model_clause(scope))
            .order_by(TargetingModel.id.desc())
        )
    )
    codes = _org_codes(session, (m.org_id for m in rows if m.org_id is not None))
    return [_model_out(m, codes, scope) for m in rows]


def scoring_model(session: Session, principal: Principal, op: Operation) -> ModelOut | None:
    """The model that scores the principal's consignments (the coordinator: the pooled active one)."""
    scope = access(session, principal, op)
    if scope.org_ids is None:
        row = session.scalar(
            select(TargetingModel).where(
                TargetingModel.operation_id == op.id,
                TargetingModel.active.is_(True),
                TargetingModel.org_id.is_(None),
            )
        )
    else:
        row = active_model(session, op.id, scope.principal.org_id)
    if row is None:
        return None
    return _model_out(row, _org_codes(session, [row.org_id] if row.org_id is not None else []), scope)


def may_manage_model(scope: Scope, org_id: int | None) -> bool:
    """The coordinator manages every model; an administration's contact point manages its own."""
    if scope.org_ids is None:
        return True
    return org_id is not None and org_id in scope.org_ids and scope.principal.role is Role.CONTACT_POINT


def _require_model_manager(scope: Scope, org_id: int | None) -> None:
    if not may_manage_model(scope, org_id):
        raise Forbidden(
            "the operation's coordinator, or the administration's contact point for its own models, "
            "trains, registers and shares risk models"
        )


def register_model(
    session: Session,
    principal: Principal,
    op: Operation,
    path: Path,
    metrics: Mapping[str, Any] | None = None,
    org: Organisation | None = None,
) -> TargetingModel:
    """Register a saved model file as the active model of ``org`` (None: the operation's pooled model)."""
    scope = access(session, principal, op, write=True)
    _require_model_manager(scope, org.id if org else None)
    from stopnet.risk.model import ModelFormatError, RiskModel

    data = path.read_bytes()
    try:
        model = RiskModel.from_bytes(data)
    except (ModelFormatError, ValueError, KeyError) as e:
        raise InvalidInput([FieldError("model", f"not a stopnet risk model file: {e}")]) from e
    if session.scalar(
        select(TargetingModel.id).where(
            TargetingModel.operation_id == op.id, TargetingModel.version == model.version
        )
    ):
        raise Conflict(f"model {model.version} is already registered for {op.code}")
    owner = TargetingModel.org_id.is_(None) if org is None else TargetingModel.org_id == org.id
    for m in session.scalars(
        select(TargetingModel).where(
            TargetingModel.operation_id == op.id, TargetingModel.active.is_(True), owner
        )
    ):
        m.active = False
    row = TargetingModel(
        operation_id=op.id,
        org_id=org.id if org else None,
        shared=False,
        version=model.version,
        path=str(path.resolve()),
        sha256=hashlib.sha256(data).hexdigest(),
        active=True,
        metrics=dict(metrics or {}),
        registered_by_label=principal.label,
    )
    session.add(row)
    record(
        session,
        principal,
        "targeting.model.register",
        "operation",
        op.code,
        {"version": model.version, "org": org.code if org else None},
    )
    session.flush()
    return row


def share_model(
    session: Session, principal: Principal, op: Operation, version: str, shared: bool
) -> ModelOut:
    """Show a model and its metrics to every member of the operation, or stop showing it. A shared pooled
    model also scores the consignments of members that have no model of their own."""
    scope = access(session, principal, op, write=True)
    row = session.scalar(
        select(TargetingModel).where(
            TargetingModel.operation_id == op.id, TargetingModel.version == version, model_clause(scope)
        )
    )
    if row is None:
        raise NotFound(f"no risk model {version!r} in {op.code}")
    _require_model_manager(scope, row.org_id)
    if row.shared != shared:
        row.shared = shared
        record(
            session,
            principal,
            "targeting.model.share" if shared else "targeting.model.unshare",
            "operation",
            op.code,
            {"version": version},
        )
        session.flush()
    return _model_out(row, _org_codes(session, [row.org_id] if row.org_id is not None else []), scope)


def retrain(
    session: Session,
    principal: Principal,
    op: Operation,
    out: Path,
    *,
    validation_fraction: float = 0.2,
    seed: int = 0,
    max_rounds: int = 120,
    org_code: str | None = None,
) -> RetrainOut:
    """Retrain the consignment model of one administration (``org_code``; a member: its own) from its stored
    consignments with their inspection results, or (the coordinator naming none) the operation's pooled
    model from every administration's; validate on the latest dates (time-based), refit on all, save to
    ``out`` and register it as that administration's (or the pooled) active model."""
    from stopnet.risk.metrics import evaluate_scores
    from stopnet.risk.pipeline import LABEL_COL, as_scorer, prepare_consignments, train_consignment_model

    scope = access(session, principal, op, write=True)
    org = (
        None
        if scope.is_coordinator and not (org_code or "").strip()
        else target_org(session, scope, org_code)
    )
    _require_model_manager(scope, org.id if org else None)
    where = [Consignment.operation_id == op.id]
    if org is not None:
        where.append(Consignment.org_id == org.id)
    frame, _ = _load_frame(session, where)
    labelled = int(frame.get_column("inspected").sum()) if frame.height else 0
    if labelled < 20:
        raise InvalidInput(
            [FieldError("inspections", f"{labelled} inspection result(s) recorded: at least 20 are needed")]
        )
    dates = frame.get_column("declared_at").cast(pl.Date)
    days = dates.unique().sort()
    cut = days[min(len(days) - 1, max(1, int(len(days) * (1 - validation_fraction))))]
    train_part = frame.filter(dates < cut)
    valid_part = frame.filter((dates >= cut) & pl.col("inspected"))
    try:
        probe = train_consignment_model(train_part, seed=seed, max_rounds=max_rounds)
    except ValueError as e:
        raise InvalidInput([FieldError("inspections", f"cannot train on the dates before {cut}: {e}")]) from e
    validation: dict[str, Any] = {"rows": valid_part.height}
    if valid_part.height:
        prepared = prepare_consignments(valid_part)
        y = prepared.get_column(LABEL_COL).to_numpy()
        s = as_scorer(probe).predict_proba(prepared)
        validation = evaluate_scores(y, s, (5, 10, 20))
        # how many seizures the figures rest on: precision over a handful of them is noise
        validation["seizures"] = int(np.nansum(y))
        validation["model_version"] = probe.version
    model = train_consignment_model(frame, seed=seed, max_rounds=max_rounds)
    out.parent.mkdir(parents=True, exist_ok=True)
    model.save(out)
    metrics = {
        "validation": validation,
        "train_until": str(cut - dt.timedelta(days=1)),
        "validation_from": str(cut),
        "rows": frame.height,
        "labelled": labelled,
        "training": {
            k: v
            for k, v in model.training.items()
            if k in ("best_iteration", "holdout_auc", "rows", "date_range")
        },
    }
    row = register_model(session, principal, op, out, metrics, org)
    return RetrainOut(
        model_version=row.version,
        org_code=org.code if org else None,
        path=row.path,
        rows=frame.height,
        labelled=labelled,
        train_until=cut - dt.timedelta(days=1),
        validation_from=cut,
        validation=validation,
    )


# ------------------------------------------------------------------------------------------ selection


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


# ------------------------------------------------------------------------------------------ inspections


def _consignment(
    session: Session,
    principal: Principal,
    op: Operation,
    consignment_id: str,
    org_code: str | None,
    *,
    write: bool,
) -> Consignment:
    scope = access(session, principal, op, write=write)
    where = [
        Consignment.operation_id == op.id,
        Consignment.consignment_id == consignment_id,
        scope.clause(Consignment.org_id),
    ]
    if org_code:
        where.append(Consignment.org_id == target_org(session, scope, org_code).id)
    found = list(session.scalars(select(Consignment).where(*where).limit(2)))
    if not found:
        raise NotFound(f"no consignment {consignment_id!r} in {op.code}")
    if len(found) > 1:
        raise InvalidInput(
            [FieldError("org_code", "several administrations have this consignment id: name one")]
        )
    return found[0]


def record_inspection(
    session: Session,
    principal: Principal,
    op: Operation,
    consignment_id: str,
    data: InspectionIn,
    today: dt.date,
) -> InspectionResult:
    """Record what the inspection found (the administration's officers); a seizure names its case."""
    c = _consignment(session, principal, op, consignment_id, data.org_code, write=True)
    if principal.org_id != c.org_id or principal.role not in _STAFF_ROLES:
        raise Forbidden("inspection results are recorded by the administration that inspected")
    if session.scalar(select(InspectionResult.id).where(InspectionResult.consignment_pk == c.id)):
        raise Conflict(f"the result of consignment {consignment_id} is already recorded")
    commodity = data.commodity_code
    if data.outcome is InspectionOutcome.SEIZURE:
        if data.case_id is None:
            message = (
                "Case id: required for a seizure; give the id of the case your administration reported for it"
            )
            raise InvalidInput([FieldError("case_id", message, code="required")])
        case = session.get(Case, data.case_id)
        if case is None or case.operation_id != op.id or case.reporting_org_id != c.org_id:
            message = (
                f"Case id: {data.case_id} is not a case of {principal.org_code} in {op.code}; give the id of the "
                "case your administration reported for this seizure"
            )
            raise InvalidInput(
                [FieldError("case_id", message, value=str(data.case_id), code="not_your_case")]
            )
        if commodity is None:
            commodity = session.scalar(
                select(Seizure.commodity_code)
                .where(Seizure.case_id == case.id)
                .order_by(Seizure.line_no)
                .limit(1)
            )
    elif data.case_id is not None:
        message = "Case id: only a seizure is linked to a case; leave it empty when nothing was found"
        raise InvalidInput([FieldError("case_id", message, value=str(data.case_id), code="not_a_seizure")])
    if commodity is not None:
        from stopnet.reference import get_reference

        if commodity not in get_reference().commodities:
            message = f"Commodity: {commodity!r} is not a commodity code; e.g. MED-NERV"
            raise InvalidInput([FieldError("commodity_code", message, value=commodity, code="unknown_code")])
    result = InspectionResult(
        consignment_pk=c.id,
        outcome=data.outcome,
        case_id=data.case_id,
        commodity_code=commodity,
        note=data.note,
        inspected_on=data.inspected_on or today,
        recorded_by_label=principal.label,
    )
    session.add(result)
    record(
        session,
        principal,
        "targeting.inspection",
        "tgt_consignment",
        c.id,
        {"consignment": consignment_id, "outcome": data.outcome.value, "case_id": data.case_id},
    )
    session.flush()
    return result


def inspection_out(session: Session, result: InspectionResult) -> InspectionOut:
    c = session.get_one(Consignment, result.consignment_pk)
    verification = None
    if result.case_id is not None:
        try:
            from stopnet.db.models.rightsholders import VerificationRequest

            answer = session.scalar(
                select(VerificationRequest.answer)
                .where(VerificationRequest.case_id == result.case_id, VerificationRequest.answer.is_not(None))
                .order_by(VerificationRequest.id.desc())
                .limit(1)
            )
            verification = None if answer is None else str(getattr(answer, "value", answer))
        except (ImportError, AttributeError):  # pragma: no cover - rights holders' tables not installed
            verification = None
    return InspectionOut(
        consignment_id=c.consignment_id,
        outcome=result.outcome,
        case_id=result.case_id,
        commodity_code=result.commodity_code,
        verification=verification,
        note=result.note,
        inspected_on=result.inspected_on,
        recorded_by=result.recorded_by_label,
        recorded_at=result.recorded_at,
    )


# ------------------------------------------------------------------------------------------ performance


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


# ------------------------------------------------------------------------------------------ proposals


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
