"""REST API of reports and exports (``/api/v1``).

* ``GET /api/v1/operations/{code}/reports/daily?date=YYYY-MM-DD`` and ``/reports/final?compare=CODE``:
  the report as JSON, or as a PDF with ``?format=pdf``.
* ``GET /api/v1/operations/{code}/exports/cases.{csv,xlsx,json}`` and ``/exports/seizures.{...}``: the
  cases or seizures the caller may read, with the case list's filters; streamed; audit-logged.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response, StreamingResponse

from stopnet.db.models import Operation
from stopnet.operations.service import get_operation
from stopnet.reporting.dependencies import Filters
from stopnet.web.deps import DB, EXPORT, READ, CurrentPrincipal

from . import exports, service, views
from .schemas import DailyReport, ExportFormat, FinalReport

router = APIRouter(prefix="/api/v1", tags=["reports"])

ReportFormat = Annotated[Literal["json", "pdf"], Query(alias="format", description="json (default) or pdf")]
_PDF: dict[int | str, dict[str, Any]] = {200: {"content": {"application/pdf": {}}}}


def _json(model: DailyReport | FinalReport) -> Response:
    return Response(model.model_dump_json(), media_type="application/json")


@router.get(
    "/operations/{code}/reports/daily",
    response_model=DailyReport,
    summary="Daily situation report",
    responses=_PDF,
    dependencies=[READ],
)
def daily_report(
    code: str, db: DB, principal: CurrentPrincipal, day: views.DateParam = None, fmt: ReportFormat = "json"
) -> Response:
    """New cases and seizures of the day, running totals, progression, top goods and regions, and emerging
    trends, over the submitted and validated cases the caller may read (the dashboard's figures)."""
    op = get_operation(db, principal, code)
    r = service.daily_report(db, principal, op, day)
    if fmt == "pdf":
        return views.pdf_response(views.daily_pdf(r), views.daily_filename(r))
    return _json(r)


@router.get(
    "/operations/{code}/reports/final",
    response_model=FinalReport,
    summary="End-of-operation report",
    responses=_PDF,
    dependencies=[READ],
)
def final_report(
    code: str,
    db: DB,
    principal: CurrentPrincipal,
    compare: views.CompareParam = None,
    fmt: ReportFormat = "json",
) -> Response:
    """Key figures (as the WCO's published key-figures pages), breakdowns, findings, and a comparison with
    an earlier operation (``compare``; default the latest earlier operation the caller takes part in)."""
    op = get_operation(db, principal, code)
    r = service.final_report(db, principal, op, compare)
    if fmt == "pdf":
        return views.pdf_response(views.final_pdf(r), views.final_filename(r))
    return _json(r)


def _export(
    kind: Literal["cases", "seizures"],
    code: str,
    fmt: ExportFormat,
    filters: Filters,
    request: Request,
    db: DB,
    principal: CurrentPrincipal,
) -> StreamingResponse:
    op = get_operation(db, principal, code)
    info = exports.start_export(db, principal, op, kind, fmt, filters)
    db.commit()  # the audit entry is kept even if the download is interrupted
    factory = request.app.state.sessionmaker
    op_id = op.id

    def body() -> Iterator[bytes]:
        with factory() as session:
            yield from exports.render(session, principal, session.get_one(Operation, op_id), info, filters)

    return StreamingResponse(
        body(),
        media_type=exports.MEDIA_TYPES[fmt],
        headers={
            "Content-Disposition": f'attachment; filename="{exports.filename(info)}"',
            "X-Export-Rows": str(info.rows),
            "Cache-Control": "no-store",
        },
    )


_EXPORT_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"content": {"text/csv": {}, exports.MEDIA_TYPES["xlsx"]: {}, "application/json": {}}}
}


@router.get(
    "/operations/{code}/exports/cases.{fmt}",
    summary="Export cases (CSV, XLSX, JSON)",
    response_class=StreamingResponse,
    responses=_EXPORT_RESPONSES,
    dependencies=[EXPORT],
)
def export_cases(
    code: str, fmt: ExportFormat, filters: Filters, request: Request, db: DB, principal: CurrentPrincipal
) -> StreamingResponse:
    """One row per case the caller may read, with the case list's filters. Needs the scope ``export``.
    Text cells a spreadsheet would run as a formula get a leading ``'`` (CSV, XLSX)."""
    return _export("cases", code, fmt, filters, request, db, principal)


@router.get(
    "/operations/{code}/exports/seizures.{fmt}",
    summary="Export seizures (CSV, XLSX, JSON)",
    response_class=StreamingResponse,
    responses=_EXPORT_RESPONSES,
    dependencies=[EXPORT],
)
def export_seizures(
    code: str, fmt: ExportFormat, filters: Filters, request: Request, db: DB, principal: CurrentPrincipal
) -> StreamingResponse:
    """One row per seizure of the cases the caller may read (a goods filter keeps those goods only).
    Rights holders get the seizures of their own approved brands, without case data."""
    return _export("seizures", code, fmt, filters, request, db, principal)
