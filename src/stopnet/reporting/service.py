"""Cases and seizures: create, read, list, correct, submit and validate.

Every function takes the acting :class:`Principal` and checks it here, whatever the caller (API, page,
CLI, importer). Functions flush; the request, job or command that called them commits.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Sequence
from decimal import Decimal
from typing import Any, TypeVar

from pydantic import ValidationError
from sqlalchemy import ColumnElement, Select, exists, func, or_, select
from sqlalchemy.orm import Session, selectinload

from stopnet.access import policy
from stopnet.access.principal import Principal
from stopnet.audit.service import record
from stopnet.core.errors import Conflict, FieldError, InvalidInput, NotFound
from stopnet.core.like import LIKE_ESCAPE, contains_pattern
from stopnet.core.validation import field_errors
from stopnet.db.models import (
    Case,
    CaseStatus,
    CaseVersion,
    Operation,
    Organisation,
    Seizure,
    User,
    Visibility,
    utcnow,
)
from stopnet.reference import get_reference
from stopnet.sharing import outbox

from .schemas import (
    FIELD_HINTS,
    CaseAttributes,
    CaseCorrection,
    CaseCreate,
    CaseFilters,
    CaseOut,
    CaseVersionOut,
    SeizureIn,
    SeizureOut,
    read_date,
)

_Input = TypeVar("_Input", bound=CaseAttributes)

CASE_FIELDS = (
    "detected_on",
    "office",
    "place",
    "transport_mode",
    "is_ecommerce",
    "channel",
    "departure_country",
    "origin_country",
    "destination_country",
    "detection_method",
    "concealment",
    "platform_type",
    "platform_name",
    "consignee_name",
    "notes",
)
SEIZURE_FIELDS = tuple(SeizureIn.model_fields)


# ---------------------------------------------------------------------------------------------- rules


def operation_rule_errors(op: Operation, data: CaseAttributes, row: int | None = None) -> list[FieldError]:
    """Rules that need the operation (the schema checks the rest)."""
    return date_rule_errors(op, data.detected_on, row)


def date_rule_errors(op: Operation, day: dt.date | None, row: int | None = None) -> list[FieldError]:
    """The date must fall within the operation (nothing to say of a date that cannot be read)."""
    if day is None or op.starts_on <= day <= op.ends_on:
        return []
    label = FIELD_HINTS["detected_on"].label
    message = (
        f"{label}: {day.isoformat()} is outside the operation ({op.starts_on.isoformat()} to "
        f"{op.ends_on.isoformat()}); give a date within it"
    )
    return [FieldError("detected_on", message, row, day.isoformat(), "outside_operation")]


def check_case_input(
    op: Operation,
    model: type[_Input],
    payload: dict[str, Any],
    *,
    name: Callable[[tuple[Any, ...]], str] | None = None,
    label: Callable[[str, str], str] | None = None,
) -> _Input:
    """``payload`` validated as ``model`` with the operation's rules, every problem at once: the
    schema's and the date's (read from what was typed when the schema refuses the rest). Raises
    :class:`InvalidInput` with them all; ``name`` and ``label`` as :func:`field_errors` takes them."""
    try:
        data = model.model_validate(payload)
    except ValidationError as e:
        errors = (
            field_errors(e, FIELD_HINTS, name=name, label=label)
            if name is not None
            else field_errors(e, FIELD_HINTS, label=label)
        )
        if not any(x.field == "detected_on" for x in errors):
            errors += date_rule_errors(op, read_date(payload.get("detected_on")))
        raise InvalidInput(errors, _problems(errors)) from None
    errors = operation_rule_errors(op, data)
    if errors:
        raise InvalidInput(errors, _problems(errors))
    return data


def check_new_case(
    session: Session,
    principal: Principal,
    op: Operation,
    payload: dict[str, Any],
    *,
    name: Callable[[tuple[Any, ...]], str] | None = None,
    label: Callable[[str, str], str] | None = None,
) -> CaseCreate:
    """:func:`check_case_input` for a new case, naming a reference already used in the same pass as the
    other problems (a clean case with a taken reference is refused by :func:`create_case`, 409)."""
    policy.require_reporter(session, principal, op.id)
    try:
        return check_case_input(op, CaseCreate, payload, name=name, label=label)
    except InvalidInput as e:
        reference = payload.get("reference")
        taken = _reference_taken(session, principal, op, reference) if isinstance(reference, str) else None
        if taken is not None and not any(x.field == "reference" for x in e.errors):
            message = (
                f"{FIELD_HINTS['reference'].label}: {reference!r} is already used by case {taken}; "
                "choose another reference, or correct that case"
            )
            e.errors.insert(0, FieldError("reference", message, value=reference, code="reference_taken"))
            e.summary = _problems(e.errors)
        raise


def _reference_taken(session: Session, principal: Principal, op: Operation, reference: str) -> int | None:
    """The id of this administration's case of ``op`` with this reference, if there is one."""
    return session.scalar(
        select(Case.id).where(
            Case.operation_id == op.id,
            Case.reporting_org_id == principal.org_id,
            Case.reference == reference.strip(),
        )
    )


