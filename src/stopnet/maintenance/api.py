"""REST API of an operation's personal-data policy (``/api/v1/operations/{code}/data-protection``).

The routes call :mod:`stopnet.maintenance.service.purge`; the schemas are in
:mod:`stopnet.maintenance.schemas`.
"""

from __future__ import annotations

from fastapi import APIRouter, Request

from stopnet.operations.service import get_operation
from stopnet.web.deps import DB, WRITE, CurrentPrincipal, pseudonym_key

from .schemas import DataProtectionOut, PurgeReport, RetentionUpdate
from .service import purge

router = APIRouter(prefix="/api/v1/operations", tags=["data protection"])


@router.get("/{code}/data-protection", response_model=DataProtectionOut, dependencies=[WRITE])
def data_protection(code: str, db: DB, principal: CurrentPrincipal) -> DataProtectionOut:
    """The retention policy of the operation's personal data, and what a purge would remove now."""
    op = get_operation(db, principal, code)
    return purge.overview(db, principal, op)


@router.put("/{code}/data-protection", response_model=DataProtectionOut, dependencies=[WRITE])
def set_data_protection(
    code: str, body: RetentionUpdate, db: DB, principal: CurrentPrincipal
) -> DataProtectionOut:
    """Set how long the consignee's name of a case is kept (coordinator or platform admin)."""
    op = get_operation(db, principal, code)
    purge.set_retention(db, principal, op, body)
    out = purge.overview(db, principal, op)
    db.commit()
    return out


@router.post("/{code}/data-protection/purge", response_model=PurgeReport, dependencies=[WRITE])
def purge_now(
    code: str,
    request: Request,
    db: DB,
    principal: CurrentPrincipal,
    dry_run: bool = False,
) -> PurgeReport:
    """Pseudonymise the consignees of cases older than the policy (``dry_run``: only count)."""
    op = get_operation(db, principal, code)
    report = purge.purge_personal_data(
        db,
        principal,
        op,
        master_key=pseudonym_key(request),
        dry_run=dry_run,
    )
    db.commit()
    return report
