"""Bulk import of seizures from CSV or XLSX.

One row is one seizure; rows sharing a ``case_reference`` form one case, and must agree on the case
columns. The import is all or nothing: every problem in the file is reported (row, field, why) and
nothing is written unless the whole file is clean. It is idempotent: the same file (by SHA-256) is
recognised, and cases already imported with identical content are counted as unchanged.
The column template is documented in docs/import-template.md and served at
``/api/v1/import-template.csv``. :func:`annotate` checks a file without importing it and gives it back
with a ``problems`` column (one cell per row); an import ignores that column.

Speed (docs/benchmarks.md, "Bulk import"): on PostgreSQL (psycopg) a clean file is first tried column
by column (:mod:`.columnar`: each field's validator once per distinct cell, the rules across cells as
Polars expressions, the rows sent as CSV with ``COPY``); a file it declines, with any problem or
anything unusual in it, goes row by row. Row by row, every validation runs once per distinct content
where it can (a case on its first row, a repeated seizure once), on plain tuples, with the cyclic
garbage collector paused; on PostgreSQL the rows go in with ``COPY`` (the cases while the file is still
being checked, the seizures and versions once it is clean) inside a savepoint that any problem rolls
back; elsewhere Core executemany writes once the whole file is known to be clean. Only the row path
names problems, so every error message comes from one place.
"""

from __future__ import annotations

import csv
import datetime as dt
import gc
import hashlib
import io
import re
import threading
import zipfile
from collections.abc import Callable, Iterable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field, replace
from functools import partial
from operator import itemgetter
from typing import Any, cast

from pydantic import ValidationError
from sqlalchemy import Table as SQLTable
from sqlalchemy import insert, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, selectinload

from stopnet.access import policy
from stopnet.access.principal import Principal
from stopnet.audit.service import record
from stopnet.config import Settings
from stopnet.core.errors import Conflict, FieldError, InvalidInput
from stopnet.core.progress import ProgressCallback
from stopnet.core.validation import field_errors
from stopnet.db.models import (
    Case,
    CaseStatus,
    CaseVersion,
    ImportBatch,
    Operation,
    Organisation,
    Seizure,
    utcnow,
)
from stopnet.db.models.sharing import Audience
from stopnet.reference import get_reference
from stopnet.sharing import outbox

from . import columnar
from .schemas import FIELD_HINTS, CaseRow, ImportResult, SeizureIn, read_date
from .service import CASE_FIELDS, date_rule_errors, operation_rule_errors, seizure_values, snapshot_of

CASE_COLUMNS = (
    "case_reference",
    "detected_on",
    "office",
    "place",
    "transport_mode",
    "is_ecommerce",
    "channel",
    "departure_country",
    "origin_country",
    "destination_country",
    "transit_countries",
    "detection_method",
    "concealment",
    "platform_type",
    "platform_name",
    "consignee_name",
    "visibility",
    "notes",
)
SEIZURE_COLUMNS = (
    "commodity_code",
    "description",
    "brand",
    "rights_holder",
    "hs_code",
    "pieces",
    "weight_kg",
    "value_amount",
    "currency",
    "infringement_type",
    "nature",
)
COLUMNS = CASE_COLUMNS + SEIZURE_COLUMNS
REQUIRED = (
    "case_reference",
    "detected_on",
    "transport_mode",
    "is_ecommerce",
    "channel",
    "detection_method",
    "commodity_code",
)
EXAMPLE = {
    "case_reference": "FR-2025-0001",
    "detected_on": "2025-05-14",
    "office": "Roissy CDG express hub",
    "transport_mode": "AIR",
    "is_ecommerce": "yes",
    "channel": "EXPRESS",
    "departure_country": "HK",
    "origin_country": "CN",
    "destination_country": "FR",
    "transit_countries": "AE",
    "detection_method": "RISK_PROFILE",
    "concealment": "MISDECLARED",
    "platform_type": "MARKETPLACE",
    "visibility": "participants",
    "commodity_code": "MED-WEIGHT",
    "description": "semaglutide pens",
    "brand": "Slimora",
    "rights_holder": "Halcyon Pharmaceuticals plc",
    "hs_code": "300490",
    "pieces": "120",
    "weight_kg": "3.2",
    "value_amount": "9000",
    "currency": "EUR",
    "infringement_type": "TRADEMARK",
    "nature": "FALSIFIED",
}
MAX_ERRORS = 1000
PROBLEMS = "problems"  # the column an annotated copy adds (and an import ignores)
MAX_CELL = 10_000
XLSX_MAX_UNCOMPRESSED = 200 * 1024 * 1024
XLSX_MAX_RATIO = 200
XLSX_MAX_SHEET_ROWS = 1_048_576  # Excel's own limit; also bounds empty rows a damaged sheet may claim
XLSX_MAX_SHEET_CELLS = 30_000_000  # rows x columns read, empty cells included (bounds the work per file)
TRUE = {"1", "true", "yes", "y", "t", "oui", "si", "x"}
FALSE = {"0", "false", "no", "n", "f", "non", ""}


FEED_CASE_EVENTS = 1000  # imports creating more cases announce themselves with one event (_announce)


def template_csv() -> str:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=COLUMNS, lineterminator="\n")
    w.writeheader()
    w.writerow({c: EXAMPLE.get(c, "") for c in COLUMNS})
    return buf.getvalue()


# --------------------------------------------------------------------------------------- reading files


@dataclass
class Table:
    header: list[str]
    rows: list[list[str]]  # data rows; row i of the file is rows[i - 2] (row 1 is the header)
    has_nul: bool = False  # a cell holds a NUL character (XLSX only: a CSV with NUL bytes is refused)


def _bad(message: str, field_name: str = "file") -> InvalidInput:
    return InvalidInput([FieldError(field_name, message)], message)


def read_table(filename: str, data: bytes, max_rows: int) -> Table:
    if not data.strip():
        raise _bad("the file is empty")
    if _is_xlsx(filename, data):
        return _read_xlsx(data, max_rows)
    return _read_csv(data, max_rows)


def _is_xlsx(filename: str, data: bytes) -> bool:
    return data[:4] == b"PK\x03\x04" or filename.lower().endswith(".xlsx")


def _delimiter(text: str) -> str:
    """The delimiter of a CSV text: the one of , ; and tab its first line holds most of."""
    first = text.split("\n", 1)[0]
    return max((",", ";", "\t"), key=first.count)


def _decode(data: bytes) -> str:
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        try:
            return data.decode("utf-16")
        except UnicodeDecodeError as e:
            raise _bad(f"the file is not valid UTF-16 text ({e.reason} at byte {e.start})") from e
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = data[: e.start].count(b"\n") + 1
        raise _bad(
            f"the file is not UTF-8 text: byte 0x{data[e.start]:02x} on line {line} cannot be decoded; "
            "save it as 'CSV UTF-8' and import again",
            "encoding",
        ) from e


def _read_csv(data: bytes, max_rows: int) -> Table:
    return _csv_table(_decode(data), max_rows)


def _csv_table(text: str, max_rows: int) -> Table:
    """The rows of a decoded CSV text, read by Python's ``csv``."""
    if "\x00" in text:
        raise _bad("the file contains NUL bytes: it is not a CSV text file")
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=_delimiter(text), strict=True)
    try:
        header = next(reader)
    except StopIteration:
        raise _bad("the file is empty") from None
    except csv.Error as e:
        raise _bad(f"the header cannot be read as CSV: {e}") from e
    rows: list[list[str]] = []
    append = rows.append
    try:
        for row in reader:
            if not "".join(row).strip():  # blank line, or only blank cells
                continue
            append(row)
            if len(rows) > max_rows:
                raise _bad(f"the file has more than {max_rows} data rows; split it")
    except csv.Error as e:
        raise _bad(f"line {reader.line_num} cannot be read as CSV: {e}") from e
    return Table(header, rows)


