"""Who reaches which targeting data: the :class:`Scope` of a principal in an operation (its own
administration, or every one for the coordinator) and the administration an action is for."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, select, true
from sqlalchemy.orm import Session

from stopnet.access.policy import participation
from stopnet.access.principal import Principal
from stopnet.core.errors import FieldError, Forbidden, InvalidInput
from stopnet.db.models import Operation, Organisation, OrgKind, ParticipantRole, Role

from .constants import _STAFF_ROLES


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
