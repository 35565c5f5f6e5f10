"""Verification requests: sent by officers about a seizure, answered by the brand's holder within the
operation's deadline, or withdrawn; their answers become labels of the risk model."""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection
from pathlib import Path
from typing import NamedTuple

from sqlalchemy import ColumnElement, and_, false, func, select, true
from sqlalchemy.orm import Session, selectinload

from stopnet.access import policy
from stopnet.access.principal import Principal
from stopnet.audit.service import record
from stopnet.core.errors import Conflict, FieldError, Forbidden, InvalidInput, NotFound
from stopnet.db.models import (
    Case,
    Operation,
    OrgKind,
    Participant,
    ParticipantRole,
    Role,
    Seizure,
    User,
)
from stopnet.db.models.rightsholders import (
    Brand,
    BrandStatus,
    OperationVerificationSetting,
    RightsFile,
    VerificationAnswer,
    VerificationRequest,
    VerificationStatus,
)

from .. import deadlines
from ..schemas import (
    CaseVerificationOut,
    VerificationCreate,
    VerificationOut,
)
from .access import _require_read, _require_write, is_coordinator_of, is_private
from .brands import org_codes
from .constants import CUSTOMS_ROLES, MAX_ATTACHMENTS, _now
from .files import _safe_name, attachment_out, store_file


def response_working_days(session: Session, operation_id: int) -> tuple[int, bool]:
    """Working days to answer a request in this operation, and whether it is the default."""
    days = session.scalar(
        select(OperationVerificationSetting.response_working_days).where(
            OperationVerificationSetting.operation_id == operation_id
        )
    )
    return (deadlines.DEFAULT_RESPONSE_WORKING_DAYS, True) if days is None else (days, False)


def set_response_working_days(
    session: Session, principal: Principal, op: Operation, days: int, now: dt.datetime | None = None
) -> OperationVerificationSetting:
    """The operation's coordinating unit sets how many working days rights holders have to answer."""
    if not is_coordinator_of(session, principal, op.id) or is_private(principal):
        raise Forbidden("only the operation's coordinating unit sets the answer deadline")
    if not 1 <= days <= 60:
        raise InvalidInput([FieldError("response_working_days", "between 1 and 60", value=str(days))])
    setting = session.scalar(
        select(OperationVerificationSetting).where(OperationVerificationSetting.operation_id == op.id)
    )
    at = _now(now)
    if setting is None:
        setting = OperationVerificationSetting(operation_id=op.id, created_at=at)
        session.add(setting)
    setting.response_working_days = days
    setting.updated_by_id = principal.user_id
    setting.updated_at = at
    session.flush()
    record(session, principal, "verification.settings", "operation", op.code, {"response_working_days": days})
    return setting


def _personal_data_errors(case: Case | None, data: VerificationCreate) -> list[FieldError]:
    """The consignee's name never leaves the reporting administration: refuse it in free text."""
    if case is None or len(case.consignee_name.strip()) < 3:
        return []
    needle = " ".join(case.consignee_name.casefold().split())
    errors = []
    for name in ("product", "details"):
        text = " ".join(str(getattr(data, name)).casefold().split())
        if needle in text:
            errors.append(
                FieldError(name, "remove the consignee's name: personal data is never sent to rights holders")
            )
    return errors


