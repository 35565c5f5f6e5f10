"""Who acts: the private-sector holder or platform, and the public-sector readers of brands and guides."""

from __future__ import annotations

from sqlalchemy.orm import Session

from stopnet.access import policy
from stopnet.access.principal import Principal
from stopnet.core.errors import Forbidden
from stopnet.db.models import (
    OrgKind,
    ParticipantRole,
    Role,
)

from .constants import PRIVATE_KINDS


def is_private(principal: Principal) -> bool:
    """A rights holder or platform account: sees only its own organisation's data."""
    return principal.org_kind in PRIVATE_KINDS or principal.role is Role.RIGHTS_HOLDER


def _require_read(principal: Principal) -> None:
    policy.require_read(principal)


def _require_write(principal: Principal) -> None:
    if not principal.has_scope("cases:write"):
        raise Forbidden("this API token lacks the scope cases:write")


def _require_holder(principal: Principal) -> None:
    if principal.org_kind is not OrgKind.RIGHTS_HOLDER or principal.role is not Role.RIGHTS_HOLDER:
        raise Forbidden("only rights holders do this")
    _require_write(principal)


def _require_coordinator(principal: Principal) -> None:
    if not principal.is_coordinator or is_private(principal):
        raise Forbidden("only the coordinating unit does this")


def is_coordinator_of(session: Session, principal: Principal, operation_id: int) -> bool:
    if principal.is_admin:
        return True
    return principal.role is Role.COORDINATOR and (
        policy.participation(session, principal, operation_id) is ParticipantRole.COORDINATOR
    )
