"""Browse the audit trail: ``GET /api/v1/audit`` (coordinators and platform administrators).

Filters: ``action`` (exact, or a prefix ending in ``.`` or ``*``: ``auth.``), ``actor`` (part of the
actor's label: an e-mail or ``token:<prefix>:<name>``; a number is a user id), ``org`` (the actor's
organisation code), ``object_type`` and ``object_id``, ``date_from``/``date_to`` (UTC days, inclusive).
Newest first, paged. API tokens need the scope ``audit:read``. The query is
:func:`stopnet.audit.service.search_entries`; the schemas are in :mod:`stopnet.audit.schemas`.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from fastapi import APIRouter, Depends, Query

from stopnet.core.pagination import PagingDep
from stopnet.web.deps import AUDIT, DB, CurrentPrincipal

from .schemas import AuditFilters, AuditPage
from .service import search_entries

router = APIRouter(prefix="/api/v1", tags=["audit"])


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
