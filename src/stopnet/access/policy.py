"""Record visibility and permissions, enforced in the service layer for every read and write path.

The full matrix is documented in docs/permissions.md. In short, for a case of an operation:

* the reporting administration always sees its own cases, drafts included;
* nobody else ever sees a draft;
* ``own`` cases are seen by the reporting administration only;
* ``coordinator`` cases also by the operation's coordinating unit (coordinators, platform admins);
* ``participants`` cases also by every participating customs administration, and by regional analysts
  (RILO) for cases reported in their region;
* ``partners`` cases also by partner agencies taking part in the operation.
Rights holders see no case through these paths (they see their own brands' seizures through the
rights-holder views, without personal data).
"""

from __future__ import annotations

from sqlalchemy import ColumnElement, and_, false, or_, select, true
from sqlalchemy.orm import Session

from stopnet.core.errors import Forbidden
from stopnet.db.models import Case, CaseStatus, OrgKind, Participant, ParticipantRole, Role, Visibility

from .principal import Principal

SHARED = (Visibility.PARTICIPANTS, Visibility.PARTNERS)
REPORTER_ROLES = (Role.OFFICER, Role.CONTACT_POINT)


def participation(session: Session, principal: Principal, operation_id: int) -> ParticipantRole | None:
    return session.scalar(
        select(Participant.role).where(
            Participant.operation_id == operation_id, Participant.org_id == principal.org_id
        )
    )


def case_read_clause(session: Session, principal: Principal, operation_id: int) -> ColumnElement[bool]:
    """A WHERE clause on :class:`Case` selecting what ``principal`` may read in one operation."""
    own = Case.reporting_org_id == principal.org_id
    not_draft = Case.status != CaseStatus.DRAFT
    role = participation(session, principal, operation_id)
    if principal.role is Role.ADMIN or (
        principal.role is Role.COORDINATOR and role is ParticipantRole.COORDINATOR
    ):
        return or_(own, and_(not_draft, Case.visibility != Visibility.OWN))
    if principal.role is Role.RIGHTS_HOLDER or role is None:
        return own if principal.org_kind is OrgKind.CUSTOMS else false()
    if principal.role is Role.PARTNER:
        return and_(not_draft, Case.visibility == Visibility.PARTNERS)
    if principal.role is Role.ANALYST:
        region = Case.region_code == principal.region_code if principal.region_code else false()
        return or_(own, and_(not_draft, region, Case.visibility.in_(SHARED)))
    if principal.role in REPORTER_ROLES:
        return or_(own, and_(not_draft, Case.visibility.in_(SHARED)))
    return false()


def can_read_case(session: Session, principal: Principal, case: Case) -> bool:
    clause = case_read_clause(session, principal, case.operation_id)
    return bool(session.scalar(select(true()).where(Case.id == case.id, clause)))


def require_reporter(session: Session, principal: Principal, operation_id: int) -> None:
    """Only officers and contact points of a participating customs administration report cases."""
    if principal.role not in REPORTER_ROLES or principal.org_kind is not OrgKind.CUSTOMS:
        raise Forbidden("only officers and national contact points of a customs administration report cases")
    if participation(session, principal, operation_id) is not ParticipantRole.MEMBER:
        raise Forbidden(f"{principal.org_code} does not take part in this operation")
    if not principal.has_scope("cases:write"):
        raise Forbidden("this API token lacks the scope cases:write")


def require_own_case(principal: Principal, case: Case) -> None:
    if case.reporting_org_id != principal.org_id or principal.role not in REPORTER_ROLES:
        raise Forbidden("only the reporting administration may change this case")
    if not principal.has_scope("cases:write"):
        raise Forbidden("this API token lacks the scope cases:write")


def require_validator(session: Session, principal: Principal, case: Case) -> None:
    """The national contact point of the reporting administration, or the operation's coordinator."""
    own_ncp = principal.role is Role.CONTACT_POINT and case.reporting_org_id == principal.org_id
    coordinator = principal.role is Role.COORDINATOR and (
        participation(session, principal, case.operation_id) is ParticipantRole.COORDINATOR
    )
    if not (own_ncp or coordinator):
        raise Forbidden("only the national contact point or the operation coordinator validates cases")
    if not principal.has_scope("cases:validate"):
        raise Forbidden("this API token lacks the scope cases:validate")


def require_read(principal: Principal) -> None:
    if not principal.has_scope("cases:read"):
        raise Forbidden("this API token lacks the scope cases:read")
