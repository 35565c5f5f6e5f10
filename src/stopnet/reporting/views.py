"""HTML pages of reporting; each has a JSON twin (``?format=json``)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request, UploadFile
from fastapi.responses import RedirectResponse, Response
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool

from stopnet.core.errors import InvalidInput
from stopnet.core.pagination import PagingDep
from stopnet.db.models import Operation, Role
from stopnet.operations import service as operations
from stopnet.reference import get_reference
from stopnet.web.deps import DB, AppSettings, CurrentPrincipal
from stopnet.web.pages import render, require_csrf
from stopnet.web.uploads import read_upload

from . import importer, service
from .api import Filters
from .forms import SEIZURE_FORM_FIELDS, case_to_form, form_to_payload, validation_errors
from .schemas import CaseCorrection, CaseCreate, CasePage

router = APIRouter(include_in_schema=False)


@router.get("/")
def home(request: Request, db: DB, principal: CurrentPrincipal) -> Response:
    ops = [operations.to_out(db, op) for op in operations.list_operations(db, principal)]
    return render(request, "home.html", {"operations": ops}, json=ops, principal=principal)


@router.get("/operations/{code}")
def operation_page(code: str, request: Request, db: DB, principal: CurrentPrincipal) -> Response:
    detail = operations.to_detail(db, operations.get_operation(db, principal, code))
    return render(request, "operation.html", {"op": detail}, json=detail, principal=principal)


@router.get("/operations/{code}/cases")
def cases_page(
    code: str, request: Request, filters: Filters, paging: PagingDep, db: DB, principal: CurrentPrincipal
) -> Response:
    op = operations.get_operation(db, principal, code)
    items, total = service.list_cases(db, principal, op, filters, paging.page, paging.page_size)
    page = CasePage(
        items=service.cases_out(db, principal, op, items),
        total=total,
        page=paging.page,
        page_size=paging.page_size,
    )
    pages = max(1, -(-total // paging.page_size))
    return render(
        request,
        "cases.html",
        {
            "op": op,
            "page": page,
            "pages": pages,
            "filters": filters,
            "ref": get_reference(),
            "can_report": _can_report(principal),
        },
        json=page,
        principal=principal,
    )


def _can_report(principal: CurrentPrincipal) -> bool:
    return principal.role in (Role.OFFICER, Role.CONTACT_POINT)


def _form_context(op: Operation, form: dict[str, str], errors: list[object], lines: int) -> dict[str, object]:
    filled = [i for i in range(50) if any(form.get(f"s-{i}-{k}") for k in SEIZURE_FORM_FIELDS)]
    n = max(lines, (max(filled) + 2) if filled else 1)
    return {"op": op, "form": form, "errors": errors, "lines": range(min(n, 50)), "ref": get_reference()}


@router.get("/operations/{code}/cases/new")
def new_case_page(
    code: str, request: Request, db: DB, principal: CurrentPrincipal, lines: int = 3
) -> Response:
    op = operations.get_operation(db, principal, code)
    form = {"visibility": op.default_visibility.value, "detected_on": ""}
    ctx = _form_context(op, form, [], max(1, min(lines, 50)))
    return render(request, "case_form.html", {**ctx, "mode": "new"}, principal=principal)


@router.post("/operations/{code}/cases/new")
async def create_case_form(code: str, request: Request, principal: CurrentPrincipal) -> Response:
    form = {k: str(v) for k, v in (await request.form()).items()}
    require_csrf(request, form.get("csrf_token"))
    return await run_in_threadpool(_create_case_sync, request, code, form, principal)


def _create_case_sync(
    request: Request, code: str, form: dict[str, str], principal: CurrentPrincipal
) -> Response:
    session = request.app.state.sessionmaker()
    try:
        op = operations.get_operation(session, principal, code)
        payload = form_to_payload(form)
        payload["submit"] = form.get("action") != "draft"
        try:
            body = CaseCreate.model_validate(payload)
            case = service.create_case(session, principal, op, body)
        except ValidationError as e:
            ctx = _form_context(op, form, validation_errors(e), 1)
            return render(
                request, "case_form.html", {**ctx, "mode": "new"}, principal=principal, status_code=422
            )
        except InvalidInput as e:
            ctx = _form_context(op, form, e.errors, 1)
            return render(
                request, "case_form.html", {**ctx, "mode": "new"}, principal=principal, status_code=422
            )
        session.commit()
        return RedirectResponse(f"/cases/{case.id}", status_code=303)
    finally:
        session.close()


@router.get("/cases/{case_id}")
def case_page(case_id: int, request: Request, db: DB, principal: CurrentPrincipal) -> Response:
    case = service.get_case(db, principal, case_id)
    op = db.get_one(Operation, case.operation_id)
    out = service.cases_out(db, principal, op, [case])[0]
    history = service.case_history(db, principal, case_id)
    db.commit()
    own = case.reporting_org_id == principal.org_id and _can_report(principal)
    can_validate = out.status.value == "submitted" and (
        (principal.role is Role.CONTACT_POINT and case.reporting_org_id == principal.org_id)
        or principal.role is Role.COORDINATOR
    )
    return render(
        request,
        "case.html",
        {
            "case": out,
            "op": op,
            "history": history,
            "own": own,
            "can_validate": can_validate,
            "ref": get_reference(),
        },
        json=out,
        principal=principal,
    )


@router.get("/cases/{case_id}/correct")
def correct_page(case_id: int, request: Request, db: DB, principal: CurrentPrincipal) -> Response:
    case = service.get_case(db, principal, case_id)
    op = db.get_one(Operation, case.operation_id)
    out = service.cases_out(db, principal, op, [case])[0]
    form = case_to_form(out)
    ctx = _form_context(op, form, [], len(out.seizures) + 1)
    return render(request, "case_form.html", {**ctx, "mode": "correct", "case": out}, principal=principal)


@router.post("/cases/{case_id}/correct")
async def correct_case_form(case_id: int, request: Request, principal: CurrentPrincipal) -> Response:
    form = {k: str(v) for k, v in (await request.form()).items()}
    require_csrf(request, form.get("csrf_token"))
    return await run_in_threadpool(_correct_sync, request, case_id, form, principal)


def _correct_sync(
    request: Request, case_id: int, form: dict[str, str], principal: CurrentPrincipal
) -> Response:
    session = request.app.state.sessionmaker()
    try:
        case = service.get_case(session, principal, case_id)
        op = session.get_one(Operation, case.operation_id)
        out = service.cases_out(session, principal, op, [case])[0]
        payload = form_to_payload(form)
        payload.pop("reference", None)
        payload["reason"] = form.get("reason", "")
        payload["expected_version"] = form.get("expected_version", "0")
        try:
            service.correct_case(session, principal, case_id, CaseCorrection.model_validate(payload))
        except (ValidationError, InvalidInput) as e:
            errors = validation_errors(e) if isinstance(e, ValidationError) else e.errors
            session.rollback()
            ctx = _form_context(op, form, errors, 1)
            return render(
                request,
                "case_form.html",
                {**ctx, "mode": "correct", "case": out},
                principal=principal,
                status_code=422,
            )
        session.commit()
        return RedirectResponse(f"/cases/{case_id}", status_code=303)
    finally:
        session.close()


@router.post("/cases/{case_id}/{action}")
def case_action(
    case_id: int,
    action: str,
    request: Request,
    db: DB,
    principal: CurrentPrincipal,
    expected_version: Annotated[int, Form()],
    csrf_token: Annotated[str, Form(max_length=100)] = "",
) -> Response:
    require_csrf(request, csrf_token)
    if action == "submit":
        service.submit_case(db, principal, case_id, expected_version)
    elif action == "validate":
        service.validate_case(db, principal, case_id, expected_version)
    else:
        return Response(status_code=404)
    db.commit()
    return RedirectResponse(f"/cases/{case_id}", status_code=303)


@router.get("/operations/{code}/import")
def import_page(code: str, request: Request, db: DB, principal: CurrentPrincipal) -> Response:
    op = operations.get_operation(db, principal, code)
    return render(
        request,
        "import.html",
        {"op": op, "result": None, "errors": [], "columns": importer.COLUMNS},
        principal=principal,
    )


@router.post("/operations/{code}/import")
async def import_upload(
    code: str, request: Request, file: UploadFile, settings: AppSettings, principal: CurrentPrincipal
) -> Response:
    form = await request.form()
    require_csrf(request, str(form.get("csrf_token", "")))
    try:
        data = await read_upload(file, settings.max_upload_bytes)
    except InvalidInput as e:
        return await run_in_threadpool(_import_page_error, request, code, principal, e)
    return await run_in_threadpool(_import_sync, request, code, file.filename or "upload", data, principal)


def _import_page_error(request: Request, code: str, principal: CurrentPrincipal, e: InvalidInput) -> Response:
    session = request.app.state.sessionmaker()
    try:
        op = operations.get_operation(session, principal, code)
        ctx = {
            "op": op,
            "result": None,
            "errors": e.errors,
            "summary": e.summary,
            "columns": importer.COLUMNS,
        }
        return render(request, "import.html", ctx, principal=principal, status_code=422)
    finally:
        session.close()


def _import_sync(
    request: Request, code: str, filename: str, data: bytes, principal: CurrentPrincipal
) -> Response:
    session = request.app.state.sessionmaker()
    try:
        op = operations.get_operation(session, principal, code)
        try:
            result = importer.import_seizures(
                session, principal, op, filename, data, request.app.state.settings
            )
        except InvalidInput as e:
            session.rollback()
            ctx = {
                "op": op,
                "result": None,
                "errors": e.errors,
                "summary": e.summary,
                "columns": importer.COLUMNS,
            }
            return render(request, "import.html", ctx, principal=principal, status_code=422)
        session.commit()
        ctx = {"op": op, "result": result, "errors": [], "columns": importer.COLUMNS}
        return render(request, "import.html", ctx, json=result, principal=principal)
    finally:
        session.close()
