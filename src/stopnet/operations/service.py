"""Operations: read by their participants, created and staffed by coordinators."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import func, select
from sqlalchemy.orm import Session, selectinload

from stopnet.access.policy import participation
from stopnet.access.principal import Principal
from stopnet.audit.service import record
from stopnet.core.errors import Conflict, Forbidden, NotFound
from stopnet.db.models import (
    ContactPoint,
    Operation,
    OperationPhase,
    OperationStatus,
    Organisation,
    Participant,
    ParticipantRole,
    Role,
)

from .schemas import ContactPointOut, OperationCreate, OperationDetail, OperationOut, ParticipantOut, PhaseOut


def get_operation(session: Session, principal: Principal, code: str) -> Operation:
    """The operation, if the principal's organisation takes part in it (admins see all)."""
    op = session.scalar(select(Operation).where(Operation.code == code.upper()))
    if op is None:
        raise NotFound(f"no operation with code {code!r}")
    if not principal.is_admin and participation(session, principal, op.id) is None:
        raise NotFound(f"no operation with code {code!r}")
    return op


def list_operations(session: Session, principal: Principal) -> list[Operation]:
    stmt = select(Operation).order_by(Operation.starts_on.desc())
    if not principal.is_admin:
        stmt = stmt.join(Participant, Participant.operation_id == Operation.id).where(
            Participant.org_id == principal.org_id
        )
    return list(session.scalars(stmt.options(selectinload(Operation.phases))))


def create_operation(session: Session, principal: Principal, data: OperationCreate) -> Operation:
    if principal.role not in (Role.ADMIN, Role.COORDINATOR):
        raise Forbidden("only coordinators and administrators create operations")
    if session.scalar(select(Operation.id).where(Operation.code == data.code)) is not None:
        raise Conflict(f"operation {data.code} already exists")
    op = Operation(
        code=data.code,
        name=data.name,
        scope=data.scope,
        starts_on=data.starts_on,
        ends_on=data.ends_on,
        default_visibility=data.default_visibility,
        coordinator_org_id=principal.org_id,
        phases=[OperationPhase(**p.model_dump()) for p in data.phases],
    )
    session.add(op)
    session.flush()
    session.add(Participant(operation_id=op.id, org_id=principal.org_id, role=ParticipantRole.COORDINATOR))
    record(session, principal, "operation.create", "operation", op.code)
    session.flush()
    return op


def add_participant(
    session: Session, principal: Principal, op: Operation, org: Organisation, role: ParticipantRole
) -> Participant:
    if principal.role not in (Role.ADMIN, Role.COORDINATOR) or (
        not principal.is_admin and participation(session, principal, op.id) is not ParticipantRole.COORDINATOR
    ):
        raise Forbidden("only the operation's coordinator adds participants")
    existing = session.scalar(
        select(Participant).where(Participant.operation_id == op.id, Participant.org_id == org.id)
    )
    if existing is not None:
        existing.role = role
        session.flush()
        return existing
    p = Participant(operation_id=op.id, org_id=org.id, role=role)
    session.add(p)
    record(session, principal, "operation.participant", "operation", op.code, {"org": org.code, "role": role})
    session.flush()
    return p


def _counts(session: Session, op_id: int) -> tuple[int, int]:
    rows = session.execute(
        select(Participant.role, func.count())
        .where(Participant.operation_id == op_id)
        .group_by(Participant.role)
    ).all()
    total = sum(n for _, n in rows)
    members = sum(n for r, n in rows if r is ParticipantRole.MEMBER)
    return total, members


def status_on(op: Operation, today: dt.date | None = None) -> OperationStatus:
    """The status the dates give: planned before the first phase (or the operation's first day), active
    until the last phase (or its last day) has ended, closed after it; an operation closed by hand stays
    closed."""
    if op.status is OperationStatus.CLOSED:
        return OperationStatus.CLOSED
    today = today or dt.date.today()
    first = min([op.starts_on, *(p.starts_on for p in op.phases)])
    last = max([op.ends_on, *(p.ends_on for p in op.phases)])
    if today < first:
        return OperationStatus.PLANNED
    if today > last:
        return OperationStatus.CLOSED
    return OperationStatus.ACTIVE


def to_out(session: Session, op: Operation) -> OperationOut:
    total, members = _counts(session, op.id)
    coord = session.get(Organisation, op.coordinator_org_id) if op.coordinator_org_id else None
    return OperationOut(
        code=op.code,
        name=op.name,
        scope=op.scope,
        starts_on=op.starts_on,
        ends_on=op.ends_on,
        status=status_on(op),
        default_visibility=op.default_visibility,
        coordinator=coord.code if coord else None,
        phases=[PhaseOut.model_validate(p) for p in op.phases],
        participant_count=total,
        member_count=members,
    )


def to_detail(session: Session, op: Operation) -> OperationDetail:
    base = to_out(session, op)
    parts = session.execute(
        select(Participant.role, Organisation)
        .join(Organisation, Organisation.id == Participant.org_id)
        .where(Participant.operation_id == op.id)
        .order_by(Participant.role, Organisation.code)
    ).all()
    cps = session.execute(
        select(ContactPoint, Organisation.code)
        .join(Organisation, Organisation.id == ContactPoint.org_id)
        .where(ContactPoint.operation_id == op.id)
        .order_by(Organisation.code, ContactPoint.name)
    ).all()
    return OperationDetail(
        **base.model_dump(),
        participants=[
            ParticipantOut(
                org_code=o.code,
                org_name=o.name,
                org_kind=o.kind.value,
                country_code=o.country_code,
                region_code=o.region_code,
                role=r,
            )
            for r, o in parts
        ],
        contact_points=[
            ContactPointOut(
                org_code=code,
                name=c.name,
                function=c.function,
                email=c.email,
                phone=c.phone,
                languages=c.languages,
            )
            for c, code in cps
        ],
    )
