"""Bulk import of seizures from CSV or XLSX.

One row is one seizure; rows sharing a ``case_reference`` form one case, and must agree on the case
columns. The import is all or nothing: every problem in the file is reported (row, field, why) and
nothing is written unless the whole file is clean. It is idempotent: the same file (by SHA-256) is
recognised, and cases already imported with identical content are counted as unchanged.
The column template is documented in docs/import-template.md and served at
``/api/v1/import-template.csv``.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError
from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from stopnet.access import policy
from stopnet.access.principal import Principal
from stopnet.audit.service import record
from stopnet.config import Settings
from stopnet.core.errors import FieldError, InvalidInput
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

from .schemas import CaseRow, ImportResult, SeizureIn
from .service import CASE_FIELDS, operation_rule_errors, seizure_values, snapshot_of

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
    "brand": "Ozempic",
    "rights_holder": "Novo Nordisk",
    "hs_code": "300490",
    "pieces": "120",
    "weight_kg": "3.2",
    "value_amount": "9000",
    "currency": "EUR",
    "infringement_type": "TRADEMARK",
    "nature": "FALSIFIED",
}
MAX_ERRORS = 1000
MAX_CELL = 10_000
XLSX_MAX_UNCOMPRESSED = 200 * 1024 * 1024
XLSX_MAX_RATIO = 200
TRUE = {"1", "true", "yes", "y", "t", "oui", "si", "x"}
FALSE = {"0", "false", "no", "n", "f", "non", ""}


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


def _bad(message: str, field_name: str = "file") -> InvalidInput:
    return InvalidInput([FieldError(field_name, message)], message)


def read_table(filename: str, data: bytes, max_rows: int) -> Table:
    if not data.strip():
        raise _bad("the file is empty")
    if data[:4] == b"PK\x03\x04" or filename.lower().endswith(".xlsx"):
        return _read_xlsx(data, max_rows)
    return _read_csv(data, max_rows)


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
    text = _decode(data)
    if "\x00" in text:
        raise _bad("the file contains NUL bytes: it is not a CSV text file")
    first = text.split("\n", 1)[0]
    delimiter = max((",", ";", "\t"), key=first.count)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
    try:
        header = next(reader)
    except StopIteration:
        raise _bad("the file is empty") from None
    except csv.Error as e:
        raise _bad(f"the header cannot be read as CSV: {e}") from e
    rows = []
    try:
        for row in reader:
            if not any(c.strip() for c in row):
                continue
            rows.append(row)
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
            bad = z.testzip()
            if bad is not None:
                raise _bad(f"the XLSX file is damaged ({bad})")
    except zipfile.BadZipFile as e:
        raise _bad("the file is neither CSV text nor a valid XLSX workbook") from e
    try:
        wb = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except Exception as e:  # openpyxl raises many kinds on damaged files
        raise _bad(f"the XLSX workbook cannot be read: {type(e).__name__}") from e
    try:
        ws = wb.worksheets[0]
        it = ws.iter_rows(values_only=True)
        try:
            header = [_cell(c) for c in next(it)]
        except StopIteration:
            raise _bad("the workbook's first sheet is empty") from None
        rows = []
        for values in it:
            row = [_cell(c) for c in values]
            if not any(c.strip() for c in row):
                continue
            rows.append(row)
            if len(rows) > max_rows:
                raise _bad(f"the file has more than {max_rows} data rows; split it")
    finally:
        wb.close()
    while header and not header[-1].strip():
        header.pop()
    return Table(header, rows)


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


def _normalise_header(header: list[str]) -> tuple[dict[str, int], list[FieldError]]:
    errors = []
    index: dict[str, int] = {}
    for i, name in enumerate(header):
        key = name.strip().lower().replace(" ", "_").replace("-", "_")
        if not key:
            continue
        if key not in COLUMNS:
            errors.append(FieldError(name, "unknown column (see the import template)", row=1))
        elif key in index:
            errors.append(FieldError(name, "column appears twice", row=1))
        else:
            index[key] = i
    for req in REQUIRED:
        if req not in index:
            errors.append(FieldError(req, "required column is missing", row=1))
    return index, errors


def _bool(value: str) -> bool | str:
    v = value.strip().lower()
    if v in TRUE:
        return True
    if v in FALSE:
        return False
    return value  # let validation say it is not a boolean


def _errors_from(e: ValidationError, row: int, raw: dict[str, str]) -> list[FieldError]:
    out = []
    for err in e.errors():
        loc = [str(p) for p in err["loc"] if not isinstance(p, int)]
        name = loc[0] if loc else "row"
        msg = err["msg"].removeprefix("Value error, ").removeprefix("Assertion failed, ")
        out.append(FieldError(name, msg, row, raw.get(name)))
    return out


def parse_rows(table: Table, op: Operation) -> tuple[list[ParsedCase], list[FieldError]]:
    index, errors = _normalise_header(table.header)
    if errors:
        return [], errors
    if not table.rows:
        return [], [FieldError("file", "the file has a header but no data rows")]
    cases: dict[str, ParsedCase] = {}
    seen_rows: dict[tuple[str, ...], int] = {}
    for n, cells in enumerate(table.rows, start=2):
        if len(errors) >= MAX_ERRORS:
            break
        if len(cells) > len(table.header) and any(c.strip() for c in cells[len(table.header) :]):
            errors.append(FieldError("row", f"{len(cells)} cells but the header has {len(table.header)}", n))
            continue
        raw = {k: (cells[i].strip() if i < len(cells) else "") for k, i in index.items()}
        too_long = [k for k, v in raw.items() if len(v) > MAX_CELL]
        if too_long:
            errors.extend(FieldError(k, f"cell longer than {MAX_CELL} characters", n) for k in too_long)
            continue
        full = tuple(raw.get(c, "") for c in COLUMNS)
        if full in seen_rows:
            errors.append(FieldError("row", f"duplicate of row {seen_rows[full]}", n))
            continue
        seen_rows[full] = n
        ref = raw["case_reference"]
        if not ref:
            errors.append(FieldError("case_reference", "required", n))
            continue
        try:
            seizure = SeizureIn.model_validate({k: raw[k] for k in SEIZURE_COLUMNS if raw.get(k, "") != ""})
        except ValidationError as e:
            errors.extend(_errors_from(e, n, raw))
            seizure = None
        case_key = tuple(raw.get(c, "") for c in CASE_COLUMNS)
        parsed = cases.get(ref)
        if parsed is None:
            case_fields = _case_fields(raw, n, errors, op)
            if case_fields is None:
                continue
            parsed = ParsedCase(ref, [], case_fields, case_key)
            cases[ref] = parsed
        elif case_key != parsed.raw_key:
            differing = [c for c, a, b in zip(CASE_COLUMNS, case_key, parsed.raw_key, strict=True) if a != b]
            errors.append(
                FieldError(
                    differing[0],
                    f"case {ref!r} has different case columns ({', '.join(differing)}) than on row "
                    f"{parsed.rows[0]}; a case's rows must agree",
                    n,
                    raw.get(differing[0]),
                )
            )
            continue
        parsed.rows.append(n)
        if seizure is not None:
            parsed.seizures.append(seizure)
    return list(cases.values()), errors


def _case_fields(raw: dict[str, str], n: int, errors: list[FieldError], op: Operation) -> CaseRow | None:
    values: dict[str, Any] = {
        k: raw[k] for k in CASE_COLUMNS if raw.get(k, "") != "" and k != "case_reference"
    }
    if "is_ecommerce" in values:
        values["is_ecommerce"] = _bool(values["is_ecommerce"])
    try:
        fields = CaseRow.model_validate({"reference": raw["case_reference"], **values})
    except ValidationError as e:
        errors.extend(
            x if x.field != "reference" else FieldError("case_reference", x.message, n, raw["case_reference"])
            for x in _errors_from(e, n, raw)
        )
        return None
    rule_errors = operation_rule_errors(op, fields, n)
    errors.extend(rule_errors)
    return None if rule_errors else fields


# --------------------------------------------------------------------------------------- import


def import_seizures(
    session: Session, principal: Principal, op: Operation, filename: str, data: bytes, settings: Settings
) -> ImportResult:
    """Validate the whole file, then write it in one go (the caller commits)."""
    policy.require_reporter(session, principal, op.id)
    if not principal.has_scope("import"):
        raise InvalidInput([FieldError("token", "this API token lacks the scope import")])
    if len(data) > settings.max_upload_bytes:
        raise _bad(f"the file is larger than the limit of {settings.max_upload_bytes} bytes")
    sha = hashlib.sha256(data).hexdigest()
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
    table = read_table(filename, data, settings.max_import_rows)
    parsed, errors = parse_rows(table, op)
    existing = _existing_snapshots(session, op, principal, [p.reference for p in parsed])
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
    if errors:
        errors.sort(key=lambda e: (e.row or 0, e.field))
        n = len(errors)
        raise InvalidInput(
            errors[:MAX_ERRORS], f"{n} problem{'s' if n != 1 else ''} found; nothing was imported"
        )
    batch = ImportBatch(
        operation_id=op.id,
        org_id=principal.org_id,
        filename=filename[:255],
        sha256=sha,
        row_count=len(table.rows),
        created_by_id=principal.user_id,
    )
    session.add(batch)
    session.flush()
    seizures_created = _write(session, principal, op, new_cases, batch.id)
    batch.cases_created = len(new_cases)
    batch.seizures_created = seizures_created
    batch.rows_unchanged = unchanged_rows
    record(
        session,
        principal,
        "import.seizures",
        "import_batch",
        batch.id,
        {"file": filename, "sha256": sha, "cases": len(new_cases), "seizures": seizures_created},
    )
    session.flush()
    return ImportResult(
        batch_id=batch.id,
        filename=filename,
        sha256=sha,
        rows=len(table.rows),
        cases_created=len(new_cases),
        seizures_created=seizures_created,
        rows_unchanged=unchanged_rows,
        already_imported=False,
    )


def _existing_snapshots(
    session: Session, op: Operation, principal: Principal, refs: Iterable[str]
) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    refs = list(refs)
    for i in range(0, len(refs), 1000):
        chunk = refs[i : i + 1000]
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
    values = _case_row(p, op)
    seizures = [seizure_values(s) for s in p.seizures]
    fake = _FakeCase(values, seizures, p.reference, status)
    return snapshot_of(fake)  # type: ignore[arg-type]


def _same(snapshot: dict[str, Any], p: ParsedCase, op: Operation) -> bool:
    mine = _snapshot_for(p, op, CaseStatus(snapshot["status"]))
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


def _write(
    session: Session, principal: Principal, op: Operation, cases: list[ParsedCase], batch_id: int
) -> int:
    if not cases:
        return 0
    org = session.get_one(Organisation, principal.org_id)
    now = utcnow()
    case_rows = []
    for p in cases:
        row = _case_row(p, op)
        row.update(
            operation_id=op.id,
            reporting_org_id=org.id,
            reference=p.reference,
            status=CaseStatus.SUBMITTED,
            version=1,
            reporting_country=org.country_code or "",
            region_code=org.region_code,
            created_by_id=principal.user_id,
            submitted_at=now,
            import_batch_id=batch_id,
            created_at=now,
            updated_at=now,
        )
        case_rows.append(row)
    ids: list[int] = []
    for i in range(0, len(case_rows), 5000):
        result = session.execute(
            insert(Case).returning(Case.id, sort_by_parameter_order=True), case_rows[i : i + 5000]
        )
        ids.extend(result.scalars().all())
    seizure_rows = []
    version_rows = []
    for case_id, p in zip(ids, cases, strict=True):
        for line, s in enumerate(p.seizures, start=1):
            seizure_rows.append(
                {
                    "case_id": case_id,
                    "operation_id": op.id,
                    "line_no": line,
                    "created_at": now,
                    "updated_at": now,
                    **seizure_values(s),
                }
            )
        version_rows.append(
            {
                "case_id": case_id,
                "version": 1,
                "action": "import",
                "reason": "",
                "snapshot": _snapshot_for(p, op, CaseStatus.SUBMITTED),
                "changed_by_id": principal.user_id,
                "changed_at": now,
            }
        )
    for i in range(0, len(seizure_rows), 10000):
        session.execute(insert(Seizure), seizure_rows[i : i + 10000])
    for i in range(0, len(version_rows), 10000):
        session.execute(insert(CaseVersion), version_rows[i : i + 10000])
    return len(seizure_rows)
