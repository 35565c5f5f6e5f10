"""Exports of an operation's cases and seizures as CSV, XLSX or JSON.

* **Visibility.** Rows are selected with :func:`stopnet.reporting.service.visible_cases` (its WHERE is
  ``policy.case_read_clause``), so an export holds exactly the cases the exporter may read, with the same
  filters as the case list. Rights holders have no case list: they export the seizures of their own
  approved brands only, from cases shared with the participants, without case reference, consignee, notes
  or description (as ``/rights/seizures``).
* **Personal data.** No export carries any: the consignee's name is not a column (it stays in the
  reporting administration's case pages and API, docs/reliability.md). Files travel; names should not.
* **Formula injection.** In CSV and XLSX, a text cell starting with ``=``, ``+``, ``-``, ``@``, tab or
  carriage return gets a leading ``'`` so that no spreadsheet runs it; numbers stay numbers.
* **Audit.** Every export writes an ``export.cases`` / ``export.seizures`` entry (format, filters, rows).
* **Streaming.** CSV and JSON are written row by row as the database yields them (``yield_per``); XLSX
  is written by openpyxl's write-only workbook to a spooled temporary file, then streamed.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import re
import tempfile
from collections.abc import Iterator, Sequence
from decimal import Decimal
from itertools import groupby
from operator import itemgetter
from typing import Any

from sqlalchemy import ColumnElement, Select, false, func, select
from sqlalchemy.orm import Session, aliased

from stopnet.access import policy
from stopnet.access.principal import Principal
from stopnet.analytics.service import csv_cell
from stopnet.audit.service import record
from stopnet.core.errors import FieldError, Forbidden, InvalidInput
from stopnet.db.models import Case, Operation, Organisation, OrgKind, Role, Seizure
from stopnet.db.models.rightsholders import Brand, BrandStatus
from stopnet.reporting.schemas import CaseFilters
from stopnet.reporting.service import audit_restricted_reads, codes_of, filter_clauses, visible_cases
from stopnet.rightsholders import service as rights

from .schemas import ExportFormat, ExportInfo, ExportKind

YIELD_PER = 2000
CHUNK = 64 * 1024
MEDIA_TYPES: dict[str, str] = {
    "csv": "text/csv; charset=utf-8",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "json": "application/json",
}

CASE_COLUMNS = [
    "case_id", "reference", "reporting_org", "reporting_country", "region_code", "status", "visibility",
    "detected_on", "office", "place", "transport_mode", "is_ecommerce", "channel", "departure_country",
    "origin_country", "destination_country", "transit_countries", "detection_method", "concealment",
    "platform_type", "platform_name", "notes", "seizures", "total_pieces",
    "total_weight_kg", "commodity_codes", "brands", "submitted_at", "validated_at",
]  # fmt: skip
SEIZURE_COLUMNS = [
    "seizure_id", "case_id", "case_reference", "reporting_org", "reporting_country", "region_code",
    "status", "detected_on", "transport_mode", "is_ecommerce", "channel", "origin_country",
    "destination_country", "line_no", "commodity_code", "commodity_group", "description", "brand",
    "rights_holder", "hs_code", "pieces", "weight_kg", "value_amount", "currency", "infringement_type",
    "nature",
]  # fmt: skip
#: What a rights holder's export of its brands' seizures holds (as ``/rights/seizures``).
HOLDER_COLUMNS = [
    "operation", "brand", "reported_brand", "commodity_code", "commodity_group", "pieces", "weight_kg",
    "detected_on", "country",
]  # fmt: skip


def is_holder(principal: Principal) -> bool:
    return principal.role is Role.RIGHTS_HOLDER or principal.org_kind in (
        OrgKind.RIGHTS_HOLDER,
        OrgKind.PLATFORM,
    )


def require_export(principal: Principal, kind: str) -> None:
    """Exports need the scope ``export`` (of themselves: a token for a statistics system reads no case
    one by one); what is exported is what the principal may read."""
    policy.require_scope(principal, "export")
    if kind == "cases" and is_holder(principal):
        raise Forbidden("rights holders have no case list; export the seizures of your brands instead")


def columns(principal: Principal, kind: str) -> list[str]:
    if kind == "cases":
        return list(CASE_COLUMNS)
    return list(HOLDER_COLUMNS if is_holder(principal) else SEIZURE_COLUMNS)


def _seizure_goods(filters: CaseFilters) -> list[ColumnElement[bool]]:
    """A goods filter keeps, in a seizure export, the seizures of those goods only."""
    out: list[ColumnElement[bool]] = []
    if filters.commodity_code:
        out.append(Seizure.commodity_code.in_(codes_of(filters.commodity_code)))
    if filters.commodity_group:
        out.append(Seizure.commodity_group.in_(codes_of(filters.commodity_group, upper=False)))
    return out


def _case_stmt(session: Session, principal: Principal, op: Operation, filters: CaseFilters) -> Select[Case]:
    return visible_cases(session, principal, op, filters)


def _seizure_stmt(
    session: Session, principal: Principal, op: Operation, filters: CaseFilters
) -> Select[Seizure, Case, str]:
    cases = visible_cases(session, principal, op, filters).with_only_columns(Case.id).subquery()
    return (
        select(Seizure, Case, Organisation.code)
        .join(Case, Case.id == Seizure.case_id)
        .join(Organisation, Organisation.id == Case.reporting_org_id)
        .where(Seizure.case_id.in_(select(cases.c.id)), *_seizure_goods(filters))
    )


def _holder_stmt(
    session: Session, principal: Principal, op: Operation, filters: CaseFilters
) -> tuple[Select[Seizure, dt.date, str], dict[str, set[int]], dict[int, str]]:
    if filters.q:
        raise InvalidInput(
            [FieldError("q", "text search is not available to rights holders", value=filters.q)],
            "invalid export filter",
        )
    brands = dict(
        session.execute(
            select(Brand.id, Brand.name).where(
                Brand.owner_org_id == principal.org_id, Brand.status == BrandStatus.APPROVED
            )
        ).all()
    )
    texts = rights.reported_brand_texts(session, list(brands))
    stmt = (
        select(Seizure, Case.detected_on, Case.reporting_country)
        .join(Case, Case.id == Seizure.case_id)
        .where(
            Case.operation_id == op.id,
            Seizure.brand.in_(list(texts)) if texts else false(),
            rights.holder_case_clause([op.id]),
            # the goods filters apply to the seizure itself (the case list's EXISTS on seizures would
            # correlate to this query's seizure and leave its subquery without a FROM)
            *filter_clauses(filters.model_copy(update={"commodity_code": None, "commodity_group": None})),
            *_seizure_goods(filters),
        )
    )
    return stmt, texts, brands


def count_rows(session: Session, principal: Principal, op: Operation, kind: str, filters: CaseFilters) -> int:
    if kind == "cases":
        stmt: Select[Any] = _case_stmt(session, principal, op, filters)
    elif is_holder(principal):
        holder, texts, _ = _holder_stmt(session, principal, op, filters)
        return sum(len(texts[brand]) for brand in session.scalars(holder.with_only_columns(Seizure.brand)))
    else:
        stmt = _seizure_stmt(session, principal, op, filters).with_only_columns(Seizure.id)
    return session.scalar(select(func.count()).select_from(stmt.order_by(None).subquery())) or 0


def _active(filters: CaseFilters) -> dict[str, str]:
    return {k: str(v) for k, v in filters.model_dump(mode="json").items() if v not in (None, "")}


def start_export(
    session: Session,
    principal: Principal,
    op: Operation,
    kind: ExportKind,
    fmt: ExportFormat,
    filters: CaseFilters,
) -> ExportInfo:
    """Check the principal may export, count the rows and write the audit entry (flushes)."""
    if kind not in ("cases", "seizures"):
        raise InvalidInput([FieldError("export", "cases or seizures", value=str(kind))], "unknown export")
    if fmt not in MEDIA_TYPES:
        raise InvalidInput([FieldError("format", "csv, xlsx or json", value=str(fmt))], "unknown format")
    require_export(principal, kind)
    rows = count_rows(session, principal, op, kind, filters)
    info = ExportInfo(
        operation=op.code,
        export=kind,
        format=fmt,
        filters=_active(filters),
        columns=columns(principal, kind),
        rows=rows,
        generated_at=dt.datetime.now(dt.UTC).replace(microsecond=0),
    )
    record(
        session,
        principal,
        f"export.{kind}",
        "operation",
        op.code,
        {"format": fmt, "filters": info.filters, "rows": rows},
    )
    if not is_holder(principal):  # a holder's rows are its brands' seizures, never a restricted case
        restricted = session.execute(
            _case_stmt(session, principal, op, filters)
            .where(policy.restricted_read_clause(principal))
            .with_only_columns(Case.id, Case.visibility)
            .order_by(Case.id)
        ).all()
        audit_restricted_reads(session, principal, [(r.id, r.visibility) for r in restricted], "export")
    return info


# ---------------------------------------------------------------------------------------------- rows


def iter_rows(
    session: Session, principal: Principal, op: Operation, kind: str, filters: CaseFilters
) -> Iterator[list[Any]]:
    """The export's rows (values in the order of :func:`columns`), streamed from the database."""
    if kind == "cases":
        yield from _case_rows(session, principal, op, filters)
    elif is_holder(principal):
        yield from _holder_rows(session, principal, op, filters)
    else:
        yield from _seizure_rows(session, principal, op, filters)