def _read_xlsx(data: bytes, max_rows: int) -> Table:
    import openpyxl

    try:
        with zipfile.ZipFile(io.BytesIO(data)) as z:
            total = sum(i.file_size for i in z.infolist())
            if total > XLSX_MAX_UNCOMPRESSED or total > XLSX_MAX_RATIO * max(len(data), 1):
                raise _bad("the XLSX file expands to too much data (possible zip bomb); refused")
            # zipfile stops at each member's declared size, so the check above bounds this too
            bad = z.testzip()
            if bad is not None:
                raise _bad(f"the XLSX file is damaged ({bad})")
    except InvalidInput:
        raise
    except zipfile.BadZipFile as e:
        raise _bad("the file is neither CSV text nor a valid XLSX workbook") from e
    except Exception as e:  # zlib.error, EOFError, NotImplementedError (compression), ... on damaged zips
        raise _bad(f"the XLSX file is damaged ({type(e).__name__})") from e
    try:
        wb = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except Exception as e:  # openpyxl raises many kinds on damaged files
        raise _bad(f"the XLSX workbook cannot be read: {type(e).__name__}") from e
    try:
        uncomputed = _uncomputed_cells(wb)
        if uncomputed:
            refs = ", ".join(uncomputed[:10]) + (", ..." if len(uncomputed) > 10 else "")
            raise _bad(
                f"cell{'s' if len(uncomputed) > 1 else ''} {refs} of the first sheet hold a formula without a "
                "saved result, or an error (#REF!, #DIV/0!, ...); fix them, save the file in a spreadsheet "
                "program (or paste the values) and import again",
                "formula",
            )
        return _read_sheet(wb, max_rows)
    except InvalidInput:
        raise
    except Exception as e:  # damaged sheet XML, shared strings out of range, ...
        raise _bad(f"the XLSX workbook cannot be read: {type(e).__name__}") from e
    finally:
        wb.close()


_FORMULA_OR_ERROR = re.compile(rb"<(?:\w+:)?f[\s>/]|\st=[\"']e[\"']")


def _uncomputed_cells(wb: Any) -> list[str]:
    """The first sheet's cells that hold a formula without a saved result, or an error value.

    The workbook is read for the results Excel saved with its formulas (``data_only``): a formula never
    computed (a file written by a program, not saved by a spreadsheet) reads as an empty cell, and an
    error as its text ("#REF!"); either would be imported as something the user did not see. A quick
    scan skips the XML parse for the usual sheet without formulas or errors.
    """
    # the parser openpyxl itself reads this XML with (expat: no external entities, bounded expansion)
    from openpyxl.xml.functions import iterparse

    if not wb.worksheets:
        return []
    path = wb.worksheets[0]._worksheet_path
    with wb._archive.open(path) as f:
        tail, found = b"", False
        while chunk := f.read(1 << 20):
            if _FORMULA_OR_ERROR.search(tail + chunk):
                found = True
                break
            tail = chunk[-16:]
    if not found:
        return []
    refs: list[str] = []
    with wb._archive.open(path) as f:
        for _, el in iterparse(f, events=("end",)):
            if el.tag.rsplit("}", 1)[-1] != "c":
                continue
            kids = {k.tag.rsplit("}", 1)[-1]: k for k in el}
            value = kids.get("v")
            if el.get("t") == "e" or ("f" in kids and (value is None or value.text is None)):
                refs.append(el.get("r") or "?")
            el.clear()
    return refs


def _read_sheet(wb: Any, max_rows: int) -> Table:
    if not wb.worksheets:
        raise _bad("the workbook has no worksheet")
    ws = wb.worksheets[0]
    # Ignore the sheet's declared dimension (a tiny file may claim A1:XFD1048576): rows are then only as
    # wide as their last cell, and missing rows are not padded up to the claimed last row.
    ws.reset_dimensions()
    it = ws.iter_rows(values_only=True)
    try:
        header = [_cell(c) for c in next(it)]
    except StopIteration:
        raise _bad("the workbook's first sheet is empty") from None
    while header and not header[-1].strip():
        header.pop()
    width = len(header)
    rows: list[list[str]] = []
    nul = "\x00" in "".join(header)
    scanned = 1
    cells = len(header)
    for values in it:
        scanned += 1
        cells += len(values)
        if scanned > XLSX_MAX_SHEET_ROWS or cells > XLSX_MAX_SHEET_CELLS:
            raise _bad(
                f"the sheet is too large (more than {XLSX_MAX_SHEET_ROWS:,} rows or {XLSX_MAX_SHEET_CELLS:,} "
                "cells, empty ones included); copy the data to a new sheet or save it as CSV"
            )
        if not values:
            continue
        extra = values[width:]
        if extra and extra.count(None) != len(extra):
            # cells right of the header: keep them up to the last non-empty one, so that the row is
            # reported as too wide (the cell budget above bounds this scan)
            last = max(i for i, v in enumerate(extra) if v is not None)
            values = values[: width + last + 1]
        elif extra:
            values = values[:width]
        row = [_cell(c) for c in values]
        joined = "".join(row)
        if not joined.strip():
            continue
        nul = nul or "\x00" in joined
        rows.append(row)
        if len(rows) > max_rows:
            raise _bad(f"the file has more than {max_rows} data rows; split it")
    return Table(header, rows, nul)


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, dt.datetime):
        return value.date().isoformat() if value.time() == dt.time() else value.isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


# --------------------------------------------------------------------------------------- validation


@dataclass
class ParsedCase:
    reference: str
    rows: list[int]
    fields: CaseRow
    raw_key: tuple[str, ...]
    seizures: list[SeizureIn] = field(default_factory=list)
    # rows whose seizure cells are not validated yet: (row number, the row's cells in COLUMNS order)
    pending: list[tuple[int, tuple[str, ...]]] = field(default_factory=list, repr=False)


def _key(name: str) -> str:
    """A header cell as a column name: case-insensitive, spaces and dashes as underscores."""
    return name.strip().lower().replace(" ", "_").replace("-", "_")


def _is_problems(key: str) -> bool:
    """The column :func:`annotate` adds: ``problems``, or ``problems (...)`` with the header's own."""
    return key == PROBLEMS or key.startswith(PROBLEMS + "_(")


def _normalise_header(header: list[str]) -> tuple[dict[str, int], list[FieldError]]:
    errors: list[FieldError] = []
    index: dict[str, int] = {}
    for i, name in enumerate(header):
        key = _key(name)
        if not key or _is_problems(key):  # the problem column of an annotated copy is read as a note
            continue
        if key not in COLUMNS:
            if len(errors) < MAX_ERRORS:  # a header of a million junk cells must not list them all
                message = f"unknown column {name[:100]!r}; check its spelling against the import template"
                errors.append(FieldError(name[:100], message, row=1, code="unknown_column"))
        elif key in index:
            errors.append(
                FieldError(name[:100], f"column {key} appears twice", row=1, code="duplicate_column")
            )
        else:
            index[key] = i
    for req in REQUIRED:
        if req not in index:
            message = f"required column is missing: add a column {req} (see the import template)"
            errors.append(FieldError(req, message, row=1, code="missing_column"))
    return index, errors


def _bool(value: str) -> bool | str:
    v = value.strip().lower()
    if v in TRUE:
        return True
    if v in FALSE:
        return False
    return value  # let validation say it is not a boolean


def _column(loc: tuple[Any, ...]) -> str:
    """The column an error's location is about (a rule across columns: the row)."""
    name = next((str(p) for p in loc if isinstance(p, str)), "row")
    return "case_reference" if name == "reference" else name