def _problems(errors: Sequence[FieldError]) -> str:
    n = len(errors)
    return f"{n} problem{'s' if n != 1 else ''} found; nothing was saved"


def seizure_values(s: SeizureIn) -> dict[str, Any]:
    values = s.model_dump()
    values["commodity_group"] = get_reference().commodities[s.commodity_code].group
    return values


def case_values(data: CaseAttributes) -> dict[str, Any]:
    values = {f: getattr(data, f) for f in CASE_FIELDS}
    values["transit_countries"] = ",".join(data.transit_countries)
    return values


# ---------------------------------------------------------------------------------------------- writes


def create_case(
    session: Session,
    principal: Principal,
    op: Operation,
    data: CaseCreate,
    *,
    import_batch_id: int | None = None,
) -> Case:
    policy.require_reporter(session, principal, op.id)
    errors = operation_rule_errors(op, data)
    if errors:
        raise InvalidInput(errors, "the case breaks the operation's rules")
    existing = _reference_taken(session, principal, op, data.reference)
    if existing is not None:
        raise Conflict(
            f"case reference {data.reference!r} already exists (case {existing}); send a correction"
        )
    org = session.get_one(Organisation, principal.org_id)
    now = utcnow()
    case = Case(
        operation_id=op.id,
        reporting_org_id=org.id,
        reference=data.reference,
        status=CaseStatus.SUBMITTED if data.submit else CaseStatus.DRAFT,
        version=1,
        visibility=data.visibility or op.default_visibility,
        reporting_country=org.country_code or "",
        region_code=org.region_code,
        created_by_id=principal.user_id,
        submitted_at=now if data.submit else None,
        import_batch_id=import_batch_id,
        **case_values(data),
    )
    case.seizures = [
        Seizure(operation_id=op.id, line_no=i, **seizure_values(s))
        for i, s in enumerate(data.seizures, start=1)
    ]
    session.add(case)
    session.flush()
    _snapshot(session, principal, case, "create")
    record(session, principal, "case.create", "case", case.id, {"reference": case.reference, "op": op.code})
    outbox.emit_case(session, "case.created", case)
    return case


def correct_case(session: Session, principal: Principal, case_id: int, data: CaseCorrection) -> Case:
    """Apply a correction as a new version; the previous versions stay readable in the history."""
    case = _load_case(session, case_id)
    _require_visible(session, principal, case)
    policy.require_own_case(principal, case)
    _check_version(case, data.expected_version)
    op = session.get_one(Operation, case.operation_id)
    errors = operation_rule_errors(op, data)
    if errors:
        raise InvalidInput(errors, "the correction breaks the operation's rules")
    for name, value in case_values(data).items():
        setattr(case, name, value)
    if data.visibility is not None:
        case.visibility = data.visibility
    by_line = {s.line_no: s for s in case.seizures}
    for i, s in enumerate(data.seizures, start=1):
        values = seizure_values(s)
        if i in by_line:
            for name, value in values.items():
                setattr(by_line[i], name, value)
        else:
            case.seizures.append(Seizure(operation_id=case.operation_id, line_no=i, **values))
    for line, seizure in by_line.items():
        if line > len(data.seizures):
            case.seizures.remove(seizure)
    was_validated = case.status is CaseStatus.VALIDATED
    if was_validated:
        case.status = CaseStatus.SUBMITTED
        case.validated_at = None
        case.validated_by_id = None
    case.version += 1
    case.updated_at = utcnow()
    session.flush()
    _snapshot(session, principal, case, "correct", data.reason)
    record(
        session,
        principal,
        "case.correct",
        "case",
        case.id,
        {"version": case.version, "reason": data.reason, "revalidation_needed": was_validated},
    )
    outbox.emit_case(session, "case.corrected", case)
    return case