def create_request(
    session: Session,
    principal: Principal,
    data: VerificationCreate,
    now: dt.datetime | None = None,
    holidays: Collection[dt.date] = (),
) -> VerificationRequest:
    """An officer asks the brand's holder to verify suspect goods; due after the operation's working
    days (default 10, weekends skipped). Nothing is copied from the case but what the officer sends,
    and the consignee's name is refused."""
    if principal.role not in CUSTOMS_ROLES or principal.org_kind is not OrgKind.CUSTOMS:
        raise Forbidden("only officers and national contact points of a customs administration ask")
    _require_write(principal)
    case: Case | None = None
    if data.case_id is not None:
        case = session.get(Case, data.case_id)
        if case is None or not policy.can_read_case(session, principal, case):
            raise NotFound(f"no case {data.case_id}")
        if case.reporting_org_id != principal.org_id:
            raise Forbidden("link a case your administration reported")
        op = session.get_one(Operation, case.operation_id)
        if data.operation and data.operation.upper() != op.code:
            raise InvalidInput([FieldError("operation", f"case {case.id} belongs to {op.code}")])
        if data.seizure_id is not None and not session.scalar(
            select(true()).where(Seizure.id == data.seizure_id, Seizure.case_id == case.id)
        ):
            raise InvalidInput([FieldError("seizure_id", f"not a seizure of case {case.id}")])
    else:
        found = session.scalar(select(Operation).where(Operation.code == (data.operation or "").upper()))
        if found is None or policy.participation(session, principal, found.id) is None:
            raise NotFound(f"no operation with code {data.operation!r}")
        op = found
    if policy.participation(session, principal, op.id) is not ParticipantRole.MEMBER:
        raise Forbidden(f"{principal.org_code} does not take part in {op.code}")
    brand = session.get(Brand, data.brand_id)
    if brand is None or brand.status is not BrandStatus.APPROVED:
        raise NotFound(f"no approved brand {data.brand_id}")
    errors = _personal_data_errors(case, data)
    if errors:
        raise InvalidInput(errors, "the request would send personal data")
    at = _now(now)
    days, _ = response_working_days(session, op.id)
    req = VerificationRequest(
        operation_id=op.id,
        brand_id=brand.id,
        requesting_org_id=principal.org_id,
        requested_by_id=principal.user_id,
        case_id=case.id if case else None,
        seizure_id=data.seizure_id,
        status=VerificationStatus.OPEN,
        product=data.product,
        details=data.details,
        hs_code=data.hs_code,
        pieces=data.pieces,
        origin_country=data.origin_country,
        departure_country=data.departure_country,
        detected_on=data.detected_on,
        sent_at=at,
        working_days=days,
        due_on=deadlines.add_working_days(at.date(), days, holidays),
        created_at=at,
        updated_at=at,
    )
    session.add(req)
    session.flush()
    record(
        session,
        principal,
        "verification.create",
        "verification_request",
        req.id,
        {"brand_id": brand.id, "op": op.code, "case_id": req.case_id, "due_on": req.due_on},
    )
    return req


def request_read_clause(session: Session, principal: Principal) -> ColumnElement[bool]:
    """Requests the principal may read: its administration's, its brands', or (coordinating unit)
    those of the operations it coordinates."""
    if principal.is_admin:
        return true()
    if is_private(principal):
        if principal.org_kind is not OrgKind.RIGHTS_HOLDER:
            return false()
        return VerificationRequest.brand_id.in_(
            select(Brand.id).where(Brand.owner_org_id == principal.org_id)
        )
    if principal.role is Role.COORDINATOR:
        coordinated = select(Participant.operation_id).where(
            Participant.org_id == principal.org_id, Participant.role == ParticipantRole.COORDINATOR
        )
        return VerificationRequest.operation_id.in_(coordinated)
    if principal.role in CUSTOMS_ROLES:
        return VerificationRequest.requesting_org_id == principal.org_id
    return false()


def _load_request(session: Session, request_id: int) -> VerificationRequest:
    req = session.scalar(
        select(VerificationRequest)
        .where(VerificationRequest.id == request_id)
        .options(selectinload(VerificationRequest.attachments))
    )
    if req is None:
        raise NotFound(f"no verification request {request_id}")
    return req


def get_request(session: Session, principal: Principal, request_id: int) -> VerificationRequest:
    policy.require_record_read(principal)
    req = _load_request(session, request_id)
    if not session.scalar(
        select(true()).where(VerificationRequest.id == req.id, request_read_clause(session, principal))
    ):
        raise NotFound(f"no verification request {request_id}")
    return req


def is_request_overdue(req: VerificationRequest, now: dt.datetime | None = None) -> bool:
    return req.status is VerificationStatus.OPEN and deadlines.is_overdue(req.due_on, _now(now))