def _errors_from(e: ValidationError, row: int, raw: dict[str, str]) -> list[FieldError]:
    """The problems of a row's cells in a person's words, each with the cell as the file holds it."""
    return [replace(x, value=raw.get(x.field)) for x in field_errors(e, FIELD_HINTS, name=_column, row=row)]


_N_CASE = len(CASE_COLUMNS)
_CASE_VALUE_COLUMNS = CASE_COLUMNS[1:]  # without case_reference


def parse_rows(
    table: Table, op: Operation, on_case: Callable[[ParsedCase], None] | None = None
) -> tuple[list[ParsedCase], list[FieldError]]:
    """Validate every row and group the rows into cases: the cases (seizures validated) and every
    problem found, row by row. ``on_case`` is called as in :func:`_parse`."""
    parse = _parse(table, op, on_case)
    parse.validate_all()
    parse.errors.sort(key=lambda e: e.row or 0)
    return parse.cases, parse.errors


class _SeizureCells:
    """Validates the seizure cells of rows, once per distinct content (a seizure key seen before reuses
    the earlier result); problems are recorded with their row and field."""

    def __init__(self, index: dict[str, int]) -> None:
        self.positions = {k: COLUMNS.index(k) for k in index}
        self.seen: dict[tuple[str, ...], SeizureIn | ValidationError] = {}

    def raw(self, full: tuple[str, ...]) -> dict[str, str]:
        """The row's cells by column name, for the columns the file has."""
        return {k: full[i] for k, i in self.positions.items()}

    def __call__(self, n: int, full: tuple[str, ...], errors: list[FieldError]) -> SeizureIn | None:
        skey = full[_N_CASE:]
        seizure = self.seen.get(skey)
        if seizure is None:
            try:
                seizure = SeizureIn.model_validate(
                    {k: v for k, v in zip(SEIZURE_COLUMNS, skey, strict=True) if v}
                )
            except ValidationError as e:
                seizure = e
            self.seen[skey] = seizure
        if isinstance(seizure, ValidationError):
            errors.extend(_errors_from(seizure, n, self.raw(full)))
            return None
        return seizure


@dataclass
class _Parse:
    """What :func:`_parse` found. Seizure cells are validated afterwards (:meth:`validate_case`,
    :meth:`validate_all`), so that an import can validate them while the database inserts the cases."""

    cases: list[ParsedCase]
    errors: list[FieldError]
    seizure: _SeizureCells | None = None
    orphans: list[tuple[int, tuple[str, ...]]] = field(default_factory=list)  # rows of no valid case

    def validate_case(self, p: ParsedCase) -> bool:
        """Validate the seizure cells of ``p``'s rows (into ``p.seizures``); False if any is wrong."""
        assert self.seizure is not None
        ok = True
        for n, full in p.pending:
            if len(self.errors) >= MAX_ERRORS:
                return False
            s = self.seizure(n, full, self.errors)
            if s is None:
                ok = False
            else:
                p.seizures.append(s)
        p.pending = []
        return ok

    def validate_all(self) -> None:
        """Validate every row's seizure cells not validated yet (to report every problem)."""
        if self.seizure is None:
            return
        for p in self.cases:
            self.validate_case(p)
        for n, full in self.orphans:
            if len(self.errors) >= MAX_ERRORS:
                break
            self.seizure(n, full, self.errors)
        self.orphans = []


def _parse(
    table: Table,
    op: Operation,
    on_case: Callable[[ParsedCase], None] | None = None,
    progress: ProgressCallback | None = None,
) -> _Parse:
    """Check every row and group the rows into cases; seizure cells are left for :class:`_Parse`.

    A row is turned into one tuple of its stripped cells in ``COLUMNS`` order ("" for a column the file
    lacks); its first ``len(CASE_COLUMNS)`` cells are the case key, the rest the seizure cells. A case is
    validated once, on its first row (its other rows only have to carry the same case key); dicts and
    error values are only built for bad rows. ``on_case`` is called with each new, valid case on its
    first row, as long as no problem was found.
    """
    index, errors = _normalise_header(table.header)
    if not table.rows:
        return _Parse([], errors or [FieldError("file", "the file has a header but no data rows")])
    if errors:  # the header's problems, and the rows' problems in the columns that can be read
        parse = _parse_rows(table, op, index, [], None, progress)
        parse.validate_all()
        missing = {e.field for e in errors if e.code == "missing_column"}
        parse.errors[:0] = errors
        parse.errors[:] = [
            e for e in parse.errors if not (e.row != 1 and e.field in missing and e.code == "required")
        ]
        return _Parse([], parse.errors)
    return _parse_rows(table, op, index, errors, on_case, progress)


def _parse_rows(
    table: Table,
    op: Operation,
    index: dict[str, int],
    errors: list[FieldError],
    on_case: Callable[[ParsedCase], None] | None,
    progress: ProgressCallback | None = None,
) -> _Parse:
    """:func:`_parse` of the data rows, the columns read by ``index``; ``progress`` hears every
    :data:`PROGRESS_ROWS` rows checked."""
    width = len(table.header)
    pick = itemgetter(*(index.get(c, width) for c in COLUMNS))  # position ``width`` is a padding ""
    seizure = _SeizureCells(index)
    raw_of = seizure.raw
    cases: dict[str, ParsedCase] = {}
    orphans: list[tuple[int, tuple[str, ...]]] = []
    seen_rows: dict[tuple[str, ...], int] = {}
    pad = [""]
    rows: Iterable[list[str]] = table.rows if progress is None else _ticking(table.rows, progress)
    for n, cells in enumerate(rows, start=2):
        if len(errors) >= MAX_ERRORS:
            break
        if len(cells) != width:
            if len(cells) > width:
                if any(c.strip() for c in cells[width:]):
                    errors.append(
                        FieldError(
                            "row", f"{len(cells)} cells but the header has {width}", n, code="ragged_row"
                        )
                    )
                    continue
                cells = cells[:width]
            else:
                cells = cells + [""] * (width - len(cells))
        full: tuple[str, ...] = tuple(map(str.strip, pick(cells + pad)))
        if max(map(len, full)) > MAX_CELL:
            errors.extend(
                FieldError(k, f"cell longer than {MAX_CELL} characters", n)
                for k, v in raw_of(full).items()
                if len(v) > MAX_CELL
            )
            continue
        if table.has_nul and "\x00" in "".join(full):
            errors.extend(
                FieldError(k, "the cell contains a NUL character", n)
                for k, v in raw_of(full).items()
                if "\x00" in v
            )
            continue
        first = seen_rows.setdefault(full, n)
        if first != n:
            errors.append(
                FieldError("row", f"this row is a duplicate of row {first}; remove it", n, code="duplicate")
            )
            continue
        ref = full[0]
        if not ref:  # named, and the row's other cells checked all the same
            hint = FIELD_HINTS["reference"]
            message = f"{hint.label}: required; give {hint.expected}, e.g. {hint.example}"
            errors.append(FieldError("case_reference", message, n, code="required"))
            _case_fields(("X", *full[1:_N_CASE]), n, errors, op, partial(raw_of, full))
            orphans.append((n, full))
            continue
        case_key = full[:_N_CASE]
        parsed = cases.get(ref)
        if parsed is None:
            case_fields = _case_fields(case_key, n, errors, op, partial(raw_of, full))
            if case_fields is None:
                orphans.append((n, full))
                continue
            parsed = ParsedCase(ref, [], case_fields, case_key)
            cases[ref] = parsed
            if on_case is not None and not errors:
                on_case(parsed)
        elif case_key != parsed.raw_key:
            differing = [c for c, a, b in zip(CASE_COLUMNS, case_key, parsed.raw_key, strict=True) if a != b]
            errors.append(
                FieldError(
                    differing[0],
                    f"case {ref!r} has different case columns ({', '.join(differing)}) than on row "
                    f"{parsed.rows[0]}; a case's rows must agree",
                    n,
                    raw_of(full).get(differing[0]),
                )
            )
            orphans.append((n, full))
            continue
        parsed.rows.append(n)
        parsed.pending.append((n, full))
    return _Parse(list(cases.values()), errors, seizure, orphans)


