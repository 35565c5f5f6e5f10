"""Advance data on e-commerce consignments and import declarations: schemas and readers.

Two record types are described here.

*Consignment* (:data:`CONSIGNMENT_SCHEMA`): one postal item or one express / air-cargo manifest line,
as received before arrival (advance electronic data, ITMATT / CN23 / PLACI / express manifests).
Parties are **pseudonymised**: ``sender_id`` and ``consignee_id`` are HMAC-SHA256 digests computed with
a key held by the administration (see :func:`pseudonymise`); raw names never enter this package.

*Import declaration* (:data:`IMPORT_DECLARATION_SCHEMA`): one line of a formal import declaration, with
the same fields as the public KCS (Korea Customs Service) synthetic dataset, in snake_case.

Readers (:func:`read_consignments`, :func:`read_import_declarations`) accept CSV and Parquet, coerce the
columns to the documented types and raise :class:`ConsignmentSchemaError` naming the column and the
reason when the input does not fit.
"""

from __future__ import annotations

import datetime as dt
import hmac
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl

__all__ = [
    "CHANNELS",
    "CONSIGNMENT_COLUMNS",
    "CONSIGNMENT_LABEL_SCHEMA",
    "CONSIGNMENT_SCHEMA",
    "IMPORT_DECLARATION_COLUMNS",
    "IMPORT_DECLARATION_SCHEMA",
    "ColumnDoc",
    "ConsignmentSchemaError",
    "coerce_consignments",
    "consignment_frame",
    "consignment_from_dict",
    "consignment_row",
    "file_format",
    "pseudonymise",
    "pseudonymise_series",
    "read_consignments",
    "read_import_declarations",
    "schema_markdown",
]

#: Transport channels of a consignment (the `channels` code list of stopnet.reference).
CHANNELS: tuple[str, ...] = (
    "POSTAL",
    "EXPRESS",
    "AIR_CARGO",
    "SEA_CARGO",
    "ROAD_CARGO",
    "RAIL_CARGO",
    "PASSENGER",
    "OTHER",
)


@dataclass(frozen=True)
class ColumnDoc:
    """Documentation of one column: name, polars type, whether it may be null, meaning."""

    name: str
    dtype: pl.DataType
    nullable: bool
    description: str


_CONSIGNMENT_DOCS: tuple[ColumnDoc, ...] = (
    ColumnDoc("consignment_id", pl.String(), False, "Unique id of the postal item / manifest line."),
    ColumnDoc("declared_at", pl.Datetime("us"), False, "When the advance data was lodged (UTC)."),
    ColumnDoc("arrival_date", pl.Date(), True, "Expected (or actual) arrival date at the office."),
    ColumnDoc("channel", pl.String(), False, "Transport channel, one of " + ", ".join(CHANNELS) + "."),
    ColumnDoc("carrier", pl.String(), False, "Postal operator, express integrator or airline."),
    ColumnDoc("sender_id", pl.String(), False, "Pseudonymised sender (HMAC-SHA256, hex)."),
    ColumnDoc("consignee_id", pl.String(), False, "Pseudonymised consignee (HMAC-SHA256, hex)."),
    ColumnDoc("origin_country", pl.String(), False, "Country of origin of the goods, ISO 3166-1 alpha-2."),
    ColumnDoc("departure_country", pl.String(), False, "Country of dispatch / last departure, ISO-2."),
    ColumnDoc("destination_country", pl.String(), False, "Country of destination, ISO-2."),
    ColumnDoc("office", pl.String(), False, "Customs office of entry (code)."),
    ColumnDoc("description", pl.String(), False, "Declared goods description (free text)."),
    ColumnDoc("hs_code", pl.String(), False, "Declared HS code, 2 to 10 digits, kept as text."),
    ColumnDoc("declared_value", pl.Float64(), False, "Declared value in `currency`."),
    ColumnDoc("currency", pl.String(), False, "ISO 4217 currency code of the declared value."),
    ColumnDoc("weight_kg", pl.Float64(), False, "Gross weight in kilograms."),
    ColumnDoc("quantity", pl.Int64(), False, "Number of items."),
    ColumnDoc("marketplace", pl.String(), True, "Online marketplace the goods were bought on, if known."),
)