def _org_codes(session: Session) -> dict[int, str]:
    return dict(session.execute(select(Organisation.id, Organisation.code)).all())


#: The case columns of a case export, in the order of :data:`CASE_COLUMNS` (without the seizure totals).
_CASE_FIELDS = (
    Case.id, Case.reference, Case.reporting_org_id, Case.reporting_country, Case.region_code, Case.status,
    Case.visibility, Case.detected_on, Case.office, Case.place, Case.transport_mode, Case.is_ecommerce,
    Case.channel, Case.departure_country, Case.origin_country, Case.destination_country,
    Case.transit_countries, Case.detection_method, Case.concealment, Case.platform_type, Case.platform_name,
    Case.notes, Case.submitted_at, Case.validated_at,
)  # fmt: skip


def _case_rows(
    session: Session, principal: Principal, op: Operation, filters: CaseFilters
) -> Iterator[list[Any]]:
    """One row per case: its columns and its seizures added up.

    One Core statement (rows, not ORM objects: executed on the session's connection) of the cases joined
    to their seizures in case order, grouped here: the whole operation's export is one streamed query
    with no per-row object work.
    """
    codes = _org_codes(session)
    s = aliased(Seizure, name="s")  # the filters' EXISTS on seizures must not correlate to this join
    stmt = (
        _case_stmt(session, principal, op, filters)
        .with_only_columns(*_CASE_FIELDS, s.pieces, s.weight_kg, s.commodity_code, s.brand)
        .outerjoin(s, s.case_id == Case.id)
        .order_by(Case.detected_on, Case.id, s.line_no)
        .execution_options(yield_per=YIELD_PER)
    )
    for _, group in groupby(session.connection().execute(stmt), key=itemgetter(0)):
        rows: list[Any] = list(group)
        (cid, ref, org_id, country, region, status, visibility, detected_on, office, place, transport,
         ecommerce, channel, departure, origin, destination, transit, detection, concealment, platform_type,
         platform_name, notes, submitted_at, validated_at, *_) = rows[0]  # fmt: skip
        seizures: list[tuple[int, Decimal, str, str | None]] = [
            r[-4:] for r in rows if r[-2] is not None
        ]  # (pieces, weight, code, brand); none when the case has no seizure
        yield [
            cid, ref, codes.get(org_id, ""), country, region, status.value, visibility.value, detected_on,
            office, place, transport, ecommerce, channel, departure, origin, destination,
            transit.replace(",", " "), detection, concealment, platform_type, platform_name, notes,
            len(seizures), sum(p for p, _, _, _ in seizures), sum((w for _, w, _, _ in seizures), Decimal(0)),
            " ".join(sorted({c for _, _, c, _ in seizures})),
            "; ".join(sorted({b for _, _, _, b in seizures if b})), submitted_at, validated_at,
        ]  # fmt: skip