#: how often the row check tells its progress
PROGRESS_ROWS = 1000


def _ticking(rows: list[list[str]], progress: ProgressCallback) -> Iterator[list[str]]:
    """``rows``, telling ``progress`` every :data:`PROGRESS_ROWS` of them (not the last: the write is to come)."""
    total = len(rows)
    for i, cells in enumerate(rows):
        if i and i % PROGRESS_ROWS == 0:
            progress(i, total)
        yield cells


def _case_fields(
    case_key: tuple[str, ...],
    n: int,
    errors: list[FieldError],
    op: Operation,
    raw: Callable[[], dict[str, str]],
) -> CaseRow | None:
    values: dict[str, Any] = {k: v for k, v in zip(_CASE_VALUE_COLUMNS, case_key[1:], strict=True) if v}
    if "is_ecommerce" in values:
        values["is_ecommerce"] = _bool(values["is_ecommerce"])
    values["reference"] = case_key[0]
    try:
        fields = CaseRow.model_validate(values)
    except ValidationError as e:
        found = _errors_from(e, n, raw())
        errors.extend(found)
        if not any(x.field == "detected_on" for x in found):  # the date is readable: within the operation?
            errors.extend(date_rule_errors(op, read_date(values.get("detected_on")), n))
        return None
    rule_errors = operation_rule_errors(op, fields, n)
    errors.extend(rule_errors)
    return None if rule_errors else fields


# --------------------------------------------------------------------------------------- import


def import_seizures(
    session: Session,
    principal: Principal,
    op: Operation,
    filename: str,
    data: bytes,
    settings: Settings,
    progress: ProgressCallback | None = None,
) -> ImportResult:
    """Check the whole file and write it, all or nothing; the caller commits. ``progress(done, total)``
    hears the rows checked, and the total once they are written too.

    Raises :class:`InvalidInput` listing every problem (row, field, why) and leaves nothing written;
    :class:`Conflict` if a concurrent writer took one of the references meanwhile.
    """
    policy.require_reporter(session, principal, op.id, scope="import")
    if len(data) > settings.max_upload_bytes:
        raise _bad(f"the file is larger than the limit of {settings.max_upload_bytes} bytes")
    sha = hashlib.sha256(data).hexdigest()
    _lock_imports(session, op, principal)
    batch = session.scalar(
        select(ImportBatch).where(
            ImportBatch.operation_id == op.id,
            ImportBatch.org_id == principal.org_id,
            ImportBatch.sha256 == sha,
        )
    )
    if batch is not None:
        return ImportResult(
            batch_id=batch.id,
            filename=filename,
            sha256=sha,
            rows=batch.row_count,
            cases_created=0,
            seizures_created=0,
            rows_unchanged=batch.row_count,
            already_imported=True,
        )
    with _gc_paused():
        return _import(session, principal, op, filename, data, settings, sha, progress)


def _import(
    session: Session,
    principal: Principal,
    op: Operation,
    filename: str,
    data: bytes,
    settings: Settings,
    sha: str,
    progress: ProgressCallback | None = None,
) -> ImportResult:
    stored = _stored_references(session, op, principal)
    copier = _Copier.for_session(session, principal, op, stored)
    checking, table = (
        _columnar(filename, data, settings.max_import_rows, op, stored)
        if copier is not None
        else (None, None)
    )

    def new_batch(rows: int) -> ImportBatch:
        return ImportBatch(
            operation_id=op.id,
            org_id=principal.org_id,
            filename=filename[:255],
            sha256=sha,
            row_count=rows,
            created_by_id=principal.user_id,
        )

    savepoint = session.begin_nested() if copier is not None else None
    try:
        seizures_created: int | None = None
        if checking is not None:
            # PostgreSQL, a file whose case columns are clean: the cases are written column by column
            # while the seizure cells are checked (columnar.py)
            assert copier is not None and savepoint is not None
            batch = new_batch(checking.rows)
            if progress is not None:
                progress(0, checking.rows)
            session.add(batch)
            session.flush()
            created, unchanged_rows = checking.cases.height, 0
            seizures_created = copier.columns(checking, batch.id, table.rows.clear if table else None)
            if seizures_created is None:  # a seizure cell is not clean: undo, then go row by row
                copier.wait(quiet=True)
                savepoint.rollback()  # (which drops the batch from the session too)
                savepoint = session.begin_nested()
        if seizures_created is None:
            if table is None:
                table = read_table(filename, data, settings.max_import_rows)
            batch = new_batch(len(table.rows))
            created, seizures_created, unchanged_rows = _row_by_row(
                session, principal, op, table, stored, batch, copier, progress
            )
    except IntegrityError as e:
        if copier is not None:
            copier.wait(quiet=True)
        if savepoint is not None and savepoint.is_active:
            savepoint.rollback()
        # only a concurrent writer gets here (imports of one organisation are serialised on PostgreSQL)
        raise Conflict(
            "another import or case with the same references was saved at the same time; "
            "nothing was imported: import the file again"
        ) from e
    except BaseException:
        if copier is not None:
            copier.wait(quiet=True)
        if savepoint is not None and savepoint.is_active:
            savepoint.rollback()
        raise
    if savepoint is not None:
        savepoint.commit()
    if progress is not None:
        progress(batch.row_count, batch.row_count)
    batch.cases_created = created
    batch.seizures_created = seizures_created
    batch.rows_unchanged = unchanged_rows
    _announce(session, op, principal, batch.id, created)
    record(
        session,
        principal,
        "import.seizures",
        "import_batch",
        batch.id,
        {"file": filename, "sha256": sha, "cases": created, "seizures": seizures_created},
    )
    session.flush()
    return ImportResult(
        batch_id=batch.id,
        filename=filename,
        sha256=sha,
        rows=batch.row_count,
        cases_created=created,
        seizures_created=seizures_created,
        rows_unchanged=unchanged_rows,
        already_imported=False,
    )


@dataclass(frozen=True)
class Annotated:
    """A checked file given back with a problem column: its bytes, media type and file name."""

    content: bytes
    media_type: str
    filename: str
    problems: int


def _text_cell(ws: Any, value: str) -> Any:
    """A cell holding ``value`` as text (a value starting with ``=`` stays text, not a formula)."""
    from openpyxl.cell import WriteOnlyCell

    cell = WriteOnlyCell(ws, value)
    cell.data_type = "s"
    return cell


def check_file(
    session: Session, principal: Principal, op: Operation, filename: str, data: bytes, settings: Settings
) -> tuple[Table, list[FieldError]]:
    """Every problem of the file, as an import would find them, writing nothing. Raises
    :class:`InvalidInput` when the file cannot be read at all (not CSV or XLSX, empty, too large)."""
    policy.require_reporter(session, principal, op.id, scope="import")
    if len(data) > settings.max_upload_bytes:
        raise _bad(f"the file is larger than the limit of {settings.max_upload_bytes} bytes")
    table = read_table(filename, data, settings.max_import_rows)
    with _gc_paused():
        stored = _stored_references(session, op, principal)
        parse = _parse(table, op)
        parse.validate_all()
        errors = parse.errors
        _compare_with_stored(session, op, principal, parse.cases, stored, errors)
    errors.sort(key=lambda e: (e.row or 0, e.field))
    return table, errors


