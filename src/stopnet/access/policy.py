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

from stopnet.core.errors import FieldError, Forbidden
from stopnet.db.models import Case, CaseStatus, OrgKind, Participant, ParticipantRole, Role, Visibility

from .principal import Principal

SHARED = (Visibility.PARTICIPANTS, Visibility.PARTNERS)
RESTRICTED = (Visibility.OWN, Visibility.COORDINATOR)  # a read by anyone but the reporter is audited
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


def is_restricted_read(principal: Principal, case: Case) -> bool:
    """A read of an ``own`` or ``coordinator`` case by someone outside its reporting administration."""
    return case.reporting_org_id != principal.org_id and case.visibility in RESTRICTED


def restricted_read_clause(principal: Principal) -> ColumnElement[bool]:
    """The SQL twin of :func:`is_restricted_read`, to find such cases among those a principal reads."""
    return and_(Case.reporting_org_id != principal.org_id, Case.visibility.in_(RESTRICTED))


def can_read_case(session: Session, principal: Principal, case: Case) -> bool:
    clause = case_read_clause(session, principal, case.operation_id)
    return bool(session.scalar(select(true()).where(Case.id == case.id, clause)))


def may_report(principal: Principal) -> bool:
    """Whether the principal's role reports cases at all (pages offer the forms; ``require_reporter`` decides
    for one operation)."""
    return principal.role in REPORTER_ROLES and principal.org_kind is OrgKind.CUSTOMS


def require_reporter(
    session: Session, principal: Principal, operation_id: int, scope: str = "cases:write"
) -> None:
    """Only officers and contact points of a participating customs administration report cases; a token
    needs ``scope`` (``cases:write``, or ``import`` for a bulk import)."""
    if principal.role not in REPORTER_ROLES or principal.org_kind is not OrgKind.CUSTOMS:
        raise Forbidden("only officers and national contact points of a customs administration report cases")
    if participation(session, principal, operation_id) is not ParticipantRole.MEMBER:
        raise Forbidden(f"{principal.org_code} does not take part in this operation")
    require_scope(principal, scope)


def require_own_case(principal: Principal, case: Case) -> None:
    if case.reporting_org_id != principal.org_id or principal.role not in REPORTER_ROLES:
        raise Forbidden("only the reporting administration may change this case")
    require_scope(principal, "cases:write")


def require_validator(session: Session, principal: Principal, case: Case) -> None:
    """The national contact point of the reporting administration, or the operation's coordinator."""
    own_ncp = principal.role is Role.CONTACT_POINT and case.reporting_org_id == principal.org_id
    coordinator = principal.role is Role.COORDINATOR and (
        participation(session, principal, case.operation_id) is ParticipantRole.COORDINATOR
    )
    if not (own_ncp or coordinator):
        raise Forbidden("only the national contact point or the operation coordinator validates cases")
    require_scope(principal, "cases:validate")


def require_read(principal: Principal) -> None:
    """Lists, searches, aggregates and reads of records: a token needs ``cases:read``."""
    require_scope(principal, "cases:read")


def require_record_read(principal: Principal) -> None:
    """One record loaded by a path a token may take with ``cases:read`` or ``cases:write``: a record is
    read to be changed, and a change answers with the record. Which of the two a route needs is its
    declaration (web/deps.RouteAccess); lists always need ``cases:read``."""
    if not principal.has_scope("cases:write"):
        require_scope(principal, "cases:read")


def require_scope(principal: Principal, scope: str) -> None:
    """An API token acts only within the scopes it was granted (people signed in hold every scope)."""
    if not principal.has_scope(scope):
        raise Forbidden(f"this API token lacks the scope {scope}")


# ------------------------------------------------------------------------------------------ accounts


# Which roles an organisation of each kind may hold (users and API tokens alike).
ROLE_ORG_KINDS: dict[Role, frozenset[OrgKind]] = {
    Role.ADMIN: frozenset({OrgKind.COORDINATOR}),
    Role.COORDINATOR: frozenset({OrgKind.COORDINATOR}),
    Role.ANALYST: frozenset({OrgKind.RILO}),
    Role.CONTACT_POINT: frozenset({OrgKind.CUSTOMS}),
    Role.OFFICER: frozenset({OrgKind.CUSTOMS}),
    Role.PARTNER: frozenset({OrgKind.PARTNER}),
    Role.RIGHTS_HOLDER: frozenset({OrgKind.RIGHTS_HOLDER, OrgKind.PLATFORM}),
}
# The roles a national contact point may give: the officers of its own administration (never its own role).
CONTACT_POINT_GRANTS = frozenset({Role.OFFICER})
# The roles a contact point may give to its administration's API tokens.
CONTACT_POINT_TOKEN_ROLES = frozenset({Role.OFFICER, Role.CONTACT_POINT})