_LABEL_DOCS: tuple[ColumnDoc, ...] = (
    ColumnDoc("inspected", pl.Boolean(), True, "Whether customs inspected the consignment."),
    ColumnDoc("seized", pl.Boolean(), True, "Whether goods were detained/seized (meaningful if inspected)."),
    ColumnDoc(
        "commodity_code",
        pl.String(),
        True,
        "stopnet taxonomy code of what was seized (e.g. MED-WEIGHT, IPR-FOOT, OTH-COSM).",
    ),
)

#: Column name -> polars type of the advance-data fields (all required columns).
CONSIGNMENT_SCHEMA: dict[str, pl.DataType] = {d.name: d.dtype for d in _CONSIGNMENT_DOCS}
#: Optional label columns (inspection results).
CONSIGNMENT_LABEL_SCHEMA: dict[str, pl.DataType] = {d.name: d.dtype for d in _LABEL_DOCS}
#: Documentation of every consignment column, in order (advance data then labels).
CONSIGNMENT_COLUMNS: tuple[ColumnDoc, ...] = _CONSIGNMENT_DOCS + _LABEL_DOCS

_IMPORT_DOCS: tuple[ColumnDoc, ...] = (
    ColumnDoc("declaration_id", pl.String(), False, "Declaration (line) id."),
    ColumnDoc("date", pl.Date(), False, "Acceptance date of the declaration."),
    ColumnDoc("office_id", pl.String(), False, "Customs office."),
    ColumnDoc("process_type", pl.String(), True, "Processing type (e.g. pre-arrival, on-arrival)."),
    ColumnDoc("import_type", pl.String(), True, "Import type code."),
    ColumnDoc("import_use", pl.String(), True, "Intended use code."),
    ColumnDoc("payment_type", pl.String(), True, "Duty payment type."),
    ColumnDoc("mode_of_transport", pl.String(), True, "Mode of transport code."),
    ColumnDoc("declarant_id", pl.String(), False, "Pseudonymised declarant (customs broker)."),
    ColumnDoc("importer_id", pl.String(), False, "Pseudonymised importer."),
    ColumnDoc("seller_id", pl.String(), True, "Pseudonymised overseas seller."),
    ColumnDoc("courier_id", pl.String(), True, "Pseudonymised courier / express operator."),
    ColumnDoc("hs_code", pl.String(), False, "HS10 code, kept as text."),
    ColumnDoc("departure_country", pl.String(), True, "Country of departure, ISO-2."),
    ColumnDoc("origin_country", pl.String(), True, "Country of origin, ISO-2."),
    ColumnDoc("tax_rate", pl.Float64(), True, "Applied duty rate (percent)."),
    ColumnDoc("tax_type", pl.String(), True, "Tax / preference type code."),
    ColumnDoc("origin_indicator", pl.String(), True, "Country-of-origin marking indicator."),
    ColumnDoc("net_mass", pl.Float64(), True, "Net mass in kg."),
    ColumnDoc("item_price", pl.Float64(), True, "Declared item price."),
    ColumnDoc("fraud", pl.Int8(), True, "Label: 1 if the declaration was found fraudulent, else 0."),
    ColumnDoc("critical_fraud", pl.Int8(), True, "Label: 1 for critical fraud (e.g. IPR / safety), else 0."),
)

#: Column name -> polars type of an import declaration line (KCS-like).
IMPORT_DECLARATION_SCHEMA: dict[str, pl.DataType] = {d.name: d.dtype for d in _IMPORT_DOCS}
IMPORT_DECLARATION_COLUMNS: tuple[ColumnDoc, ...] = _IMPORT_DOCS
_IMPORT_LABELS = ("fraud", "critical_fraud")


class ConsignmentSchemaError(ValueError):
    """Input does not match the documented schema; ``column`` names the offending column."""

    def __init__(self, column: str | None, reason: str) -> None:
        self.column = column
        self.reason = reason
        where = f"column {column!r}: " if column else ""
        super().__init__(f"{where}{reason}")


