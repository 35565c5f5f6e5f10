"""REST API of cases, seizures and bulk imports (``/api/v1``)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Query, Request, UploadFile
from fastapi.responses import JSONResponse, Response
from sqlalchemy.exc import IntegrityError

from stopnet.core import idempotency
from stopnet.core.pagination import PagingDep
from stopnet.operations.service import get_operation
from stopnet.web.deps import DB, IMPORT, PUBLIC, READ, VALIDATE, WRITE, AppSettings, CurrentPrincipal
from stopnet.web.uploads import read_upload

from . import importer, service
from .dependencies import Filters
from .schemas import (
    CaseCorrection,
    CaseCreate,
    CaseOut,
    CasePage,
    CaseVersionOut,
    ImportResult,
    VersionRef,
)

router = APIRouter(prefix="/api/v1", tags=["reporting"])


@router.get("/operations/{code}/cases", response_model=CasePage, dependencies=[READ])
def list_cases(
    code: str,
    filters: Filters,
    paging: PagingDep,
    db: DB,
    principal: CurrentPrincipal,
    sort: Annotated[
        str | None,
        Query(
            max_length=40,
            description="reference, detected_on, reporting_org, channel, route, pieces, weight "
            "or status; prefix - for descending (default -detected_on).",
        ),
    ] = None,
) -> CasePage:
    op = get_operation(db, principal, code)
    items, total = service.list_cases(db, principal, op, filters, paging.page, paging.page_size, sort)
    page = CasePage(
        items=service.cases_out(db, principal, op, items),
        total=total,
        page=paging.page,
        page_size=paging.page_size,
        pages=max(1, -(-total // paging.page_size)),
        sort=sort or service.DEFAULT_SORT,
    )
    db.commit()  # the audit entries of restricted reads
    return page


@router.post("/operations/{code}/cases", response_model=CaseOut, status_code=201, dependencies=[WRITE])
def create_case(
    code: str,
    body: CaseCreate,
    request: Request,
    db: DB,
    principal: CurrentPrincipal,
    idempotency_key: Annotated[str | None, Header(description="Makes the create safe to retry.")] = None,
) -> JSONResponse:
    """Report a case with its seizures. Send an ``Idempotency-Key`` to make retries safe."""
    path = request.url.path
    body_hash = idempotency.request_hash(body.model_dump(mode="json"))
    key = idempotency.check_key(idempotency_key) if idempotency_key is not None else None
    if key:
        rec = idempotency.find(db, principal, key, "POST", path, body_hash)
        if rec is not None:
            return JSONResponse(rec.response, rec.status_code, headers={"Idempotent-Replayed": "true"})
    op = get_operation(db, principal, code)
    case = service.create_case(db, principal, op, body)
    out = service.to_out(case, principal, op.code, principal.org_code).model_dump(mode="json")
    if key:
        idempotency.store(db, principal, key, "POST", path, body_hash, 201, out)
    try:
        db.commit()
    except IntegrityError:
        db.rollback()
        if key:  # a concurrent retry with the same key won the race: answer as it did
            rec = idempotency.find(db, principal, key, "POST", path, body_hash)
            if rec is not None:
                return JSONResponse(rec.response, rec.status_code, headers={"Idempotent-Replayed": "true"})
        raise
    return JSONResponse(out, status_code=201, headers={"Location": f"/api/v1/cases/{case.id}"})


@router.get("/cases/{case_id}", response_model=CaseOut, dependencies=[READ])
def get_case(case_id: int, db: DB, principal: CurrentPrincipal) -> CaseOut:
    case = service.get_case(db, principal, case_id)
    out = _out(db, principal, case)
    db.commit()  # the audit entry of a restricted read
    return out


@router.get("/cases/{case_id}/history", response_model=list[CaseVersionOut], dependencies=[READ])
def case_history(case_id: int, db: DB, principal: CurrentPrincipal) -> list[CaseVersionOut]:
    history = service.case_history(db, principal, case_id)
    db.commit()  # the audit entry of a restricted read
    return history


@router.post("/cases/{case_id}/corrections", response_model=CaseOut, dependencies=[WRITE])
def correct_case(case_id: int, body: CaseCorrection, db: DB, principal: CurrentPrincipal) -> CaseOut:
    """Correct a case: a new version is written; earlier versions stay in its history."""
    case = service.correct_case(db, principal, case_id, body)
    out = _out(db, principal, case)
    db.commit()
    return out


@router.post("/cases/{case_id}/submit", response_model=CaseOut, dependencies=[WRITE])
def submit_case(case_id: int, body: VersionRef, db: DB, principal: CurrentPrincipal) -> CaseOut:
    case = service.submit_case(db, principal, case_id, body.expected_version)
    out = _out(db, principal, case)
    db.commit()
    return out


@router.post("/cases/{case_id}/validate", response_model=CaseOut, dependencies=[VALIDATE])
def validate_case(case_id: int, body: VersionRef, db: DB, principal: CurrentPrincipal) -> CaseOut:
    case = service.validate_case(db, principal, case_id, body.expected_version)
    out = _out(db, principal, case)
    db.commit()
    return out


def _out(db: DB, principal: CurrentPrincipal, case: service.Case) -> CaseOut:
    from stopnet.db.models import Operation

    op = db.get_one(Operation, case.operation_id)
    return service.cases_out(db, principal, op, [case])[0]


@router.post(
    "/operations/{code}/imports",
    response_model=ImportResult,
    status_code=201,
    responses={200: {"model": ImportResult, "description": "The same file was imported before: nothing new"}},
    dependencies=[IMPORT],
)
async def import_file(code: str, file: UploadFile, request: Request, settings: AppSettings) -> JSONResponse:
    """Bulk import a CSV or XLSX file of seizures (template: ``GET /api/v1/import-template.csv``).

    All or nothing: a file with any bad row imports nothing and lists every error (row, field, why).
    Importing the same file again creates nothing new.
    """
    data = await read_upload(file, settings.max_upload_bytes)
    from starlette.concurrency import run_in_threadpool

    result, status = await run_in_threadpool(_import_sync, request, code, file.filename or "upload", data)
    return JSONResponse(result.model_dump(mode="json"), status_code=status)


def _import_sync(request: Request, code: str, filename: str, data: bytes) -> tuple[ImportResult, int]:
    from stopnet.web.deps import optional_principal, require_principal

    session = request.app.state.sessionmaker()
    try:
        principal = require_principal(optional_principal(request, session))
        op = get_operation(session, principal, code)
        result = importer.import_seizures(session, principal, op, filename, data, request.app.state.settings)
        session.commit()
        return result, (200 if result.already_imported else 201)
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


@router.post(
    "/operations/{code}/imports/annotated",
    dependencies=[IMPORT],
    response_class=Response,
    responses={200: {"content": {"text/csv": {}}, "description": "The file with a problems column"}},
)
async def annotate_file(code: str, file: UploadFile, request: Request, settings: AppSettings) -> Response:
    """Check a file as an import would, writing nothing, and get it back in its own format (CSV or
    XLSX) with a ``problems`` column: every problem of each row in one cell (empty for a good row).
    ``X-Problems`` gives their number."""
    data = await read_upload(file, settings.max_upload_bytes)
    from starlette.concurrency import run_in_threadpool

    return await run_in_threadpool(_annotate_sync, request, code, file.filename or "upload", data)


def _annotate_sync(request: Request, code: str, filename: str, data: bytes) -> Response:
    from stopnet.web.deps import optional_principal, require_principal

    session = request.app.state.sessionmaker()
    try:
        principal = require_principal(optional_principal(request, session))
        op = get_operation(session, principal, code)
        out = importer.annotate(session, principal, op, filename, data, request.app.state.settings)
        return annotated_response(out)
    finally:
        session.rollback()
        session.close()


def annotated_response(out: importer.Annotated) -> Response:
    """The annotated copy as a download."""
    return Response(
        out.content,
        media_type=out.media_type,
        headers={
            "Content-Disposition": f'attachment; filename="{out.filename.replace(chr(34), "")}"',
            "X-Problems": str(out.problems),
        },
    )


@router.get(
    "/import-template.csv",
    tags=["reporting"],
    response_class=Response,
    responses={200: {"content": {"text/csv": {}}, "description": "The template, a CSV file"}},
    dependencies=[PUBLIC],
)
def import_template() -> Response:
    """The CSV column template of bulk imports (header and one example row)."""
    return Response(
        importer.template_csv(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="stopnet-seizures-template.csv"'},
    )
