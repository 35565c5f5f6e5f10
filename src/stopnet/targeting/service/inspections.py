"""Inspection results: the labels the model learns from, recorded by the administration that inspected."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select
from sqlalchemy.orm import Session

from stopnet.access.principal import Principal
from stopnet.audit.service import record
from stopnet.core.errors import Conflict, FieldError, Forbidden, InvalidInput, NotFound
from stopnet.db.models import Case, Operation, Seizure
from stopnet.db.models.targeting import (
    Consignment,
    InspectionOutcome,
    InspectionResult,
)

from ..schemas import (
    InspectionIn,
    InspectionOut,
)
from .access import access, target_org
from .constants import _STAFF_ROLES


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
