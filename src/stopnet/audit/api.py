"""Browse the audit trail: ``GET /api/v1/audit`` (coordinators and platform administrators).

Filters: ``action`` (exact, or a prefix ending in ``.`` or ``*``: ``auth.``), ``actor`` (part of the
actor's label: an e-mail or ``token:<prefix>:<name>``; a number is a user id), ``org`` (the actor's
organisation code), ``object_type`` and ``object_id``, ``date_from``/``date_to`` (UTC days, inclusive).
Newest first, paged. API tokens need the scope ``audit:read``.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, Field
from sqlalchemy import ColumnElement, func, select
from sqlalchemy.orm import Session

from stopnet.access import policy
from stopnet.access.principal import Principal
from stopnet.core.errors import FieldError, InvalidInput
from stopnet.core.like import LIKE_ESCAPE, contains_pattern
from stopnet.core.pagination import PagingDep
from stopnet.db.models import AuditEntry, Organisation
from stopnet.web.deps import AUDIT, DB, CurrentPrincipal

router = APIRouter(prefix="/api/v1", tags=["audit"])


class AuditFilters(BaseModel):
    action: str | None = Field(default=None, max_length=48)
    actor: str | None = Field(default=None, max_length=254)
    org: str | None = Field(default=None, max_length=32)
    object_type: str | None = Field(default=None, max_length=48)
    object_id: str | None = Field(default=None, max_length=64)
    date_from: dt.date | None = None
    date_to: dt.date | None = None


class AuditEntryOut(BaseModel):
    id: int
    at: dt.datetime
    actor_label: str
    actor_user_id: int | None
    actor_org: str | None
    action: str
    object_type: str
    object_id: str
    details: dict[str, Any]
    prev_hash: str
    entry_hash: str


class AuditPage(BaseModel):
    items: list[AuditEntryOut]
    total: int
    page: int
    page_size: int


def _where(session: Session, f: AuditFilters) -> list[ColumnElement[bool]]:
    clauses: list[ColumnElement[bool]] = []
    if f.action:
        if f.action.endswith(("*", ".")):
            clauses.append(AuditEntry.action.startswith(f.action.rstrip("*"), autoescape=True))
        else:
            clauses.append(AuditEntry.action == f.action)
    if f.actor:
        actor = f.actor.strip()
        if actor.isdigit():
            clauses.append(AuditEntry.actor_user_id == int(actor))
        else:
            clauses.append(
                func.lower(AuditEntry.actor_label).like(contains_pattern(actor), escape=LIKE_ESCAPE)
            )
    if f.org:
        org_id = session.scalar(select(Organisation.id).where(Organisation.code == f.org.strip().upper()))
        clauses.append(AuditEntry.actor_org_id == (org_id if org_id is not None else -1))
    if f.object_type:
        clauses.append(AuditEntry.object_type == f.object_type)
    if f.object_id:
        clauses.append(AuditEntry.object_id == f.object_id)
    if f.date_from:
        clauses.append(AuditEntry.at >= dt.datetime.combine(f.date_from, dt.time(), tzinfo=dt.UTC))
    if f.date_to:
        end = dt.datetime.combine(f.date_to + dt.timedelta(days=1), dt.time(), tzinfo=dt.UTC)
        clauses.append(AuditEntry.at < end)
    return clauses


def search_entries(
    session: Session, principal: Principal, filters: AuditFilters, page: int, page_size: int
) -> AuditPage:
    """One page of the audit trail, newest first (readers: coordinators and platform administrators)."""
    policy.require_audit_reader(principal)
    if filters.date_from and filters.date_to and filters.date_from > filters.date_to:
        raise InvalidInput([FieldError("date_to", "is before date_from")], "the filters are invalid")
    where = _where(session, filters)
    total = session.scalar(select(func.count()).select_from(AuditEntry).where(*where)) or 0
    stmt = (
        select(AuditEntry, Organisation.code)
        .outerjoin(Organisation, Organisation.id == AuditEntry.actor_org_id)
        .where(*where)
        .order_by(AuditEntry.id.desc())
        .offset((page - 1) * page_size)
        .limit(page_size)
    )
    items = [
        AuditEntryOut(
            id=e.id,
            at=e.at,
            actor_label=e.actor_label,
            actor_user_id=e.actor_user_id,
            actor_org=code,
            action=e.action,
            object_type=e.object_type,
            object_id=e.object_id,
            details=e.details or {},
            prev_hash=e.prev_hash,
            entry_hash=e.entry_hash,
        )
        for e, code in session.execute(stmt).all()
    ]
    return AuditPage(items=items, total=total, page=page, page_size=page_size)


def audit_filters(
    action: Annotated[str | None, Query(max_length=48)] = None,
    actor: Annotated[str | None, Query(max_length=254)] = None,
    org: Annotated[str | None, Query(max_length=32)] = None,
    object_type: Annotated[str | None, Query(max_length=48)] = None,
    object_id: Annotated[str | None, Query(max_length=64)] = None,
    date_from: dt.date | None = None,
    date_to: dt.date | None = None,
) -> AuditFilters:
    values = {k: v for k, v in locals().items() if v is not None and v != ""}
    return AuditFilters.model_validate(values)


@router.get("/audit", response_model=AuditPage, dependencies=[AUDIT])
def list_audit(
    filters: Annotated[AuditFilters, Depends(audit_filters)],
    paging: PagingDep,
    db: DB,
    principal: CurrentPrincipal,
) -> AuditPage:
    """The audit trail, newest first: sign-ins, account and token changes, restricted reads, case writes."""
    return search_entries(db, principal, filters, paging.page, paging.page_size)