def submit_case(session: Session, principal: Principal, case_id: int, expected_version: int) -> Case:
    case = _load_case(session, case_id)
    _require_visible(session, principal, case)
    policy.require_own_case(principal, case)
    _check_version(case, expected_version)
    if case.status is not CaseStatus.DRAFT:
        raise Conflict(f"case {case.id} is {case.status.value}, not a draft")
    case.status = CaseStatus.SUBMITTED
    case.submitted_at = utcnow()
    case.version += 1
    session.flush()
    _snapshot(session, principal, case, "submit")
    record(session, principal, "case.submit", "case", case.id, {"version": case.version})
    outbox.emit_case(session, "case.submitted", case)
    return case


def validate_case(session: Session, principal: Principal, case_id: int, expected_version: int) -> Case:
    case = _load_case(session, case_id)
    _require_visible(session, principal, case)
    policy.require_validator(session, principal, case)
    _check_version(case, expected_version)
    if case.status is not CaseStatus.SUBMITTED:
        raise Conflict(f"case {case.id} is {case.status.value}; only submitted cases are validated")
    case.status = CaseStatus.VALIDATED
    case.validated_at = utcnow()
    case.validated_by_id = principal.user_id
    case.version += 1
    session.flush()
    _snapshot(session, principal, case, "validate")
    record(session, principal, "case.validate", "case", case.id, {"version": case.version})
    outbox.emit_case(session, "case.validated", case)
    return case


def _check_version(case: Case, expected: int) -> None:
    if case.version != expected:
        raise Conflict(
            f"case {case.id} is at version {case.version}, not {expected}: "
            "reload it and apply your change again"
        )


def _snapshot(session: Session, principal: Principal, case: Case, action: str, reason: str = "") -> None:
    session.add(
        CaseVersion(
            case_id=case.id,
            version=case.version,
            action=action,
            reason=reason,
            snapshot=snapshot_of(case),
            changed_by_id=principal.user_id,
            changed_at=utcnow(),
        )
    )
    session.flush()


def snapshot_of(case: Case) -> dict[str, Any]:
    def plain(v: Any) -> Any:
        if isinstance(v, Decimal):
            return str(v)
        if isinstance(v, dt.date):
            return v.isoformat()
        return v.value if hasattr(v, "value") else v

    out: dict[str, Any] = {f: plain(getattr(case, f)) for f in CASE_FIELDS}
    out.update(
        reference=case.reference,
        status=case.status.value,
        visibility=case.visibility.value,
        transit_countries=case.transit_countries,
        seizures=[
            {"line_no": s.line_no, **{f: plain(getattr(s, f)) for f in SEIZURE_FIELDS}} for s in case.seizures
        ],
    )
    return out


# ---------------------------------------------------------------------------------------------- reads


def _load_case(session: Session, case_id: int) -> Case:
    case = session.scalar(select(Case).where(Case.id == case_id).options(selectinload(Case.seizures)))
    if case is None:
        raise NotFound(f"no case {case_id}")
    return case


def _require_visible(session: Session, principal: Principal, case: Case) -> None:
    if not policy.can_read_case(session, principal, case):
        raise NotFound(f"no case {case.id}")  # do not reveal that it exists


def audit_restricted_reads(
    session: Session, principal: Principal, cases: Iterable[Case | tuple[int, Visibility]], via: str
) -> int:
    """One ``case.read_restricted`` entry per restricted case returned to ``principal``, naming the case
    and the path (``via``: case, history, list, search, export); the caller's transaction keeps them."""
    n = 0
    for c in cases:
        if isinstance(c, Case):
            if not policy.is_restricted_read(principal, c):
                continue
            case_id, visibility = c.id, c.visibility
        else:
            case_id, visibility = c
        record(
            session,
            principal,
            "case.read_restricted",
            "case",
            case_id,
            {"visibility": visibility, "via": via},
        )
        n += 1
    return n