def pseudonymise(value: str, key: bytes, length: int = 16) -> str:
    """HMAC-SHA256 pseudonym of ``value`` under ``key``, as ``length`` hex characters (default 64 bits).

    The same key gives the same pseudonym across files, so links between consignments survive while
    names do not. The key must be kept secret by the administration; without it the pseudonym cannot be
    recomputed from a guessed name.
    """
    if not key:
        raise ValueError("a non-empty HMAC key is required for pseudonymisation")
    if not 8 <= length <= 64:
        raise ValueError("length must be between 8 and 64 hex characters")
    return hmac.digest(key, value.strip().casefold().encode("utf-8"), "sha256").hex()[:length]


def pseudonymise_series(values: pl.Series | Iterable[str], key: bytes, length: int = 16) -> pl.Series:
    """Pseudonymise many names; each distinct value is hashed once."""
    series = values if isinstance(values, pl.Series) else pl.Series(list(values), dtype=pl.String)
    uniques = series.unique().drop_nulls()
    mapping = {v: pseudonymise(v, key, length) for v in uniques.to_list()}
    return series.replace_strict(mapping, default=None, return_dtype=pl.String)


def file_format(path: str | Path) -> str:
    """``"parquet"`` or ``"csv"`` from the file suffix; anything else is an error."""
    suffix = Path(path).suffix.lower()
    if suffix in (".parquet", ".pq"):
        return "parquet"
    if suffix in (".csv", ".txt"):
        return "csv"
    raise ConsignmentSchemaError(None, f"unsupported file type {suffix or '(none)'!r}: use .parquet or .csv")


def _cast_column(frame: pl.DataFrame, name: str, dtype: pl.DataType) -> pl.Series:
    col = frame.get_column(name)
    if col.dtype == dtype:
        return col
    if col.dtype == pl.Null:
        return col.cast(dtype)
    try:
        if dtype == pl.Datetime("us"):
            if col.dtype == pl.String:
                return col.str.to_datetime(time_unit="us", strict=True).dt.replace_time_zone(None)
            if isinstance(col.dtype, pl.Datetime):
                out = col.dt.cast_time_unit("us")
                if getattr(out.dtype, "time_zone", None):
                    return out.dt.convert_time_zone("UTC").dt.replace_time_zone(None)
                return out
            if col.dtype == pl.Date:
                return col.cast(pl.Datetime("us"))
        elif dtype == pl.Date:
            if col.dtype == pl.String:
                return col.str.to_date(strict=True)
            if isinstance(col.dtype, pl.Datetime):
                return col.dt.date()
        elif dtype == pl.Boolean:
            if col.dtype == pl.String:
                lowered = col.str.strip_chars().str.to_lowercase()
                mapping = {
                    "true": True,
                    "1": True,
                    "yes": True,
                    "false": False,
                    "0": False,
                    "no": False,
                    "": None,
                }
                bad = lowered.filter(lowered.is_not_null() & ~lowered.is_in(list(mapping)))
                if len(bad):
                    raise ConsignmentSchemaError(name, f"expected a boolean, got {bad[0]!r}")
                return lowered.replace_strict(mapping, default=None, return_dtype=pl.Boolean)
            if col.dtype.is_integer():
                bad = col.filter(col.is_not_null() & ~col.is_in([0, 1]))
                if len(bad):
                    raise ConsignmentSchemaError(name, f"expected a boolean (0/1), got {bad[0]!r}")
                return col.cast(pl.Boolean)
        elif dtype == pl.String:
            if col.dtype.is_numeric() and name.endswith("hs_code"):
                raise ConsignmentSchemaError(
                    name, f"must be text (leading zeros matter), got {col.dtype}; store HS codes as strings"
                )
            if (
                col.dtype in (pl.Categorical, pl.Null)
                or isinstance(col.dtype, pl.Enum)
                or col.dtype.is_numeric()
            ):
                return col.cast(pl.String)
        elif dtype.is_numeric():
            if col.dtype.is_numeric() or col.dtype == pl.Null:
                return col.cast(dtype, strict=True)
            if col.dtype == pl.String:
                return col.str.strip_chars().cast(dtype, strict=True)
    except ConsignmentSchemaError:
        raise
    except (pl.exceptions.PolarsError, ValueError, TypeError) as exc:
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ConsignmentSchemaError(name, f"cannot convert {col.dtype} to {dtype}: {first_line}") from exc
    raise ConsignmentSchemaError(name, f"expected {dtype}, got {col.dtype}")