#: The columns of a seizure export, in the order of :data:`SEIZURE_COLUMNS`.
_SEIZURE_FIELDS = (
    Seizure.id, Case.id, Case.reference, Organisation.code, Case.reporting_country, Case.region_code,
    Case.status, Case.detected_on, Case.transport_mode, Case.is_ecommerce, Case.channel, Case.origin_country,
    Case.destination_country, Seizure.line_no, Seizure.commodity_code, Seizure.commodity_group,
    Seizure.description, Seizure.brand, Seizure.rights_holder, Seizure.hs_code, Seizure.pieces,
    Seizure.weight_kg, Seizure.value_amount, Seizure.currency, Seizure.infringement_type, Seizure.nature,
)  # fmt: skip
_STATUS_AT = SEIZURE_COLUMNS.index("status")


def _seizure_rows(
    session: Session, principal: Principal, op: Operation, filters: CaseFilters
) -> Iterator[list[Any]]:
    stmt = (
        _seizure_stmt(session, principal, op, filters)
        .with_only_columns(*_SEIZURE_FIELDS)
        .order_by(Case.detected_on, Case.id, Seizure.line_no)
        .execution_options(yield_per=YIELD_PER)
    )
    for row in session.connection().execute(stmt):
        out = list(row)
        out[_STATUS_AT] = out[_STATUS_AT].value
        yield out