def get_case(session: Session, principal: Principal, case_id: int, via: str = "case") -> Case:
    policy.require_read(principal)
    case = _load_case(session, case_id)
    _require_visible(session, principal, case)
    audit_restricted_reads(session, principal, [case], via)
    return case


def case_history(session: Session, principal: Principal, case_id: int) -> list[CaseVersionOut]:
    policy.require_read(principal)
    case = _load_case(session, case_id)
    _require_visible(session, principal, case)
    audit_restricted_reads(session, principal, [case], "history")
    rows = session.execute(
        select(CaseVersion, User.email)
        .outerjoin(User, User.id == CaseVersion.changed_by_id)
        .where(CaseVersion.case_id == case_id)
        .order_by(CaseVersion.version)
    ).all()
    own = case.reporting_org_id == principal.org_id
    out = []
    for v, email in rows:
        snap = dict(v.snapshot)
        if not own:
            snap.pop("consignee_name", None)
        out.append(
            CaseVersionOut(
                version=v.version,
                action=v.action,
                reason=v.reason,
                changed_at=v.changed_at,
                changed_by=email if own else None,
                snapshot=snap,
            )
        )
    return out


def codes_of(value: str, upper: bool = True) -> list[str]:
    """A filter's codes: one, or several separated by commas (the dashboard's multi-select filters)."""
    return [(v.upper() if upper else v.lower()) for v in (p.strip() for p in value.split(",")) if v]


def filter_clauses(filters: CaseFilters) -> list[ColumnElement[bool]]:
    c: list[ColumnElement[bool]] = []
    if filters.status is not None:
        c.append(Case.status == filters.status)
    if filters.reporting_org:
        c.append(
            Case.reporting_org_id.in_(
                select(Organisation.id).where(Organisation.code == filters.reporting_org)
            )
        )
    if filters.country:
        c.append(Case.reporting_country.in_(codes_of(filters.country)))
    if filters.region:
        c.append(Case.region_code.in_(codes_of(filters.region)))
    if filters.channel:
        c.append(Case.channel.in_(codes_of(filters.channel)))
    if filters.origin:
        c.append(Case.origin_country.in_(codes_of(filters.origin)))
    if filters.destination:
        c.append(Case.destination_country.in_(codes_of(filters.destination)))
    if filters.is_ecommerce is not None:
        c.append(Case.is_ecommerce == filters.is_ecommerce)
    if filters.date_from:
        c.append(Case.detected_on >= filters.date_from)
    if filters.date_to:
        c.append(Case.detected_on <= filters.date_to)
    seizure_conds = []
    if filters.commodity_code:
        seizure_conds.append(Seizure.commodity_code.in_(codes_of(filters.commodity_code)))
    if filters.commodity_group:
        seizure_conds.append(Seizure.commodity_group.in_(codes_of(filters.commodity_group, upper=False)))
    if seizure_conds:
        c.append(exists().where(Seizure.case_id == Case.id, *seizure_conds))
    if filters.q:
        like = contains_pattern(filters.q)
        c.append(
            or_(
                func.lower(Case.reference).like(like, escape=LIKE_ESCAPE),
                func.lower(Case.notes).like(like, escape=LIKE_ESCAPE),
                exists().where(
                    Seizure.case_id == Case.id, func.lower(Seizure.brand).like(like, escape=LIKE_ESCAPE)
                ),
            )
        )
    return c


def visible_cases(
    session: Session, principal: Principal, op: Operation, filters: CaseFilters
) -> Select[Case]:
    """The SELECT of every case of ``op`` the principal may read, filtered (used by lists and exports)."""
    return select(Case).where(
        Case.operation_id == op.id,
        policy.case_read_clause(session, principal, op.id),
        *filter_clauses(filters),
    )


#: The keys a case list sorts by (``sort=key`` ascending, ``sort=-key`` descending), as the columns read.
SORT_KEYS: dict[str, str] = {
    "reference": "case reference",
    "detected_on": "date of detection",
    "reporting_org": "reporting administration",
    "channel": "traffic channel",
    "route": "origin country",
    "pieces": "pieces",
    "weight": "weight (kg)",
    "status": "status",
}
DEFAULT_SORT = "-detected_on"