def list_requests(
    session: Session,
    principal: Principal,
    *,
    status: VerificationStatus | None = None,
    overdue: bool | None = None,
    brand_id: int | None = None,
    operation: str | None = None,
    page: int = 1,
    page_size: int = 50,
    now: dt.datetime | None = None,
) -> tuple[list[VerificationRequest], int]:
    _require_read(principal)
    at = _now(now)
    stmt = select(VerificationRequest).where(request_read_clause(session, principal))
    if status is not None:
        stmt = stmt.where(VerificationRequest.status == status)
    if brand_id is not None:
        stmt = stmt.where(VerificationRequest.brand_id == brand_id)
    if operation:
        stmt = stmt.where(
            VerificationRequest.operation_id.in_(
                select(Operation.id).where(Operation.code == operation.upper())
            )
        )
    if overdue is not None:
        # overdue: open and past the end of its due day (UTC): due_on < today
        late = and_(
            VerificationRequest.status == VerificationStatus.OPEN, VerificationRequest.due_on < at.date()
        )
        stmt = stmt.where(late if overdue else ~late)
    total = session.scalar(select(func.count()).select_from(stmt.order_by(None).subquery())) or 0
    items = session.scalars(
        stmt.options(selectinload(VerificationRequest.attachments))
        .order_by(VerificationRequest.sent_at.desc(), VerificationRequest.id.desc())
        .offset((page - 1) * page_size)
        .limit(page_size)
    ).all()
    return list(items), total


def answer_request(
    session: Session,
    principal: Principal,
    request_id: int,
    answer: VerificationAnswer,
    note: str = "",
    now: dt.datetime | None = None,
) -> VerificationRequest:
    """The brand's holder answers genuine, counterfeit or inconclusive; the request is closed and
    the answer is attached to the linked case (``case_verifications``, ``verification_labels``)."""
    req = get_request(session, principal, request_id)
    brand = session.get_one(Brand, req.brand_id)
    if principal.role is not Role.RIGHTS_HOLDER or brand.owner_org_id != principal.org_id:
        raise Forbidden("only the brand's rights holder answers")
    _require_write(principal)
    if req.status is not VerificationStatus.OPEN:
        raise Conflict(f"request {req.id} is {req.status.value}")
    at = _now(now)
    late = deadlines.is_overdue(req.due_on, at)
    req.status = VerificationStatus.ANSWERED
    req.answer = VerificationAnswer(answer)
    req.answer_note = note
    req.answered_at = at
    req.answered_by_id = principal.user_id
    req.updated_at = at
    session.flush()
    record(
        session,
        principal,
        "verification.answer",
        "verification_request",
        req.id,
        {"answer": req.answer.value, "case_id": req.case_id, "late": late},
    )
    return req


def withdraw_request(
    session: Session, principal: Principal, request_id: int, now: dt.datetime | None = None
) -> VerificationRequest:
    req = get_request(session, principal, request_id)
    if req.requesting_org_id != principal.org_id or principal.role not in CUSTOMS_ROLES:
        raise Forbidden("only the requesting administration withdraws a request")
    _require_write(principal)
    if req.status is not VerificationStatus.OPEN:
        raise Conflict(f"request {req.id} is {req.status.value}")
    req.status = VerificationStatus.WITHDRAWN
    req.updated_at = _now(now)
    session.flush()
    record(session, principal, "verification.withdraw", "verification_request", req.id)
    return req


def add_request_attachment(
    session: Session,
    principal: Principal,
    request_id: int,
    filename: str,
    data: bytes,
    data_dir: Path,
    max_bytes: int,
    now: dt.datetime | None = None,
) -> RightsFile:
    """The requesting administration adds a photo or PDF while the request is open."""
    req = get_request(session, principal, request_id)
    if req.requesting_org_id != principal.org_id or principal.role not in CUSTOMS_ROLES:
        raise Forbidden("only the requesting administration adds files")
    _require_write(principal)
    if req.status is not VerificationStatus.OPEN:
        raise Conflict(f"request {req.id} is {req.status.value}")
    if len(req.attachments) >= MAX_ATTACHMENTS:
        raise Conflict(f"at most {MAX_ATTACHMENTS} files per request")
    stored = store_file(data_dir, filename, data, max_bytes)
    a = RightsFile(
        org_id=principal.org_id,
        filename=_safe_name(filename),
        content_type=stored.content_type,
        size_bytes=stored.size,
        sha256=stored.sha256,
        uploaded_by_id=principal.user_id,
        created_at=_now(now),
    )
    req.attachments.append(a)
    session.flush()
    return a


