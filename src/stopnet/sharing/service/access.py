"""Who takes part in sharing: participants of an operation, case readers, alert recipients."""

from __future__ import annotations

from sqlalchemy import ColumnElement, exists, false, or_, select, true
from sqlalchemy.orm import Session

from stopnet.access import policy
from stopnet.access.principal import Principal
from stopnet.core.errors import Forbidden
from stopnet.db.models import (
    Case,
    ParticipantRole,
    Role,
)
from stopnet.db.models.sharing import (
    Alert,
    AlertRecipient,
    Thread,
)

from ..broker import max_event_id


def feed_cursor(session: Session) -> int:
    """The id of the latest event committed to the live feed: a page read after it and connecting its
    stream from it (``data-cursor``) misses nothing and shows nothing twice."""
    return max_event_id(session)


def _participation(session: Session, principal: Principal, op_id: int) -> ParticipantRole | None:
    return policy.participation(session, principal, op_id)


def in_operation(session: Session, principal: Principal, op_id: int) -> bool:
    """Takes part in the operation's exchanges: every participant but rights holders, and admins."""
    role = _participation(session, principal, op_id)
    return principal.is_admin or (role is not None and role is not ParticipantRole.RIGHTS_HOLDER)


def oversees(session: Session, principal: Principal, op_id: int) -> bool:
    """The operation's coordinating unit and platform admins see every alert."""
    return principal.is_admin or (
        principal.role is Role.COORDINATOR
        and _participation(session, principal, op_id) is ParticipantRole.COORDINATOR
    )


def _require_read(principal: Principal) -> None:
    policy.require_read(principal)


def _require_write(principal: Principal) -> None:
    if principal.role is Role.RIGHTS_HOLDER:
        raise Forbidden("rights holders do not take part in the operation's alerts and messages")
    if not principal.has_scope("cases:write"):
        raise Forbidden("this API token lacks the scope cases:write")


def _require_in_operation(session: Session, principal: Principal, op_id: int) -> None:
    if not in_operation(session, principal, op_id):
        raise Forbidden("only the operation's participants take part in its alerts and messages")


def alert_read_clause(session: Session, principal: Principal, op_id: int) -> ColumnElement[bool]:
    """A WHERE clause on :class:`Alert` selecting the alerts ``principal`` may read in one operation."""
    if oversees(session, principal, op_id):
        return true()
    if not in_operation(session, principal, op_id):
        return false()
    return or_(
        Alert.sender_org_id == principal.org_id,
        exists().where(AlertRecipient.alert_id == Alert.id, AlertRecipient.org_id == principal.org_id),
    )


def _alert_visible(session: Session, principal: Principal, alert: Alert) -> bool:
    clause = alert_read_clause(session, principal, alert.operation_id)
    return bool(session.scalar(select(true()).where(Alert.id == alert.id, clause)))


def can_read_thread(session: Session, principal: Principal, thread: Thread) -> bool:
    """Whether the principal's role reads the thread (its callers checked the token's scope)."""
    if thread.case_id is not None:
        case = session.get(Case, thread.case_id)
        return case is not None and policy.can_read_case(session, principal, case)
    return in_operation(session, principal, thread.operation_id)