def annotate(
    session: Session, principal: Principal, op: Operation, filename: str, data: bytes, settings: Settings
) -> Annotated:
    """The file checked (:func:`check_file`) and given back in its own format (CSV with its delimiter,
    or XLSX) with a ``problems`` column: every problem of a row in its cell, empty for a good row; a
    problem of the header in the header's cell. Importing the annotated copy ignores that column."""
    table, errors = check_file(session, principal, op, filename, data, settings)
    by_row: dict[int, list[str]] = {}
    for e in errors:
        by_row.setdefault(e.row or 1, []).append(
            e.message if e.row is not None else f"{e.field}: {e.message}"
        )
    width = len(table.header)
    keep = [i for i, h in enumerate(table.header) if not _is_problems(_key(h))]
    header_note = "; ".join(by_row.get(1, []))
    out_header = [table.header[i] for i in keep] + [PROBLEMS + (f" ({header_note})" if header_note else "")]
    out_rows = [
        [(cells[i] if i < len(cells) else "") for i in keep] + cells[width:] + ["\n".join(by_row.get(n, []))]
        for n, cells in enumerate(table.rows, start=2)
    ]
    stem = re.sub(r"[^A-Za-z0-9._-]", "_", filename.rsplit(".", 1)[0])[:100] or "import"
    if _is_xlsx(filename, data):
        import openpyxl

        wb = openpyxl.Workbook(write_only=True)
        ws = wb.create_sheet("annotated")
        for r in [out_header, *out_rows]:
            ws.append([_text_cell(ws, v) for v in r])
        buf = io.BytesIO()
        wb.save(buf)
        media = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
        return Annotated(buf.getvalue(), media, f"{stem}-problems.xlsx", len(errors))
    text = _decode(data)
    out = io.StringIO()
    w = csv.writer(out, delimiter=_delimiter(text), lineterminator="\r\n" if "\r\n" in text else "\n")
    w.writerow(out_header)
    w.writerows(out_rows)
    return Annotated(
        ("\ufeff" + out.getvalue()).encode(), "text/csv; charset=utf-8", f"{stem}-problems.csv", len(errors)
    )


def _columnar(
    filename: str, data: bytes, max_rows: int, op: Operation, stored: set[str]
) -> tuple[columnar.Checking | None, Table | None]:
    """The file column by column if its case columns are clean and it is simple
    (:func:`columnar.check_cases`), and the :class:`Table` when it had to be read row by row (so that
    the row path does not read it again).

    A CSV text is read by Polars when that reading is exact (:func:`columnar.read_csv`); an XLSX
    workbook, or a CSV text that Polars would not read exactly, is read by :func:`read_table`. A file
    that cannot be read raises here as it would there.
    """
    table = None
    if data.strip() and not _is_xlsx(filename, data):
        text = _decode(data)
        read = None if "\x00" in text else columnar.read_csv(text, _delimiter(text), max_rows)
        if read is None:
            table = _csv_table(text, max_rows)
            header, cells = table.header, columnar.rows_frame(table.rows, len(table.header))
        else:
            header, cells = read
    else:
        table = read_table(filename, data, max_rows)
        header, cells = table.header, columnar.rows_frame(table.rows, len(table.header))
    index, errors = _normalise_header(header)
    if errors or cells is None:  # (a NUL in a cell: columnar.check_cases declines it)
        return None, table
    return columnar.check_cases(index, cells, op, stored, max_cell=MAX_CELL, to_bool=_bool), table


def _row_by_row(
    session: Session,
    principal: Principal,
    op: Operation,
    table: Table,
    stored: set[str],
    batch: ImportBatch,
    copier: _Copier | None,
    progress: ProgressCallback | None = None,
) -> tuple[int, int, int]:
    """Check the file row by row, naming every problem (raises :class:`InvalidInput`), and write it
    (``copier``: PostgreSQL's COPY, else Core executemany) with ``batch`` (added here).
    Returns the cases created, the seizures created and the rows unchanged (of cases already stored
    with the same content)."""
    if copier is not None:
        # PostgreSQL: the batch first, then the case rows are sent while the file is still being
        # checked (the server inserts them meanwhile), the seizures once their cells are valid;
        # any problem rolls the caller's savepoint back
        session.add(batch)
        session.flush()
        with copier.cases(batch.id, _count_new_references(table, stored)) as on_case:
            parse = _parse(table, op, on_case, progress)
    else:
        parse = _parse(table, op, progress=progress)
    errors = parse.errors
    repeated = [p for p in parse.cases if p.reference in stored]  # compared with the stored cases
    for p in repeated:
        parse.validate_case(p)
    if repeated and copier is not None:
        copier.wait()  # before using the connection again
    new_cases, unchanged_rows = _compare_with_stored(session, op, principal, parse.cases, stored, errors)
    if errors or copier is None:
        parse.validate_all()
    seizures_created = 0
    created = len(new_cases)
    if not errors:
        if copier is not None:
            seizures_created = copier.rest(new_cases, parse, partial(_release, table, parse, new_cases))
        else:
            session.add(batch)
            session.flush()
            seizures_created = _write(session, principal, op, new_cases, batch.id)
    if errors:
        errors.sort(key=lambda e: (e.row or 0, e.field))
        n = len(errors)
        raise InvalidInput(
            errors[:MAX_ERRORS], f"{n} problem{'s' if n != 1 else ''} found; nothing was imported"
        )
    return created, seizures_created, unchanged_rows


def _announce(session: Session, op: Operation, principal: Principal, batch_id: int, created: int) -> None:
    """Put the imported cases on the live feed, in the import's transaction (sharing/outbox.py).

    Up to :data:`FEED_CASE_EVENTS` new cases, one ``case.created`` event each, as for a case reported by
    form or API. A larger back-office load is announced by one ``import.completed`` event to the
    importing administration (counts only): tens of thousands of per-case events would hold the feed's
    subscribers and the import's commit for no situational gain; dashboards show the cases on reload.
    """
    if created == 0:
        return
    if created <= FEED_CASE_EVENTS:
        cases = session.scalars(
            select(Case)
            .where(Case.import_batch_id == batch_id)
            .order_by(Case.id)
            .options(selectinload(Case.seizures))
        ).all()
        for case in cases:
            outbox.emit_case(session, "case.created", case)
        return
    outbox.emit(
        session,
        "import.completed",
        operation_id=op.id,
        audience=Audience.ORGS,
        org_ids=[principal.org_id],
        payload={"operation": op.code, "import": {"batch_id": batch_id, "cases": created}},
    )


def _release(table: Table, parse: _Parse, new_cases: list[ParsedCase]) -> None:
    """Drop the parsed file (rows, validated cases and seizures: millions of small objects), once every
    row is sent: freeing them takes a few tenths of a second, which :meth:`_Copier.rest` spends while the
    server checks the last rows instead of after the import."""
    table.rows.clear()
    parse.cases.clear()
    parse.seizure = None
    new_cases.clear()


def _compare_with_stored(
    session: Session,
    op: Operation,
    principal: Principal,
    parsed: list[ParsedCase],
    stored: set[str],
    errors: list[FieldError],
) -> tuple[list[ParsedCase], int]:
    """Split the parsed cases into new ones and ones already stored with the same content (whose rows are
    counted as unchanged); a stored case with other content is an error."""
    existing = _existing_snapshots(
        session, op, principal, [p.reference for p in parsed if p.reference in stored]
    )
    new_cases: list[ParsedCase] = []
    unchanged_rows = 0
    for p in parsed:
        if p.reference in existing:
            if _same(existing[p.reference], p, op):
                unchanged_rows += len(p.rows)
            else:
                errors.append(
                    FieldError(
                        "case_reference",
                        "a case with this reference was already reported with different content; "
                        "send a correction instead of re-importing",
                        p.rows[0],
                        p.reference,
                    )
                )
        else:
            new_cases.append(p)
    return new_cases, unchanged_rows