def request_out(
    session: Session, principal: Principal, req: VerificationRequest, now: dt.datetime | None = None
) -> VerificationOut:
    brand = session.get_one(Brand, req.brand_id)
    codes = org_codes(session, {req.requesting_org_id, brand.owner_org_id})
    op = session.get_one(Operation, req.operation_id)
    requester = req.requesting_org_id == principal.org_id and not is_private(principal)
    coordinator = not is_private(principal) and principal.is_coordinator
    reference = None
    requested_by = None
    if requester:
        if req.case_id is not None:
            reference = session.scalar(select(Case.reference).where(Case.id == req.case_id))
        if req.requested_by_id is not None:
            requested_by = session.scalar(select(User.email).where(User.id == req.requested_by_id))
    return VerificationOut(
        id=req.id,
        operation=op.code,
        brand_id=brand.id,
        brand=brand.name,
        brand_owner=codes[brand.owner_org_id],
        requesting_org=codes[req.requesting_org_id],
        status=req.status,
        product=req.product,
        details=req.details,
        hs_code=req.hs_code,
        pieces=req.pieces,
        origin_country=req.origin_country,
        departure_country=req.departure_country,
        detected_on=req.detected_on,
        sent_at=req.sent_at,
        working_days=req.working_days,
        due_on=req.due_on,
        overdue=is_request_overdue(req, now),
        answer=req.answer,
        answer_note=req.answer_note,
        answered_at=req.answered_at,
        attachments=[attachment_out(a) for a in req.attachments],
        case_id=req.case_id if (requester or coordinator) else None,
        case_reference=reference,
        seizure_id=req.seizure_id if (requester or coordinator) else None,
        requested_by=requested_by,
    )


def case_verifications(
    session: Session, principal: Principal, case_id: int, now: dt.datetime | None = None
) -> list[CaseVerificationOut]:
    """The verification requests about a case and their answers, for whoever may read the case."""
    _require_read(principal)
    case = session.get(Case, case_id)
    if case is None or is_private(principal) or not policy.can_read_case(session, principal, case):
        raise NotFound(f"no case {case_id}")
    rows = session.execute(
        select(VerificationRequest, Brand.name)
        .join(Brand, Brand.id == VerificationRequest.brand_id)
        .where(VerificationRequest.case_id == case_id)
        .order_by(VerificationRequest.sent_at, VerificationRequest.id)
    ).all()
    return [
        CaseVerificationOut(
            request_id=r.id,
            brand_id=r.brand_id,
            brand=name,
            seizure_id=r.seizure_id,
            status=r.status,
            due_on=r.due_on,
            overdue=is_request_overdue(r, now),
            answer=r.answer,
            answer_note=r.answer_note,
            answered_at=r.answered_at,
        )
        for r, name in rows
    ]


class VerificationLabel(NamedTuple):
    case_id: int
    label: str  # genuine | counterfeit | inconclusive
    answered_at: dt.datetime


def verification_labels(session: Session, since: dt.datetime | None = None) -> list[VerificationLabel]:
    """Answers of verification requests linked to a case, answered at or after ``since``, oldest first:
    the labels the risk engine learns from. A system read (no principal): call it from server-side
    jobs only, never from a route."""
    stmt = select(
        VerificationRequest.case_id, VerificationRequest.answer, VerificationRequest.answered_at
    ).where(
        VerificationRequest.status == VerificationStatus.ANSWERED,
        VerificationRequest.case_id.is_not(None),
        VerificationRequest.answer.is_not(None),
    )
    if since is not None:
        stmt = stmt.where(VerificationRequest.answered_at >= since)
    rows = session.execute(stmt.order_by(VerificationRequest.answered_at, VerificationRequest.id)).all()
    return [
        VerificationLabel(c, a.value, t)
        for c, a, t in rows
        if c is not None and a is not None and t is not None
    ]