def require_session(principal: Principal) -> None:
    """Accounts, API tokens and second factors are managed by people signed in, never by an API token."""
    if principal.via != "session":
        raise Forbidden("this is managed by a signed-in user, not with an API token")


def require_user_manager(principal: Principal) -> None:
    """Platform administrators manage every account; contact points the officers of their administration."""
    require_session(principal)
    if principal.role not in (Role.ADMIN, Role.CONTACT_POINT):
        raise Forbidden("only platform administrators and national contact points manage accounts")


def can_manage_user(principal: Principal, org_id: int, role: Role) -> bool:
    """May ``principal`` change an account of ``role`` in organisation ``org_id``?"""
    if principal.via != "session":
        return False
    if principal.role is Role.ADMIN:
        return True
    return (
        principal.role is Role.CONTACT_POINT and principal.org_id == org_id and role in CONTACT_POINT_GRANTS
    )


def can_see_org_accounts(principal: Principal, org_id: int) -> bool:
    return principal.role is Role.ADMIN or (
        principal.role is Role.CONTACT_POINT and principal.org_id == org_id
    )


class RoleDoesNotFit(Forbidden):
    """A role refused for the organisation (or the grantor) that a form chose: still a 403, and the form
    shows :attr:`field_error` next to its role field."""

    def __init__(self, message: str, field_error: FieldError) -> None:
        super().__init__(message)
        self.field_error = field_error


def require_role_fits(role: Role, kind: OrgKind) -> None:
    if kind not in ROLE_ORG_KINDS[role]:
        fits = sorted(r.value for r, kinds in ROLE_ORG_KINDS.items() if kind in kinds)
        message = f"the role {role.value} cannot be held in an organisation of kind {kind.value}"
        readable = (
            f"Role: {role.value.replace('_', ' ')} does not fit a {kind.value.lower().replace('_', ' ')} "
            f"organisation; choose {', '.join(f.replace('_', ' ') for f in fits) or 'another organisation'}"
        )
        raise RoleDoesNotFit(
            message, FieldError("role", readable, value=role.value, code="role_does_not_fit")
        )


def require_token_admin(principal: Principal) -> None:
    """Whoever manages some organisation's API tokens: platform administrators and contact points."""
    require_session(principal)
    if principal.role not in (Role.ADMIN, Role.CONTACT_POINT):
        raise Forbidden(
            "API tokens are managed by the organisation's contact point or a platform administrator"
        )


def require_token_manager(principal: Principal, org_id: int) -> None:
    """An organisation's API tokens are managed by its contact point or by a platform administrator."""
    require_session(principal)
    if principal.role is Role.ADMIN:
        return
    if principal.role is Role.CONTACT_POINT and principal.org_id == org_id:
        return
    raise Forbidden("API tokens are managed by the organisation's contact point or a platform administrator")


def require_token_role(principal: Principal, role: Role, kind: OrgKind) -> None:
    require_role_fits(role, kind)
    if principal.role is not Role.ADMIN and role not in CONTACT_POINT_TOKEN_ROLES:
        readable = (
            f"Role: a contact point gives its tokens the role officer or contact point, not {role.value}"
        )
        raise RoleDoesNotFit(
            "a contact point gives its tokens the role officer or contact_point",
            FieldError("role", readable, value=role.value, code="role_not_grantable"),
        )


def may_read_audit(principal: Principal) -> bool:
    """Coordinators and platform administrators (a token also needs the scope audit:read)."""
    return principal.role in (Role.ADMIN, Role.COORDINATOR) and principal.has_scope("audit:read")


def require_audit_reader(principal: Principal) -> None:
    """The audit trail is read by coordinators and platform administrators (tokens: scope audit:read)."""
    if principal.role not in (Role.ADMIN, Role.COORDINATOR):
        raise Forbidden("only coordinators and platform administrators read the audit trail")
    require_scope(principal, "audit:read")
