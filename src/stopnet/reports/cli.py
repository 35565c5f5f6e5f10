"""``stopnet report daily|final`` and ``stopnet export cases|seizures``: the reports and exports of the
web application, from the command line, acting as a user (``--as EMAIL``) so that visibility applies."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

report_app = typer.Typer(help="Situation reports (HTML and PDF).", no_args_is_help=True)
export_app = typer.Typer(help="Exports of cases and seizures (CSV, XLSX, JSON).", no_args_is_help=True)

err = Console(stderr=True)
console = Console()

Operation = Annotated[str, typer.Option("--operation", help="Operation code, e.g. STOP-IV.")]
AsUser = Annotated[str, typer.Option("--as", help="E-mail of the user the command acts as.")]
Out = Annotated[
    Path | None,
    typer.Option("--out", help="Output file (default: a name in the current directory).", dir_okay=False),
]


def _session_factory() -> Any:
    from stopnet.config import get_settings
    from stopnet.db.engine import sessions_for

    return sessions_for(get_settings())


def _principal(session: Any, email: str) -> Any:
    from sqlalchemy import func, select

    from stopnet.access.service import principal_for
    from stopnet.db.models import Organisation, User

    user = session.scalar(select(User).where(func.lower(User.email) == email.strip().lower()))
    if user is None or not user.is_active:
        raise _Fail(f"no active user {email!r}")
    org = session.get_one(Organisation, user.org_id)
    if not org.is_active:
        raise _Fail(f"the organisation {org.code} of {email} is deactivated")
    return principal_for(user, org, via="cli")


class _Fail(Exception):
    pass


def _fail(message: str, code: int = 2) -> typer.Exit:
    err.print(f"[red]{message}[/red]")
    return typer.Exit(code)


def _write_report(kind: str, html: str, pdf_bytes: bytes | None, out: Path, fmt: str) -> list[Path]:
    written = []
    if fmt in ("html", "both"):
        path = out.with_suffix(".html")
        path.write_text(html, encoding="utf-8")
        written.append(path)
    if fmt in ("pdf", "both") and pdf_bytes is not None:
        path = out.with_suffix(".pdf")
        path.write_bytes(pdf_bytes)
        written.append(path)
    return written


ReportFormat = Annotated[str, typer.Option("--format", help="pdf, html or both.")]


@report_app.command("daily")
def report_daily(
    operation: Operation,
    as_user: AsUser,
    date: Annotated[str | None, typer.Option("--date", help="The day, YYYY-MM-DD (default today).")] = None,
    out: Out = None,
    fmt: ReportFormat = "both",
) -> None:
    """The daily situation report of one day (HTML and PDF)."""
    from stopnet.core.errors import ServiceError
    from stopnet.db.engine import session_scope
    from stopnet.operations.service import get_operation

    from . import service, views

    if fmt not in ("pdf", "html", "both"):
        raise _fail("--format is pdf, html or both")
    try:
        day = dt.date.fromisoformat(date) if date else None
    except ValueError:
        raise _fail(f"--date {date!r} is not a date (YYYY-MM-DD)") from None
    try:
        with session_scope(_session_factory()) as session:
            principal = _principal(session, as_user)
            op = get_operation(session, principal, operation)
            r = service.daily_report(session, principal, op, day)
    except _Fail as e:
        raise _fail(str(e)) from None
    except ServiceError as e:
        raise _fail(_message(e)) from None
    html = views.daily_html(r)
    pdf = views.daily_pdf(r) if fmt != "html" else None
    target = out or Path(views.daily_filename(r))
    for path in _write_report("daily", html, pdf, target, fmt):
        console.print(f"wrote {path}")


@report_app.command("final")
def report_final(
    operation: Operation,
    as_user: AsUser,
    compare: Annotated[
        str | None,
        typer.Option(
            "--compare", help="Operation to compare with (default: the previous one; 'none': no comparison)."
        ),
    ] = None,
    out: Out = None,
    fmt: ReportFormat = "both",
) -> None:
    """The end-of-operation report (HTML and PDF), compared with an earlier operation."""
    from stopnet.core.errors import ServiceError
    from stopnet.db.engine import session_scope
    from stopnet.operations.service import get_operation

    from . import service, views

    if fmt not in ("pdf", "html", "both"):
        raise _fail("--format is pdf, html or both")
    try:
        with session_scope(_session_factory()) as session:
            principal = _principal(session, as_user)
            op = get_operation(session, principal, operation)
            r = service.final_report(session, principal, op, compare)
    except _Fail as e:
        raise _fail(str(e)) from None
    except ServiceError as e:
        raise _fail(_message(e)) from None
    html = views.final_html(r)
    pdf = views.final_pdf(r) if fmt != "html" else None
    target = out or Path(views.final_filename(r))
    for path in _write_report("final", html, pdf, target, fmt):
        console.print(f"wrote {path}")


def _message(e: Exception) -> str:
    from stopnet.core.errors import InvalidInput

    if isinstance(e, InvalidInput):
        return e.summary + "".join(f"\n  {fe}" for fe in e.errors)
    return str(getattr(e, "message", e))


def _export(
    kind: str, operation: str, as_user: str, fmt: str, out: Path | None, filters: dict[str, str]
) -> None:
    from pydantic import ValidationError

    from stopnet.core.errors import ServiceError
    from stopnet.db.engine import session_scope
    from stopnet.operations.service import get_operation
    from stopnet.reporting.schemas import CaseFilters

    from . import exports

    if fmt not in exports.MEDIA_TYPES:
        raise _fail("--format is csv, xlsx or json")
    try:
        case_filters = CaseFilters.model_validate({k: v for k, v in filters.items() if v})
    except ValidationError as e:
        raise _fail(
            "invalid filter: " + "; ".join(f"{'.'.join(map(str, x['loc']))}: {x['msg']}" for x in e.errors())
        ) from None
    try:
        with session_scope(_session_factory()) as session:
            principal = _principal(session, as_user)
            op = get_operation(session, principal, operation)
            info = exports.start_export(session, principal, op, kind, fmt, case_filters)  # type: ignore[arg-type]
            target = out or Path(exports.filename(info))
            with target.open("wb") as f:
                for chunk in exports.render(session, principal, op, info, case_filters):
                    f.write(chunk)
    except _Fail as e:
        raise _fail(str(e)) from None
    except ServiceError as e:
        raise _fail(_message(e)) from None
    console.print(f"wrote {info.rows:,} {kind} to {target}")


ExportFormatOpt = Annotated[str, typer.Option("--format", help="csv, xlsx or json.")]
DateFrom = Annotated[str | None, typer.Option("--date-from", help="Detected on or after (YYYY-MM-DD).")]
DateTo = Annotated[str | None, typer.Option("--date-to", help="Detected on or before (YYYY-MM-DD).")]
Region = Annotated[str | None, typer.Option("--region", help="WCO region code.")]
Country = Annotated[str | None, typer.Option("--country", help="Reporting country (ISO alpha-2).")]
Group = Annotated[str | None, typer.Option("--commodity-group", help="medicines, ipr or other.")]
Commodity = Annotated[str | None, typer.Option("--commodity-code", help="Commodity category code.")]
Channel = Annotated[str | None, typer.Option("--channel", help="Traffic channel code.")]
Status = Annotated[str | None, typer.Option("--status", help="draft, submitted or validated.")]


@export_app.command("cases")
def export_cases(
    operation: Operation,
    as_user: AsUser,
    fmt: ExportFormatOpt = "csv",
    out: Out = None,
    date_from: DateFrom = None,
    date_to: DateTo = None,
    region: Region = None,
    country: Country = None,
    commodity_group: Group = None,
    commodity_code: Commodity = None,
    channel: Channel = None,
    status: Status = None,
) -> None:
    """Export the cases the user may read (one row per case)."""
    _export("cases", operation, as_user, fmt, out, _filters(locals()))


@export_app.command("seizures")
def export_seizures(
    operation: Operation,
    as_user: AsUser,
    fmt: ExportFormatOpt = "csv",
    out: Out = None,
    date_from: DateFrom = None,
    date_to: DateTo = None,
    region: Region = None,
    country: Country = None,
    commodity_group: Group = None,
    commodity_code: Commodity = None,
    channel: Channel = None,
    status: Status = None,
) -> None:
    """Export the seizures the user may read (one row per seizure)."""
    _export("seizures", operation, as_user, fmt, out, _filters(locals()))


def _filters(values: dict[str, object]) -> dict[str, str]:
    keys = (
        "date_from",
        "date_to",
        "region",
        "country",
        "commodity_group",
        "commodity_code",
        "channel",
        "status",
    )
    return {k: str(values[k]) for k in keys if values.get(k)}