def parse_sort(sort: str | None) -> tuple[str, bool]:
    """``(key, descending)`` of a ``sort`` parameter; an unknown key is an error naming the known ones."""
    raw = (sort or DEFAULT_SORT).strip()
    key, descending = (raw[1:], True) if raw.startswith("-") else (raw, False)
    if key not in SORT_KEYS:
        known = ", ".join(SORT_KEYS)
        raise InvalidInput(
            [
                FieldError(
                    "sort",
                    f"cannot sort by {key!r}; sort by one of {known} (prefix - for descending)",
                    value=raw,
                )
            ],
            "the sort order is invalid",
        )
    return key, descending


def _sort_column(key: str) -> ColumnElement[Any]:
    if key in ("pieces", "weight"):
        column = Seizure.pieces if key == "pieces" else Seizure.weight_kg
        return select(func.coalesce(func.sum(column), 0)).where(Seizure.case_id == Case.id).scalar_subquery()
    if key == "reporting_org":
        return select(Organisation.code).where(Organisation.id == Case.reporting_org_id).scalar_subquery()
    columns: dict[str, ColumnElement[Any]] = {
        "reference": Case.reference.expression,
        "detected_on": Case.detected_on.expression,
        "channel": Case.channel.expression,
        "route": Case.origin_country.expression,
        "status": Case.status.expression,
    }
    return columns[key]


def list_cases(
    session: Session,
    principal: Principal,
    op: Operation,
    filters: CaseFilters,
    page: int,
    page_size: int,
    sort: str | None = None,
) -> tuple[Sequence[Case], int]:
    policy.require_read(principal)
    key, descending = parse_sort(sort)
    stmt = visible_cases(session, principal, op, filters)
    total = session.scalar(select(func.count()).select_from(stmt.order_by(None).subquery())) or 0
    column = _sort_column(key)
    tie = Case.id.desc() if descending else Case.id.asc()
    items = session.scalars(
        stmt.options(selectinload(Case.seizures))
        .order_by(column.desc() if descending else column.asc(), tie)
        .offset((page - 1) * page_size)
        .limit(page_size)
    ).all()
    audit_restricted_reads(session, principal, items, "search" if filters.q else "list")
    return items, total


def orgcodes_of(session: Session, ids: set[int]) -> dict[int, str]:
    if not ids:
        return {}
    return dict(
        session.execute(select(Organisation.id, Organisation.code).where(Organisation.id.in_(ids))).all()
    )


def to_out(case: Case, principal: Principal, op_code: str, org_code: str) -> CaseOut:
    own = case.reporting_org_id == principal.org_id
    return CaseOut(
        id=case.id,
        operation=op_code,
        reporting_org=org_code,
        reporting_country=case.reporting_country,
        region_code=case.region_code,
        reference=case.reference,
        status=case.status,
        version=case.version,
        visibility=case.visibility,
        detected_on=case.detected_on,
        office=case.office,
        place=case.place,
        transport_mode=case.transport_mode,
        is_ecommerce=case.is_ecommerce,
        channel=case.channel,
        departure_country=case.departure_country,
        origin_country=case.origin_country,
        destination_country=case.destination_country,
        transit_countries=[c for c in case.transit_countries.split(",") if c],
        detection_method=case.detection_method,
        concealment=case.concealment,
        platform_type=case.platform_type,
        platform_name=case.platform_name,
        consignee_name=case.consignee_name if own else None,
        notes=case.notes,
        created_at=case.created_at,
        updated_at=case.updated_at,
        submitted_at=case.submitted_at,
        validated_at=case.validated_at,
        seizures=[SeizureOut.model_validate(s) for s in case.seizures],
        total_pieces=sum(s.pieces for s in case.seizures),
        total_weight_kg=sum((s.weight_kg for s in case.seizures), Decimal(0)),
    )


def cases_out(session: Session, principal: Principal, op: Operation, cases: Sequence[Case]) -> list[CaseOut]:
    codes = orgcodes_of(session, {c.reporting_org_id for c in cases})
    return [to_out(c, principal, op.code, codes[c.reporting_org_id]) for c in cases]


def ensure_same_operation(case: Case, op: Operation) -> None:
    if case.operation_id != op.id:
        raise NotFound(f"no case {case.id} in operation {op.code}")