def _coerce(
    frame: pl.DataFrame,
    docs: Sequence[ColumnDoc],
    optional: Sequence[str],
    keep_extra: bool,
) -> pl.DataFrame:
    missing = [d.name for d in docs if d.name not in frame.columns and d.name not in optional]
    if missing:
        raise ConsignmentSchemaError(
            missing[0],
            f"required column is missing (missing: {', '.join(missing)}; have: {', '.join(frame.columns)})",
        )
    out: list[pl.Series] = []
    for doc in docs:
        if doc.name not in frame.columns:
            continue
        series = _cast_column(frame, doc.name, doc.dtype).alias(doc.name)
        if not doc.nullable:
            nulls = series.null_count()
            if nulls:
                raise ConsignmentSchemaError(doc.name, f"{nulls} missing value(s) in a required column")
        out.append(series)
    known = {d.name for d in docs}
    extra = [frame.get_column(c) for c in frame.columns if c not in known] if keep_extra else []
    return pl.DataFrame(out + extra)


def _check_consignment_values(frame: pl.DataFrame) -> None:
    # text checks run on the distinct values (codes repeat a lot), numeric checks on every row
    text_checks: list[tuple[str, pl.Expr, str]] = [
        ("channel", ~pl.col("channel").is_in(list(CHANNELS)), "unknown channel"),
        ("origin_country", ~pl.col("origin_country").str.contains(r"^[A-Z]{2}$"), "not an ISO-2 code"),
        ("departure_country", ~pl.col("departure_country").str.contains(r"^[A-Z]{2}$"), "not an ISO-2 code"),
        (
            "destination_country",
            ~pl.col("destination_country").str.contains(r"^[A-Z]{2}$"),
            "not an ISO-2 code",
        ),
        ("currency", ~pl.col("currency").str.contains(r"^[A-Z]{3}$"), "not an ISO 4217 code"),
        ("hs_code", ~pl.col("hs_code").str.contains(r"^[0-9]{2,10}$"), "HS code must be 2-10 digits"),
    ]
    for column, bad_expr, why in text_checks:
        if column not in frame.columns:
            continue
        distinct = frame.select(pl.col(column).unique().drop_nulls())
        bad = distinct.filter(bad_expr)
        if bad.height:
            first = bad.get_column(column).sort()[0]
            count = int(frame.select(pl.col(column).is_in(bad.get_column(column).implode()).sum()).item())
            raise ConsignmentSchemaError(column, f"{why}: {first!r} ({count} row(s))")
    num_checks: list[tuple[str, pl.Expr, str]] = [
        ("declared_value", pl.col("declared_value") < 0, "negative value"),
        ("weight_kg", pl.col("weight_kg") < 0, "negative weight"),
        ("quantity", pl.col("quantity") < 0, "negative quantity"),
    ]
    present = [c for c in num_checks if c[0] in frame.columns]
    if not present:
        return
    flags = frame.select([expr.fill_null(False).alias(f"_bad_{i}") for i, (_, expr, _) in enumerate(present)])
    counts = flags.sum().row(0)
    for i, (column, _, why) in enumerate(present):
        if counts[i]:
            first = frame.get_column(column).filter(flags.get_column(f"_bad_{i}"))[0]
            raise ConsignmentSchemaError(column, f"{why}: {first!r} ({counts[i]} row(s))")


def coerce_consignments(
    frame: pl.DataFrame,
    *,
    require_labels: bool = False,
    keep_extra: bool = True,
    check_values: bool = True,
    required: Sequence[str] | None = None,
) -> pl.DataFrame:
    """Validate a consignment frame and cast it to :data:`CONSIGNMENT_SCHEMA` (labels optional).

    Columns come out in schema order followed by label columns and, with ``keep_extra``, any other
    column unchanged. ``required`` overrides which schema columns must be present (default: every
    non-nullable one; ``()`` validates whatever subset is there). Raises
    :class:`ConsignmentSchemaError` naming the first offending column.
    """
    if required is None:
        optional = [] if require_labels else list(CONSIGNMENT_LABEL_SCHEMA)
        optional += ["marketplace", "arrival_date"]
    else:
        optional = [d.name for d in CONSIGNMENT_COLUMNS if d.name not in required]
    out = _coerce(frame, CONSIGNMENT_COLUMNS, optional, keep_extra)
    if check_values:
        _check_consignment_values(out)
    return out