def _count_new_references(table: Table, stored: set[str]) -> int:
    """How many cases the file would create: its distinct references not stored yet (an upper bound
    when the file has errors, which then imports nothing)."""
    index, errors = _normalise_header(table.header)
    i = index.get("case_reference")
    if errors or i is None:
        return 0
    refs = {cells[i].strip() for cells in table.rows if i < len(cells)}
    refs.discard("")
    return len(refs - stored)


_gc_lock = threading.Lock()
_gc_pausers = 0
_gc_was_enabled = False


@contextmanager
def _gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector while an import runs (it makes next to no reference cycles).

    An import allocates millions of small tracked objects (row tuples, pydantic models, dicts) that all
    stay alive until it ends; the collector would walk them again and again for nothing, which more than
    doubled the parse time. Reference counting still frees everything as usual. Nested or concurrent
    imports (threads of the web server) share the pause; the last to finish restores the collector.
    """
    global _gc_pausers, _gc_was_enabled
    with _gc_lock:
        if _gc_pausers == 0:
            _gc_was_enabled = gc.isenabled()
            gc.disable()
        _gc_pausers += 1
    try:
        yield
    finally:
        with _gc_lock:
            _gc_pausers -= 1
            if _gc_pausers == 0 and _gc_was_enabled:
                gc.enable()


_IMPORT_LOCK_SPACE = 740_251_002  # first key of the advisory locks that serialise imports (audit: ..001)


def _lock_imports(session: Session, op: Operation, principal: Principal) -> None:
    """PostgreSQL: one import at a time per operation and organisation, until the transaction ends.

    Without it, two uploads of the same file at the same moment both pass the SHA-256 and reference
    checks and the second fails on a unique constraint; with it the second waits, then sees the first.
    (SQLite has a single writer anyway.)
    """
    if session.get_bind().dialect.name == "postgresql":
        key = (op.id * 1_000_003 + (principal.org_id or 0)) % 2_147_483_647
        session.execute(
            text("SELECT pg_advisory_xact_lock(CAST(:space AS integer), CAST(:key AS integer))"),
            {"space": _IMPORT_LOCK_SPACE, "key": key},
        )


def _stored_references(session: Session, op: Operation, principal: Principal) -> set[str]:
    """The references of the cases this organisation already reported in ``op`` (one query)."""
    return set(
        session.scalars(
            select(Case.reference).where(
                Case.operation_id == op.id, Case.reporting_org_id == principal.org_id
            )
        ).all()
    )


def _existing_snapshots(
    session: Session, op: Operation, principal: Principal, refs: Iterable[str]
) -> dict[str, dict[str, Any]]:
    """Latest snapshots of this organisation's cases in ``op`` with these references."""
    refs = sorted(set(refs))
    out: dict[str, dict[str, Any]] = {}
    for i in range(0, len(refs), 500):
        chunk = refs[i : i + 500]
        rows = session.execute(
            select(Case.reference, CaseVersion.snapshot)
            .join(CaseVersion, (CaseVersion.case_id == Case.id) & (CaseVersion.version == Case.version))
            .where(
                Case.operation_id == op.id,
                Case.reporting_org_id == principal.org_id,
                Case.reference.in_(chunk),
            )
        ).all()
        out.update({ref: snap for ref, snap in rows})
    return out


def _snapshot_for(p: ParsedCase, op: Operation, status: CaseStatus) -> dict[str, Any]:
    """The snapshot :func:`service.snapshot_of` takes of the case these rows create (the reference;
    :func:`_snapshot` builds the same dict faster, and the tests hold them equal)."""
    values = _case_row(p, op)
    seizures = [seizure_values(s) for s in p.seizures]
    fake = _FakeCase(values, seizures, p.reference, status)
    return snapshot_of(fake)  # type: ignore[arg-type]


_CASE_FIELD_SET: set[str] = set(CASE_FIELDS)  # never changed


