"""HTML pages of reporting; each has a JSON twin (``?format=json``)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Request, UploadFile
from fastapi.responses import JSONResponse, RedirectResponse, Response
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool

from stopnet.access import policy
from stopnet.core.errors import Conflict, FieldError, InvalidInput
from stopnet.core.pagination import PagingDep
from stopnet.core.validation import field_errors
from stopnet.db.models import Operation, Role
from stopnet.operations import service as operations
from stopnet.reference import get_reference
from stopnet.sharing import service as sharing_service
from stopnet.web.deps import DB, READ, SESSION_ONLY, AppSettings, CurrentPrincipal
from stopnet.web.pages import render, require_csrf, wants_json
from stopnet.web.uploads import read_upload

from . import importer, service
from .api import annotated_response
from .forms import (
    MAX_LINES,
    SEIZURE_FORM_FIELDS,
    case_to_form,
    errors_by_field,
    field_anchor,
    field_label,
    form_field,
    form_label,
    form_to_payload,
)
from .schemas import FILTER_HINTS, CaseCorrection, CaseFilters, CaseOut, CasePage

router = APIRouter(include_in_schema=False)


# The API's limits on its filter parameters (reporting.dependencies.case_filters), kept by the page too.
_FILTER_MAX = {
    "reporting_org": 32,
    "country": 600,
    "region": 100,
    "commodity_code": 1000,
    "commodity_group": 40,
    "channel": 200,
    "origin": 600,
    "destination": 600,
    "q": 100,
}


@dataclass(frozen=True)
class PageFilters:
    """The filters of the case list page, as typed (``values``) and as understood (``filters``)."""

    filters: CaseFilters
    values: dict[str, str]
    errors: list[FieldError]


def page_filters(request: Request) -> PageFilters:
    """The filter form sends every field, blank ones too: a blank field means "any" (not an error)."""
    values = {}
    for name in CaseFilters.model_fields:
        raw = request.query_params.get(name)
        if raw is not None and raw.strip():
            values[name] = raw.strip()
    errors = [
        FieldError(k, f"{FILTER_HINTS[k].label}: {len(values[k])} characters; at most {n}", value=values[k])
        for k, n in _FILTER_MAX.items()
        if len(values.get(k, "")) > n
    ]
    too_long = {e.field for e in errors}
    try:
        filters = CaseFilters.model_validate({k: v for k, v in values.items() if k not in too_long})
    except ValidationError as e:
        errors += field_errors(e, FILTER_HINTS)
    if errors:
        return PageFilters(CaseFilters(), values, errors)
    return PageFilters(filters, values, [])


PAGE_SIZES = (20, 50, 100, 200)


@router.get("/operations/{code}/cases", dependencies=[READ])
def cases_page(
    code: str,
    request: Request,
    pf: Annotated[PageFilters, Depends(page_filters)],
    paging: PagingDep,
    db: DB,
    principal: CurrentPrincipal,
) -> Response:
    op = operations.get_operation(db, principal, code)
    ctx = {"op": op, "fv": pf.values, "ref": get_reference(), "can_report": _can_report(principal)}
    if pf.errors:
        bad = InvalidInput(pf.errors, "the filters are invalid")
        if wants_json(request):
            return JSONResponse(bad.to_dict(), status_code=422)
        empty = CasePage(items=[], total=0, page=1, page_size=paging.page_size)
        ctx.update(page=empty, pages=1, filter_errors=pf.errors)
        return render(request, "cases.html", ctx, principal=principal, status_code=422)
    sort = request.query_params.get("sort") or service.DEFAULT_SORT
    try:
        sort_key, descending = service.parse_sort(sort)
    except InvalidInput as bad:
        if wants_json(request):
            return JSONResponse(bad.to_dict(), status_code=422)
        empty = CasePage(items=[], total=0, page=1, page_size=paging.page_size)
        ctx.update(page=empty, pages=1, filter_errors=bad.errors, sort_keys=service.SORT_KEYS)
        return render(request, "cases.html", ctx, principal=principal, status_code=422)
    cursor = sharing_service.feed_cursor(db)  # before the list: the live feed replays what follows
    items, total = service.list_cases(db, principal, op, pf.filters, paging.page, paging.page_size, sort)
    page = CasePage(
        items=service.cases_out(db, principal, op, items),
        total=total,
        page=paging.page,
        page_size=paging.page_size,
        pages=max(1, -(-total // paging.page_size)),
        sort=sort,
    )
    db.commit()  # the audit entries of restricted reads
    pages = max(1, -(-total // paging.page_size))
    ctx.update(
        page=page,
        pages=pages,
        filter_errors=[],
        filtered=bool(pf.values),
        feed_cursor=cursor,
        sort_key=sort_key,
        descending=descending,
        page_sizes=PAGE_SIZES,
    )
    return render(request, "cases.html", ctx, json=page, principal=principal)


def _can_report(principal: CurrentPrincipal) -> bool:
    return policy.may_report(principal)


def _form_context(
    op: Operation, form: dict[str, str], errors: Sequence[FieldError], *, add_line: bool = False
) -> dict[str, Any]:
    """What the case form needs: the values typed, the errors by field and how many seizure lines."""
    typed = [
        k for k in SEIZURE_FORM_FIELDS if k not in ("infringement_type", "nature")
    ]  # selects: always set
    filled = [i for i in range(MAX_LINES) if any(form.get(f"s-{i}-{k}", "").strip() for k in typed)]
    try:
        shown = int(form.get("lines") or 0)
    except ValueError:
        shown = 0
    n = max(shown + (1 if add_line else 0), (max(filled) + 2) if filled else 1)
    n = max(1, min(n, MAX_LINES))
    return {
        "op": op,
        "form": form,
        "errors": [
            {
                "field": e.field,
                "label": field_label(e.field),
                "anchor": field_anchor(e.field),
                "message": e.message,
            }
            for e in errors
        ],
        "errs": errors_by_field(errors),
        "lines": range(n),
        "focus_line": n - 1 if add_line else None,
        "max_lines": MAX_LINES,
        "ref": get_reference(),
    }


def _form_page(
    request: Request,
    principal: CurrentPrincipal,
    op: Operation,
    form: dict[str, str],
    errors: Sequence[FieldError],
    *,
    case: CaseOut | None = None,
    add_line: bool = False,
    status_code: int = 200,
) -> Response:
    ctx = _form_context(op, form, errors, add_line=add_line)
    ctx.update(mode="correct" if case is not None else "new", case=case)
    return render(request, "case_form.html", ctx, principal=principal, status_code=status_code)


@router.get("/operations/{code}/cases/new", dependencies=[SESSION_ONLY])
def new_case_page(
    code: str, request: Request, db: DB, principal: CurrentPrincipal, lines: int = 3
) -> Response:
    op = operations.get_operation(db, principal, code)
    policy.require_reporter(db, principal, op.id)
    form = {
        "visibility": op.default_visibility.value,
        "detected_on": "",
        "lines": str(max(1, min(lines, MAX_LINES))),
    }
    return _form_page(request, principal, op, form, [])


@router.post("/operations/{code}/cases/new", dependencies=[SESSION_ONLY])
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
        policy.require_reporter(session, principal, op.id)  # as the form's page: no form for others
        if form.get("action") == "add_line":
            return _form_page(request, principal, op, form, [], add_line=True)
        payload = form_to_payload(form)
        payload["submit"] = form.get("action") != "draft"
        try:
            body = service.check_new_case(session, principal, op, payload, name=form_field, label=form_label)
            case = service.create_case(session, principal, op, body)
        except InvalidInput as e:
            return _form_page(request, principal, op, form, e.errors, status_code=422)
        except Conflict as e:  # the reference is taken: say so next to it, keep what was typed
            session.rollback()
            message = f"{field_label('reference')}: {e.message}"
            errors = [FieldError("reference", message, value=form.get("reference"), code="reference_taken")]
            return _form_page(request, principal, op, form, errors, status_code=409)
        session.commit()
        return RedirectResponse(f"/cases/{case.id}", status_code=303)
    finally:
        session.close()


@router.get("/cases/{case_id}", dependencies=[READ])
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


@router.get("/cases/{case_id}/correct", dependencies=[SESSION_ONLY])
def correct_page(case_id: int, request: Request, db: DB, principal: CurrentPrincipal) -> Response:
    case = service.get_case(db, principal, case_id)
    op = db.get_one(Operation, case.operation_id)
    out = service.cases_out(db, principal, op, [case])[0]
    db.commit()  # the audit entry of a restricted read
    if wants_json(request):
        return render(request, "case_form.html", {}, json=out, principal=principal)
    policy.require_own_case(principal, case)
    form = case_to_form(out)
    form["lines"] = str(len(out.seizures) + 1)
    return _form_page(request, principal, op, form, [], case=out)


@router.post("/cases/{case_id}/correct", dependencies=[SESSION_ONLY])
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
        policy.require_own_case(principal, case)  # as the correction page: no form for others
        if form.get("action") == "add_line":
            return _form_page(request, principal, op, form, [], case=out, add_line=True)
        payload = form_to_payload(form)
        payload.pop("reference", None)
        payload["reason"] = form.get("reason", "")
        payload["expected_version"] = form.get("expected_version", "0")
        try:
            body = service.check_case_input(op, CaseCorrection, payload, name=form_field, label=form_label)
            service.correct_case(session, principal, case_id, body)
        except InvalidInput as e:
            session.rollback()
            return _form_page(request, principal, op, form, e.errors, case=out, status_code=422)
        session.commit()
        return RedirectResponse(f"/cases/{case_id}", status_code=303)
    finally:
        session.close()


@router.post("/cases/{case_id}/{action}", dependencies=[SESSION_ONLY])
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


@router.get("/operations/{code}/import", dependencies=[SESSION_ONLY])
def import_page(code: str, request: Request, db: DB, principal: CurrentPrincipal) -> Response:
    op = operations.get_operation(db, principal, code)
    policy.require_reporter(db, principal, op.id)
    return render(
        request,
        "import.html",
        {"op": op, "result": None, "errors": [], "columns": importer.COLUMNS},
        principal=principal,
    )


async def _form_file(request: Request, file: UploadFile, max_bytes: int) -> bytes:
    """The uploaded file of a page's form, after its CSRF token is checked."""
    form = await request.form()
    require_csrf(request, str(form.get("csrf_token", "")))
    return await read_upload(file, max_bytes)