_ISO2 = re.compile(r"^[A-Z]{2}$")
_ISO3 = re.compile(r"^[A-Z]{3}$")
_HS = re.compile(r"^[0-9]{2,10}$")


def _python_value(name: str, value: Any, dtype: pl.DataType) -> Any:
    """Convert one JSON-like value to the Python type of ``dtype`` or raise ConsignmentSchemaError."""
    if value is None:
        return None
    try:
        if dtype == pl.Datetime("us"):
            if isinstance(value, dt.datetime):
                out = value
            elif isinstance(value, dt.date):
                out = dt.datetime(value.year, value.month, value.day)
            else:
                out = dt.datetime.fromisoformat(str(value).replace("Z", "+00:00"))
            if out.tzinfo is not None:
                out = out.astimezone(dt.UTC).replace(tzinfo=None)
            return out
        if dtype == pl.Date:
            if isinstance(value, dt.datetime):
                return value.date()
            if isinstance(value, dt.date):
                return value
            return dt.date.fromisoformat(str(value))
        if dtype == pl.Boolean:
            if isinstance(value, bool):
                return value
            text = str(value).strip().lower()
            if text in ("true", "1", "yes"):
                return True
            if text in ("false", "0", "no"):
                return False
            raise ValueError(f"expected a boolean, got {value!r}")
        if dtype == pl.Float64:
            if isinstance(value, bool):
                raise ValueError("expected a number, got a boolean")
            out_f = float(value)
            if out_f != out_f or out_f in (float("inf"), float("-inf")):
                raise ValueError("expected a finite number")
            return out_f
        if dtype.is_integer():
            if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
                raise ValueError(f"expected a whole number, got {value!r}")
            return int(value)
        if name.endswith("hs_code") and not isinstance(value, str):
            raise ValueError("HS codes must be text (leading zeros matter)")
        return str(value)
    except (TypeError, ValueError) as exc:
        raise ConsignmentSchemaError(name, f"cannot convert {value!r} to {dtype}: {exc}") from exc


def consignment_from_dict(record: Mapping[str, Any], *, check_values: bool = True) -> pl.DataFrame:
    """Validate ONE consignment given as a dict (API payload) and return it as a 1-row frame.

    Same rules and messages as :func:`coerce_consignments`, checked in Python (fast for one row).
    """
    return consignment_frame(consignment_row(record, check_values=check_values))


def consignment_frame(row: Mapping[str, Any]) -> pl.DataFrame:
    """A validated consignment row (:func:`consignment_row`, or a subset of its columns) as a 1-row
    frame of the schema's types."""
    known = {**CONSIGNMENT_SCHEMA, **CONSIGNMENT_LABEL_SCHEMA}
    return pl.DataFrame([dict(row)], schema={name: known[name] for name in row}, orient="row")