def _snapshot(
    p: ParsedCase,
    op: Operation,
    status: CaseStatus,
    seizure_json: Callable[[SeizureIn], dict[str, Any]],
    case_json: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """What :func:`_snapshot_for` returns, from pydantic's JSON-mode dumps (dates ISO, decimals ``str``);
    ``case_json`` is the case fields' dump when the caller already has it."""
    f = p.fields
    snap = dict(case_json) if case_json is not None else f.model_dump(mode="json", include=_CASE_FIELD_SET)
    snap["reference"] = p.reference
    snap["status"] = status.value
    snap["visibility"] = (f.visibility or op.default_visibility).value
    snap["transit_countries"] = ",".join(f.transit_countries)
    snap["seizures"] = [{"line_no": i, **seizure_json(s)} for i, s in enumerate(p.seizures, start=1)]
    return snap


def _seizure_json(s: SeizureIn) -> dict[str, Any]:
    return s.model_dump(mode="json")


def _same(snapshot: dict[str, Any], p: ParsedCase, op: Operation) -> bool:
    mine = _snapshot(p, op, CaseStatus(snapshot["status"]), _seizure_json)
    return {k: v for k, v in mine.items() if k != "status"} == {
        k: v for k, v in snapshot.items() if k != "status"
    }


class _FakeCase:
    """Duck-typed stand-in so that snapshots of parsed rows and stored cases are built by one function."""

    def __init__(self, values: dict[str, Any], seizures: list[dict[str, Any]], ref: str, status: CaseStatus):
        for k, v in values.items():
            setattr(self, k, v)
        self.reference = ref
        self.status = status
        self.seizures = [_Obj({"line_no": i, **s}) for i, s in enumerate(seizures, start=1)]


class _Obj:
    def __init__(self, d: dict[str, Any]) -> None:
        self.__dict__.update(d)


def _case_row(p: ParsedCase, op: Operation) -> dict[str, Any]:
    f = p.fields
    values = {name: getattr(f, name) for name in CASE_FIELDS}
    values["transit_countries"] = ",".join(f.transit_countries)
    values["visibility"] = f.visibility or op.default_visibility
    return values


def _new_case_values(
    session: Session, principal: Principal, op: Operation, batch_id: int, now: dt.datetime
) -> Callable[[ParsedCase], dict[str, Any]]:
    """The column values of a new case_report row, for a parsed case."""
    org = session.get_one(Organisation, principal.org_id)
    common = {
        "operation_id": op.id,
        "reporting_org_id": org.id,
        "status": CaseStatus.SUBMITTED,
        "version": 1,
        "reporting_country": org.country_code or "",
        "region_code": org.region_code,
        "created_by_id": principal.user_id,
        "submitted_at": now,
        "import_batch_id": batch_id,
        "created_at": now,
        "updated_at": now,
    }

    def values(p: ParsedCase) -> dict[str, Any]:
        return _case_row(p, op) | common | {"reference": p.reference}

    return values


class _Dumps:
    """Each distinct seizure dumped once: its column values and its snapshot (JSON-mode) form."""

    def __init__(self) -> None:
        self._done: dict[int, tuple[dict[str, Any], dict[str, Any]]] = {}

    def __call__(self, s: SeizureIn) -> tuple[dict[str, Any], dict[str, Any]]:
        d = self._done.get(id(s))
        if d is None:
            d = self._done[id(s)] = (seizure_values(s), s.model_dump(mode="json"))
        return d

    def json(self, s: SeizureIn) -> dict[str, Any]:
        return self(s)[1]


def _write(
    session: Session, principal: Principal, op: Operation, cases: list[ParsedCase], batch_id: int
) -> int:
    """Insert the cases, their seizures and their first versions with Core executemany (``INSERT ...
    RETURNING`` for the case ids); plain dicts, never ORM objects. Returns the number of seizures."""
    if not cases:
        return 0
    now = utcnow()
    case_values = _new_case_values(session, principal, op, batch_id, now)
    dump = _Dumps()
    connection = session.connection()
    ids: list[int] = []
    case_table = cast(SQLTable, Case.__table__)
    for i in range(0, len(cases), 5000):
        result = connection.execute(
            insert(case_table).returning(case_table.c.id, sort_by_parameter_order=True),
            [case_values(p) for p in cases[i : i + 5000]],
        )
        ids.extend(result.scalars().all())
    seizure_common = {"operation_id": op.id, "created_at": now, "updated_at": now}
    seizure_rows = [
        {"case_id": case_id, "line_no": line, **seizure_common, **dump(s)[0]}
        for case_id, p in zip(ids, cases, strict=True)
        for line, s in enumerate(p.seizures, start=1)
    ]
    version_rows = [
        {
            "case_id": case_id,
            "version": 1,
            "action": "import",
            "reason": "",
            "snapshot": _snapshot(p, op, CaseStatus.SUBMITTED, dump.json),
            "changed_by_id": principal.user_id,
            "changed_at": now,
        }
        for case_id, p in zip(ids, cases, strict=True)
    ]
    for i in range(0, len(seizure_rows), 10000):
        connection.execute(insert(cast(SQLTable, Seizure.__table__)), seizure_rows[i : i + 10000])
    for i in range(0, len(version_rows), 10000):
        connection.execute(insert(cast(SQLTable, CaseVersion.__table__)), version_rows[i : i + 10000])
    return len(seizure_rows)


class _Copier:
    """PostgreSQL with psycopg: ``COPY`` the rows in the session's transaction.

    The case rows are streamed while :func:`_parse` is still checking the file (ids drawn from the
    sequence beforehand), so that the server inserts them while Python parses; the seizures and the
    first versions follow once the whole file is known to be clean. PostgreSQL checks the foreign keys of
    a COPY's rows when it ends: that end runs in a background thread while Python validates the seizure
    cells, then builds the snapshots (:meth:`wait` joins it). The caller wraps it all in a savepoint: a
    problem found later rolls back what was sent.

    COPY's text format sends every value as text, so the rows are built from pydantic's JSON-mode dumps
    (dates ISO, decimals as ``str(Decimal)``), the very dicts the version snapshots are made of, and the
    timestamps are formatted once.
    """

    def __init__(self, session: Session, principal: Principal, op: Operation, stored: set[str]) -> None:
        self.session = session
        self.principal = principal
        self.op = op
        self.stored = stored
        self.now = utcnow()
        self.ids: dict[str, int] = {}
        self.case_json: dict[str, dict[str, Any]] = {}
        self._seizure_json: dict[int, dict[str, Any]] = {}  # id(SeizureIn) -> its JSON-mode dump
        self._ending: _Background | None = None

    @classmethod
    def for_session(
        cls, session: Session, principal: Principal, op: Operation, stored: set[str]
    ) -> _Copier | None:
        dialect = session.get_bind().dialect
        if dialect.name == "postgresql" and dialect.driver == "psycopg":
            return cls(session, principal, op, stored)
        return None

    def _raw(self) -> Any:
        return self.session.connection().connection.driver_connection

    @staticmethod
    def _copy(cur: Any, table: str, columns: list[str], *, csv: bool = False) -> Any:
        from psycopg import sql

        return cur.copy(
            sql.SQL("COPY {} ({}) FROM STDIN{}").format(
                sql.Identifier(table),
                sql.SQL(", ").join(map(sql.Identifier, columns)),
                sql.SQL(" (FORMAT csv, NULL '\\N')" if csv else ""),
            )
        )

    def seizure_json(self, s: SeizureIn) -> dict[str, Any]:
        d = self._seizure_json.get(id(s))
        if d is None:
            d = self._seizure_json[id(s)] = s.model_dump(mode="json")
        return d

    @staticmethod
    def _case_ids(cur: Any, n: int) -> list[int]:
        """``n`` new case ids drawn from the sequence."""
        from psycopg import sql

        # the sequence's name first: pg_get_serial_sequence() inside the select list would be
        # evaluated once per id (a catalog lookup each, ten times the cost of the nextval())
        cur.execute(
            sql.SQL("SELECT pg_get_serial_sequence({}, 'id')").format(sql.Literal(Case.__tablename__))
        )
        sequence = cur.fetchone()[0]
        cur.execute("SELECT nextval(%s::regclass) FROM generate_series(1, %s)", (sequence, n))
        return [r[0] for r in cur.fetchall()]

    def _tail(self, batch_id: int) -> dict[str, Any]:
        """The case_report columns an import sets alike on every new case, by column."""
        org = self.session.get_one(Organisation, self.principal.org_id)
        now = self.now.isoformat()
        return {
            "operation_id": self.op.id,
            "reporting_org_id": org.id,
            "status": CaseStatus.SUBMITTED.value,
            "version": 1,
            "reporting_country": org.country_code or "",
            "region_code": org.region_code,
            "created_by_id": self.principal.user_id,
            "submitted_at": now,
            "import_batch_id": batch_id,
            "created_at": now,
            "updated_at": now,
        }

    def columns(
        self, checking: columnar.Checking, batch_id: int, release: Callable[[], None] | None
    ) -> int | None:
        """COPY a file whose case columns :func:`columnar.check_cases` found clean: its cases, then,
        once :meth:`columnar.Checking.seizures` finds the seizure cells clean too, the seizures and the
        first versions. Each table goes as one CSV written by Polars (values as pydantic dumped them,
        text quoted, ``\\N`` for null), sent and ended in the background: the server inserts the cases
        while Python checks the seizure cells, and the seizures while Polars writes the snapshots.
        ``release`` is called once every row is sent. Returns the number of seizures, or None when a
        seizure cell is not clean: then the cases were sent, and the caller rolls them back."""
        import polars as pl

        op = self.op
        now = self.now.isoformat()
        tail = self._tail(batch_id)
        seizure_fields = list(columnar.SEIZURE_FIELDS)
        with self._raw().cursor() as cur:
            ids = pl.Series("id", self._case_ids(cur, checking.cases.height), dtype=pl.Int64)
        cases = checking.cases.with_columns(ids)
        case_rows = cases.select(
            "id",
            *columnar.CASE_JSON_FIELDS,
            "reference",
            *(pl.lit(v).alias(k) for k, v in tail.items()),
            "transit_countries",
            "visibility",
        )
        self._send_in_background(Case.__tablename__, case_rows.columns, self._csv(case_rows))
        del case_rows
        checked = checking.seizures()
        if checked is None:
            return None
        seizures = checked.with_columns(
            case_id=pl.col("reference").replace_strict(cases["reference"], ids),
            operation_id=pl.lit(op.id),
            created_at=pl.lit(now),
            updated_at=pl.lit(now),
        )
        seizure_rows = seizures.select(
            "case_id",
            "line_no",
            "operation_id",
            "created_at",
            "updated_at",
            *seizure_fields,
            "commodity_group",
        )
        n = seizure_rows.height
        seizure_csv = self._csv(seizure_rows)
        self.wait()
        self._send_in_background(Seizure.__tablename__, seizure_rows.columns, seizure_csv)
        del seizure_rows, seizure_csv
        # the snapshot of each case, as service.snapshot_of takes it (key order included)
        lines = seizures.group_by("reference", maintain_order=True).agg(
            seizures=pl.struct("line_no", *seizure_fields)
        )
        versions = cases.join(lines, on="reference", how="left", maintain_order="left").select(
            case_id="id",
            version=pl.lit(1),
            action=pl.lit("import"),
            reason=pl.lit(""),
            snapshot=pl.struct(
                *columnar.CASE_JSON_FIELDS,
                "reference",
                status=pl.lit(CaseStatus.SUBMITTED.value),
                visibility="visibility",
                transit_countries="transit_countries",
                seizures="seizures",
            ).struct.json_encode(),
            changed_by_id=pl.lit(self.principal.user_id, dtype=pl.Int64),
            changed_at=pl.lit(now),
        )
        del cases, seizures, lines
        version_csv = self._csv(versions)
        self.wait()
        self._send_in_background(CaseVersion.__tablename__, versions.columns, version_csv)
        del versions, version_csv
        if release is not None:
            release()
        self.wait()
        return n

    def _send_in_background(self, table: str, columns: list[str], data: bytes) -> None:
        """COPY ``data`` (CSV) into ``table`` in a thread, :meth:`wait` joins it; nothing else may use
        the connection meanwhile."""

        def send() -> None:
            with self._raw().cursor() as cur, self._copy(cur, table, columns, csv=True) as cp:
                cp.write(data)

        self._ending = _Background(send)

    @staticmethod
    def _csv(frame: Any) -> bytes:
        """``frame`` as the CSV that ``COPY ... (FORMAT csv, NULL '\\N')`` reads: text always quoted (so
        that a text ``\\N`` stays text), null as an unquoted ``\\N``."""
        buf = io.BytesIO()
        frame.write_csv(buf, include_header=False, null_value="\\N", quote_style="non_numeric")
        return buf.getvalue()

    @contextmanager
    def cases(self, batch_id: int, n: int) -> Iterator[Callable[[ParsedCase], None]]:
        """COPY of the case rows, open while the body runs: the callback sends one new case."""
        import psycopg

        op = self.op
        default_visibility = op.default_visibility
        # everything the callback needs, read now: nothing may query the database while the COPY is open
        _ = (op.id, op.starts_on, op.ends_on)
        common = self._tail(batch_id)
        tail_columns = ["reference", *common, "transit_countries", "visibility"]
        tail = tuple(common.values())
        raw = self._raw()
        with ExitStack() as stack:  # on an error, closed here: the COPY is abandoned
            try:
                cur = stack.enter_context(raw.cursor())
                free = iter(self._case_ids(cur, n))
                cp: Any = None
                ids, stored, case_json = self.ids, self.stored, self.case_json

                def send(p: ParsedCase) -> None:
                    nonlocal cp
                    if p.reference in stored:
                        return  # compared with the stored case afterwards
                    f = p.fields
                    cj = case_json[p.reference] = f.model_dump(mode="json", include=_CASE_FIELD_SET)
                    if cp is None:
                        columns = ["id", *cj, *tail_columns]
                        cp = stack.enter_context(self._copy(cur, Case.__tablename__, columns))
                    case_id = ids[p.reference] = next(free)
                    visibility = (f.visibility or default_visibility).value
                    transit = ",".join(f.transit_countries)
                    cp.write_row((case_id, *cj.values(), p.reference, *tail, transit, visibility))

                yield send
            except psycopg.errors.IntegrityError as e:
                raise IntegrityError("COPY case_report", None, e) from e
            # the server checks the foreign keys of all the rows when the COPY ends: let it do that
            # while Python goes on (see wait)
            self._end_in_background(stack)

    def _end_in_background(self, stack: ExitStack) -> None:
        self._ending = _Background(stack.pop_all().close)

    def wait(self, *, quiet: bool = False) -> None:
        """Wait until the COPY ended in the background is done (re-raising its error unless ``quiet``).
        Nothing else may use the connection meanwhile (it would wait for psycopg's lock anyway)."""
        import psycopg

        ending, self._ending = self._ending, None
        if ending is None:
            return
        try:
            ending.wait()
        except psycopg.errors.IntegrityError as e:
            if not quiet:
                raise IntegrityError("COPY", None, e) from e
        except BaseException:
            if not quiet:
                raise

    def rest(self, cases: list[ParsedCase], parse: _Parse, release: Callable[[], None] | None = None) -> int:
        """COPY the seizures and first versions of the new cases (all sent by :meth:`cases`), once their
        seizure cells are validated (while the server ends the COPY of the cases). Returns the number of
        seizures, or 0 when a cell is wrong: then nothing more is sent, every row is still validated so
        that the problems are all in ``parse.errors``, and the caller refuses the file (rolls back).
        ``release`` is called once every row is sent, while the server still inserts and checks the
        versions: it frees what the caller no longer needs (:func:`_release`); this copier drops its own
        caches then too."""
        import psycopg
        from pydantic_core import to_json

        if not cases:
            self.wait()
            return 0
        if len(cases) != len(self.ids):  # every new case was sent, and only those
            raise RuntimeError(f"{len(self.ids)} cases sent for {len(cases)} new cases")
        clean = True
        for p in cases:
            clean = parse.validate_case(p) and clean
        self.wait()
        if not clean:
            return 0
        op, user_id, seizure_json = self.op, self.principal.user_id, self.seizure_json
        now = self.now.isoformat()
        group = {code: c.group for code, c in get_reference().commodities.items()}  # as seizure_values()
        head = ("case_id", "line_no", "operation_id", "created_at", "updated_at")
        seizure_columns = [*head, *SeizureIn.model_fields, "commodity_group"]
        version_columns = [
            "case_id",
            "version",
            "action",
            "reason",
            "snapshot",
            "changed_by_id",
            "changed_at",
        ]
        ids = self.ids
        n = 0
        try:
            with ExitStack() as stack:
                cur = stack.enter_context(self._raw().cursor())
                cp = stack.enter_context(self._copy(cur, Seizure.__tablename__, seizure_columns))
                for p in cases:
                    case_id = ids[p.reference]
                    for line, s in enumerate(p.seizures, start=1):
                        sj = seizure_json(s)
                        cp.write_row((case_id, line, op.id, now, now, *sj.values(), group[s.commodity_code]))
                        n += 1
                self._end_in_background(stack)
            # the snapshots, while the server checks the seizures
            versions = [
                (
                    ids[p.reference],
                    1,
                    "import",
                    "",
                    to_json(
                        _snapshot(p, op, CaseStatus.SUBMITTED, seizure_json, self.case_json[p.reference])
                    ).decode(),
                    user_id,
                    now,
                )
                for p in cases
            ]
            self.wait()
            with ExitStack() as stack:
                cur = stack.enter_context(self._raw().cursor())
                cp = stack.enter_context(self._copy(cur, CaseVersion.__tablename__, version_columns))
                for v in versions:
                    cp.write_row(v)
                self._end_in_background(stack)
            # every row is sent: free the parsed file and this copier's dumps while the server works
            versions.clear()
            self._seizure_json.clear()
            self.case_json.clear()
            ids.clear()
            if release is not None:
                release()
            self.wait()
        except psycopg.errors.IntegrityError as e:
            raise IntegrityError("COPY", None, e) from e
        return n


class _Background:
    """One call run in a thread; :meth:`wait` joins it and re-raises what it raised."""

    def __init__(self, fn: Callable[[], Any]) -> None:
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, args=(fn,), name="stopnet-import-copy", daemon=True)
        self.thread.start()

    def _run(self, fn: Callable[[], Any]) -> None:
        try:
            fn()
        except BaseException as e:  # handed to wait()
            self.error = e

    def wait(self) -> None:
        self.thread.join()
        if self.error is not None:
            raise self.error