@router.post("/operations/{code}/import", dependencies=[SESSION_ONLY])
async def import_upload(
    code: str, request: Request, file: UploadFile, settings: AppSettings, principal: CurrentPrincipal
) -> Response:
    try:
        data = await _form_file(request, file, settings.max_upload_bytes)
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


@router.post("/operations/{code}/import/annotated", dependencies=[SESSION_ONLY])
async def import_annotated(
    code: str, request: Request, file: UploadFile, settings: AppSettings, principal: CurrentPrincipal
) -> Response:
    """Check the file only, and download it with a problem column (nothing is imported)."""
    try:
        data = await _form_file(request, file, settings.max_upload_bytes)
    except InvalidInput as e:
        return await run_in_threadpool(_import_page_error, request, code, principal, e)
    return await run_in_threadpool(_annotate_sync, request, code, file.filename or "upload", data, principal)


def _annotate_sync(
    request: Request, code: str, filename: str, data: bytes, principal: CurrentPrincipal
) -> Response:
    session = request.app.state.sessionmaker()
    try:
        op = operations.get_operation(session, principal, code)
        try:
            out = importer.annotate(session, principal, op, filename, data, request.app.state.settings)
        except InvalidInput as e:
            session.rollback()
            return _import_page_error(request, code, principal, e)
        session.rollback()
        return annotated_response(out)
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
            ctx: dict[str, Any] = {
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
