"""Report pages: ``/operations/{code}/reports/daily`` and ``/final`` (HTML, ``?format=json`` twin, and a
``.pdf`` download rendered by WeasyPrint from the same template)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from markupsafe import Markup

from stopnet.core.errors import FieldError, InvalidInput
from stopnet.operations import service as operations
from stopnet.operations.views import operation_page
from stopnet.web.deps import DB, READ, CurrentPrincipal
from stopnet.web.pages import render, wants_json
from stopnet.web.templating import templates

from . import charts, pdf, service
from .schemas import DailyReport, FinalReport

router = APIRouter(include_in_schema=False)


# ---------------------------------------------------------------------------------------------- formatting


def report_tonnes(value: float | None) -> str:
    """68.0 -> "68"; 27.35 -> "27.4"; 0.25 -> "0.25" (as the published key-figures pages write them)."""
    if value is None:
        return "–"
    text = f"{value:,.1f}" if value >= 10 else f"{value:,.3f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def report_value(value: float | None, unit: str) -> str:
    if value is None:
        return "–"
    if unit == "share":
        return f"{value * 100:.0f}%"
    if unit == "tonnes":
        return report_tonnes(value)
    return f"{int(value):,}"


def report_change(value: float | None, unit: str) -> str:
    if value is None:
        return "–"
    if unit == "share":
        return f"{value:+.1f} pp"
    if unit == "tonnes":
        return (
            ("+" if value > 0 else "") + report_tonnes(value) if value >= 0 else "−" + report_tonnes(-value)
        )
    return f"{int(value):+,}"


templates.env.filters["report_tonnes"] = report_tonnes
templates.env.filters["report_value"] = report_value
templates.env.filters["report_change"] = report_change


def _category_bars(rows: Any) -> list[charts.Bar]:
    from stopnet.reference import get_reference

    ref = get_reference()
    return [
        charts.Bar(r.label, r.seizures, ref.commodities[r.code].group if r.code in ref.commodities else "")
        for r in rows
    ]


def daily_charts(r: DailyReport) -> dict[str, Markup]:
    return {
        "new_categories": charts.bar_chart(
            _category_bars(r.new_categories), title=f"Seizures by category on {r.day}"
        ),
        "running_categories": charts.bar_chart(
            _category_bars(r.running_categories), title="Seizures by category to date"
        ),
        "progression": charts.progression_chart(r.progression, title="Seizures per day and cumulative"),
    }


def final_charts(r: FinalReport) -> dict[str, Markup]:
    return {
        "categories": charts.bar_chart(_category_bars(r.top_categories), title="Top commodity categories"),
        "regions": charts.bar_chart(
            [charts.Bar(x.label, x.seizures) for x in r.regions.rows], title="Seizures by WCO region"
        ),
        "progression": charts.progression_chart(r.progression, title="Seizures per day and cumulative"),
    }


def daily_html(r: DailyReport, *, for_pdf: bool = True, extra: dict[str, Any] | None = None) -> str:
    """The daily report as a whole HTML document (the PDF's source)."""
    ctx = {"r": r, "pdf": for_pdf, "charts": daily_charts(r), "links": {}, **(extra or {})}
    return templates.env.get_template("reports/daily.html").render(ctx)


def final_html(r: FinalReport, *, for_pdf: bool = True, extra: dict[str, Any] | None = None) -> str:
    ctx = {
        "r": r,
        "pdf": for_pdf,
        "charts": final_charts(r),
        "links": {},
        "compare_choices": [],
        **(extra or {}),
    }
    return templates.env.get_template("reports/final.html").render(ctx)


def daily_pdf(r: DailyReport) -> bytes:
    return pdf.html_to_pdf(daily_html(r))


def final_pdf(r: FinalReport) -> bytes:
    return pdf.html_to_pdf(final_html(r))


def pdf_response(body: bytes, name: str) -> Response:
    return Response(
        body,
        media_type="application/pdf",
        headers={"Content-Disposition": f'attachment; filename="{name}"', "Cache-Control": "no-store"},
    )


def daily_filename(r: DailyReport) -> str:
    return f"stopnet-{r.operation.lower()}-daily-{r.day.isoformat()}.pdf"


def final_filename(r: FinalReport) -> str:
    return f"stopnet-{r.operation.lower()}-final.pdf"


# ---------------------------------------------------------------------------------------------- pages

CompareParam = Annotated[
    str | None, Query(max_length=32, description="Operation to compare with; 'none' for no comparison.")
]


DateParam = Annotated[dt.date | None, Query(alias="date", description="The day (YYYY-MM-DD).")]
DayText = Annotated[str | None, Query(alias="date", max_length=40, description="The day (YYYY-MM-DD).")]


def _report_day(op: Any, typed: str | None) -> dt.date | None:
    """The day a person typed in the daily report's form (None: not given, the default day); raises
    :class:`InvalidInput` naming the field when it is blank, not a date or outside the operation."""
    if typed is None:
        return None
    span = f"a day from {op.starts_on.isoformat()} to {op.ends_on.isoformat()}"
    text = typed.strip()
    if not text:
        message = f"Report date: required; choose {span}"
        raise InvalidInput([FieldError("date", message, value=typed, code="required")], "no report date")
    try:
        day = dt.date.fromisoformat(text)
    except ValueError:
        message = f"Report date: {text!r} is not a date; write YYYY-MM-DD, {span}"
        raise InvalidInput(
            [FieldError("date", message, value=typed, code="not_a_date")], "invalid date"
        ) from None
    if not op.starts_on <= day <= op.ends_on:
        message = f"Report date: {day.isoformat()} is outside the operation; choose {span}"
        raise InvalidInput(
            [FieldError("date", message, value=typed, code="outside_operation")], "invalid date"
        )
    return day


@router.get("/operations/{code}/reports/daily", dependencies=[READ])
def daily_page(
    code: str, request: Request, db: DB, principal: CurrentPrincipal, typed: DayText = None
) -> Response:
    op = operations.get_operation(db, principal, code)
    try:
        day = _report_day(op, typed)
    except InvalidInput as e:
        if wants_json(request):
            raise
        # back to the form it came from (the operation page), the date as typed and why
        return operation_page(request, db, principal, op, {"date": typed or ""}, e.errors, status_code=422)
    r = service.daily_report(db, principal, op, day)
    base = f"/operations/{op.code}/reports/daily"
    one = dt.timedelta(days=1)
    links = {
        "pdf": f"{base}.pdf?{urlencode({'date': r.day.isoformat()})}",
        "json": f"{base}?{urlencode({'date': r.day.isoformat(), 'format': 'json'})}",
        "previous": f"{base}?date={(r.day - one).isoformat()}" if r.day > op.starts_on else "",
        "next": f"{base}?date={(r.day + one).isoformat()}" if r.day < op.ends_on else "",
    }
    return render(
        request,
        "reports/daily.html",
        {"r": r, "pdf": False, "charts": daily_charts(r), "links": links},
        json=r,
        principal=principal,
    )


@router.get("/operations/{code}/reports/daily.pdf", dependencies=[READ])
def daily_pdf_download(code: str, db: DB, principal: CurrentPrincipal, typed: DayText = None) -> Response:
    op = operations.get_operation(db, principal, code)
    r = service.daily_report(db, principal, op, _report_day(op, typed))
    return pdf_response(daily_pdf(r), daily_filename(r))


@router.get("/operations/{code}/reports/final", dependencies=[READ])
def final_page(
    code: str, request: Request, db: DB, principal: CurrentPrincipal, compare: CompareParam = None
) -> Response:
    op = operations.get_operation(db, principal, code)
    errors: list[FieldError] = []
    try:
        r = service.final_report(db, principal, op, compare)
    except InvalidInput as e:
        if wants_json(request):
            raise
        # the report without a comparison, the form showing what was asked and why it cannot be
        errors = e.errors
        r = service.final_report(db, principal, op, "none")
    query = {"compare": compare} if compare else {}
    links = {
        "pdf": f"/operations/{op.code}/reports/final.pdf" + (f"?{urlencode(query)}" if query else ""),
        "json": f"/operations/{op.code}/reports/final?{urlencode({**query, 'format': 'json'})}",
    }
    choices = [o for o in operations.list_operations(db, principal) if o.id != op.id]
    return render(
        request,
        "reports/final.html",
        {
            "r": r,
            "pdf": False,
            "charts": final_charts(r),
            "links": links,
            "compare_choices": choices,
            "errors": errors,
            "typed": {"compare": compare or ""},
        },
        json=r,
        principal=principal,
        status_code=422 if errors else 200,
    )


@router.get("/operations/{code}/reports/final.pdf", dependencies=[READ])
def final_pdf_download(
    code: str, db: DB, principal: CurrentPrincipal, compare: CompareParam = None
) -> Response:
    op = operations.get_operation(db, principal, code)
    r = service.final_report(db, principal, op, compare)
    return pdf_response(final_pdf(r), final_filename(r))