def consignment_row(record: Mapping[str, Any], *, check_values: bool = True) -> dict[str, Any]:
    """:func:`consignment_from_dict`'s validated values as a plain dict (Python types of the schema)."""
    known = {d.name: d for d in CONSIGNMENT_COLUMNS}
    unknown = [k for k in record if k not in known]
    if unknown:
        raise ConsignmentSchemaError(unknown[0], "unknown field")
    row: dict[str, Any] = {}
    for doc in CONSIGNMENT_COLUMNS:
        if doc.name not in record:
            if not doc.nullable and doc.name in CONSIGNMENT_SCHEMA:
                raise ConsignmentSchemaError(doc.name, "required field is missing")
            if doc.name in CONSIGNMENT_LABEL_SCHEMA:
                continue
            row[doc.name] = None
            continue
        value = _python_value(doc.name, record[doc.name], doc.dtype)
        if value is None and not doc.nullable:
            raise ConsignmentSchemaError(doc.name, "missing value in a required field")
        row[doc.name] = value
    if check_values:
        checks: list[tuple[str, bool, str]] = [
            ("channel", row["channel"] in CHANNELS, "unknown channel"),
            ("origin_country", bool(_ISO2.match(row["origin_country"])), "not an ISO-2 code"),
            ("departure_country", bool(_ISO2.match(row["departure_country"])), "not an ISO-2 code"),
            ("destination_country", bool(_ISO2.match(row["destination_country"])), "not an ISO-2 code"),
            ("currency", bool(_ISO3.match(row["currency"])), "not an ISO 4217 code"),
            ("hs_code", bool(_HS.match(row["hs_code"])), "HS code must be 2-10 digits"),
            ("declared_value", row["declared_value"] >= 0, "negative value"),
            ("weight_kg", row["weight_kg"] >= 0, "negative weight"),
            ("quantity", row["quantity"] >= 0, "negative quantity"),
        ]
        for column, ok, why in checks:
            if not ok:
                raise ConsignmentSchemaError(column, f"{why}: {row[column]!r}")
    return row


def _csv_overrides(schema: Mapping[str, pl.DataType], header: Sequence[str]) -> dict[str, pl.DataType]:
    # Read everything that the schema knows as text first, so that HS codes keep leading zeros and
    # conversions are done (and reported) by the coercion step.
    return {name: pl.String() for name in header if name in schema}


def _read_frame(
    path: str | Path, schema: Mapping[str, pl.DataType], columns: Sequence[str] | None
) -> pl.DataFrame:
    fmt = file_format(path)
    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(f"no such file: {p}")
    if fmt == "parquet":
        return pl.read_parquet(p, columns=list(columns) if columns else None)
    header = pl.read_csv(p, n_rows=0).columns
    return pl.read_csv(
        p,
        schema_overrides=_csv_overrides(schema, header),
        columns=list(columns) if columns else None,
        infer_schema_length=10_000,
    )


def read_consignments(
    path: str | Path,
    *,
    require_labels: bool = False,
    columns: Sequence[str] | None = None,
    check_values: bool = True,
) -> pl.DataFrame:
    """Read consignments from CSV or Parquet and validate them against :data:`CONSIGNMENT_SCHEMA`.

    ``columns`` restricts what is read (all required columns must still be among them unless the
    caller only needs a subset, in which case pass ``check_values=False`` and a full list yourself).
    """
    frame = _read_frame(path, {**CONSIGNMENT_SCHEMA, **CONSIGNMENT_LABEL_SCHEMA}, columns)
    return coerce_consignments(frame, require_labels=require_labels, check_values=check_values)


def read_import_declarations(path: str | Path, *, require_labels: bool = False) -> pl.DataFrame:
    """Read KCS-like import declarations (CSV/Parquet) and cast them to :data:`IMPORT_DECLARATION_SCHEMA`."""
    frame = _read_frame(path, IMPORT_DECLARATION_SCHEMA, None)
    optional = [
        d.name for d in _IMPORT_DOCS if d.nullable and (not require_labels or d.name not in _IMPORT_LABELS)
    ]
    out = _coerce(frame, _IMPORT_DOCS, optional, keep_extra=True)
    if "hs_code" in out.columns:
        bad = out.filter(~pl.col("hs_code").str.contains(r"^[0-9]{2,10}$"))
        if bad.height:
            raise ConsignmentSchemaError("hs_code", f"HS code must be 2-10 digits: {bad['hs_code'][0]!r}")
    return out


def schema_markdown(columns: Sequence[ColumnDoc] = CONSIGNMENT_COLUMNS) -> str:
    """The schema as a markdown table (used for docs/risk.md)."""
    lines = ["| column | type | nullable | meaning |", "|---|---|---|---|"]
    for d in columns:
        dtype = "Datetime(us)" if isinstance(d.dtype, pl.Datetime) else str(d.dtype)
        lines.append(f"| `{d.name}` | {dtype} | {'yes' if d.nullable else 'no'} | {d.description} |")
    return "\n".join(lines)