def _holder_rows(
    session: Session, principal: Principal, op: Operation, filters: CaseFilters
) -> Iterator[list[Any]]:
    stmt, texts, brands = _holder_stmt(session, principal, op, filters)
    stmt = stmt.order_by(Case.detected_on, Seizure.id).execution_options(yield_per=YIELD_PER)
    for s, detected_on, country in session.execute(stmt):
        for bid in sorted(texts[s.brand]):
            yield [
                op.code, brands[bid], s.brand, s.commodity_code, s.commodity_group, s.pieces, s.weight_kg,
                detected_on, country,
            ]  # fmt: skip


# ---------------------------------------------------------------------------------------------- formats

_XLSX_ILLEGAL = re.compile(r"[\000-\010]|[\013-\014]|[\016-\037]")


#: How a cell of each exact type is written in CSV (the common types, looked up once per cell).
_AS_TEXT: dict[type, Any] = {
    type(None): lambda v: "",
    bool: lambda v: "true" if v else "false",
    dt.datetime: dt.datetime.isoformat,
    dt.date: dt.date.isoformat,
    str: csv_cell,
}


def csv_value(value: Any) -> Any:
    """A CSV cell: text guarded against formula injection; numbers and dates as written."""
    convert = _AS_TEXT.get(type(value))
    if convert is not None:
        return convert(value)
    if isinstance(value, str):  # a subclass of str
        return csv_cell(value)
    if isinstance(value, dt.date):  # or of date, datetime
        return value.isoformat()
    return str(value)


def xlsx_value(value: Any) -> Any:
    """An XLSX cell: numbers stay numbers, dates dates; text guarded and stripped of control characters."""
    if value is None:
        return None
    if isinstance(value, bool | int | float):
        return value
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.UTC).replace(tzinfo=None) if value.tzinfo else value
    if isinstance(value, dt.date):
        return value
    return csv_cell(_XLSX_ILLEGAL.sub("", str(value)))


def _json_value(value: Any) -> Any:
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    return value


def render_csv(header: Sequence[str], rows: Iterator[list[Any]]) -> Iterator[bytes]:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\r\n")
    buf.write("\ufeff")  # so that spreadsheets read UTF-8
    w.writerow(header)
    for i, row in enumerate(rows, 1):
        w.writerow([csv_value(v) for v in row])
        if i % 200 == 0:
            yield buf.getvalue().encode()
            buf.seek(0)
            buf.truncate()
    yield buf.getvalue().encode()


def render_json(info: ExportInfo, rows: Iterator[list[Any]]) -> Iterator[bytes]:
    head = info.model_dump(mode="json")
    yield (json.dumps(head, ensure_ascii=False)[:-1] + ', "items": [').encode()
    out: list[str] = []
    for i, row in enumerate(rows):
        item = json.dumps(
            {k: _json_value(v) for k, v in zip(info.columns, row, strict=True)}, ensure_ascii=False
        )
        out.append(item if i == 0 else "," + item)
        if len(out) >= 200:
            yield "".join(out).encode()
            out = []
    out.append("]}")
    yield "".join(out).encode()


def render_xlsx(info: ExportInfo, rows: Iterator[list[Any]]) -> Iterator[bytes]:
    from openpyxl import Workbook

    wb = Workbook(write_only=True)
    ws = wb.create_sheet(info.export)
    ws.append(info.columns)
    for row in rows:
        ws.append([xlsx_value(v) for v in row])
    about = wb.create_sheet("export")
    for key, value in (
        ("operation", info.operation),
        ("export", info.export),
        ("rows", info.rows),
        ("generated_at", info.generated_at.isoformat()),
        *((f"filter: {k}", v) for k, v in info.filters.items()),
    ):
        about.append([key, xlsx_value(value)])
    with tempfile.SpooledTemporaryFile(max_size=16 * 1024 * 1024) as f:
        wb.save(f)
        f.seek(0)
        while chunk := f.read(CHUNK):
            yield chunk


def render(
    session: Session, principal: Principal, op: Operation, info: ExportInfo, filters: CaseFilters
) -> Iterator[bytes]:
    """The export file, in chunks."""
    rows = iter_rows(session, principal, op, info.export, filters)
    if info.format == "csv":
        return render_csv(info.columns, rows)
    if info.format == "json":
        return render_json(info, rows)
    return render_xlsx(info, rows)


def filename(info: ExportInfo) -> str:
    return f"stopnet-{info.operation.lower()}-{info.export}-{info.generated_at:%Y%m%d-%H%M%S}.{info.format}"
