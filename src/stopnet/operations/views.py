"""HTML pages of operations: the home page (the operations one takes part in) and an operation's page;
each has a JSON twin (``?format=json``)."""

from __future__ import annotations

from collections.abc import Sequence

from fastapi import APIRouter, Request
from fastapi.responses import Response

from stopnet.access import policy
from stopnet.core.errors import FieldError
from stopnet.db.models import Operation
from stopnet.reference import get_reference
from stopnet.web.deps import DB, READ, CurrentPrincipal
from stopnet.web.pages import render

from . import service

router = APIRouter(include_in_schema=False)


@router.get("/", dependencies=[READ])
def home(request: Request, db: DB, principal: CurrentPrincipal) -> Response:
    ops = [service.to_out(db, op) for op in service.list_operations(db, principal)]
    return render(request, "home.html", {"operations": ops}, json=ops, principal=principal)


@router.get("/operations/{code}", dependencies=[READ])
def operation_home(code: str, request: Request, db: DB, principal: CurrentPrincipal) -> Response:
    return operation_page(request, db, principal, service.get_operation(db, principal, code))


def operation_page(
    request: Request,
    db: DB,
    principal: CurrentPrincipal,
    op: Operation,
    typed: dict[str, str] | None = None,
    errors: Sequence[FieldError] = (),
    *,
    status_code: int = 200,
) -> Response:
    """The operation's page; with ``errors``, the daily report's form as typed and why it was refused."""
    detail = service.to_detail(db, op)
    errs: dict[str, list[str]] = {}
    for e in errors:
        errs.setdefault(e.field, []).append(e.message)
    ctx = {
        "op": detail,
        "can_report": policy.may_report(principal),
        "ref": get_reference(),
        "typed": typed or {},
        "errs": errs,
    }
    return render(request, "operation.html", ctx, json=detail, principal=principal, status_code=status_code)
