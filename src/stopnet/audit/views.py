"""The audit trail page (``/audit``) and its JSON twin: coordinators and platform administrators."""

from __future__ import annotations

import math

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from pydantic import ValidationError

from stopnet.access import policy
from stopnet.core.errors import FieldError, InvalidInput
from stopnet.core.pagination import PagingDep
from stopnet.core.validation import field_errors
from stopnet.web.deps import AUDIT, DB, CurrentPrincipal
from stopnet.web.pages import render, wants_json

from .schemas import AuditFilters, AuditPage
from .service import search_entries

router = APIRouter(include_in_schema=False)

ACTIONS = [
    "auth.",
    "auth.sign_in",
    "auth.failure",
    "auth.sign_out",
    "auth.sign_out_everywhere",
    "password.",
    "totp.",
    "user.",
    "user.role_change",
    "token.",
    "case.",
]


@router.get("/audit", dependencies=[AUDIT])
def audit_page(request: Request, paging: PagingDep, db: DB, principal: CurrentPrincipal) -> Response:
    policy.require_audit_reader(principal)
    values = {
        name: raw.strip()
        for name in AuditFilters.model_fields
        if (raw := request.query_params.get(name)) is not None and raw.strip()
    }
    errors: list[FieldError] = []
    filters = AuditFilters()
    try:
        filters = AuditFilters.model_validate(values)
    except ValidationError as e:
        errors = field_errors(e)
    page = AuditPage(items=[], total=0, page=paging.page, page_size=paging.page_size)
    if not errors:
        try:
            page = search_entries(db, principal, filters, paging.page, paging.page_size)
        except InvalidInput as e:
            errors = e.errors
    status = 422 if errors else 200
    if errors and wants_json(request):
        return JSONResponse(InvalidInput(errors, "the filters are invalid").to_dict(), status_code=422)
    ctx = {
        "page": page,
        "pages": max(1, math.ceil(page.total / page.page_size)),
        "fv": values,
        "filter_errors": errors,
        "actions": ACTIONS,
    }
    return render(request, "admin/audit.html", ctx, json=page, principal=principal, status_code=status)
