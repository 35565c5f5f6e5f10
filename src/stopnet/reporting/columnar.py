"""The bulk import's columnar check of a clean file (PostgreSQL's fast path).

The row path of :mod:`stopnet.reporting.importer` checks a file row by row with the pydantic schemas
and names every problem (row, field, why). Most files sent in bulk are clean, and for them the same
checks can run column by column: each field's own pydantic validator once per distinct cell value (a
column of 100,000 rows holds a few thousand distinct values, the quantities a few tens of thousands),
and the rules that span cells (the rows of a case agree, no row twice, pieces or weight, a currency
with a value, the date inside the operation) as Polars expressions over whole columns. The rows then
go to PostgreSQL as CSV written by Polars (:meth:`importer._Copier.columns`).

The check runs in two steps, so that the importer can send the cases while the seizures are checked:
:func:`check_cases` (the rows and the case columns), then :meth:`Checking.seizures`. They only decide *whether* a file is clean: None as soon as anything is not clean or not
simple (a ragged row, a NUL, a reference already stored, a cell a validator refuses), and the importer
runs the row path, which finds and names the problems as it always has. When it accepts a
file it stores what the row path would store: the values are pydantic's own JSON-mode dumps of the
validated cells, and ``tests/reporting/test_import_columnar.py`` holds the two paths equal.
"""

from __future__ import annotations

import csv
import datetime as dt
import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Annotated, Any

import polars as pl
from pydantic import ConfigDict, TypeAdapter, ValidationError

from stopnet.db.models import Operation
from stopnet.reference import get_reference

from .schemas import CaseRow, SeizureIn
from .service import CASE_FIELDS

# the case fields stored as they are dumped, in the order of the row path's dumps (model order)
CASE_JSON_FIELDS = tuple(f for f in CaseRow.model_fields if f in set(CASE_FIELDS))
SEIZURE_FIELDS = tuple(SeizureIn.model_fields)


@functools.cache
def _adapter(model: type[CaseRow] | type[SeizureIn], name: str) -> TypeAdapter[Any]:
    """The field's own validator and serializer: its type with its ``Field`` (constraints, validators)
    and the model's whitespace setting."""
    info = model.model_fields[name]
    field_type: Any = Annotated[info.annotation, info]
    return TypeAdapter(field_type, config=ConfigDict(str_strip_whitespace=True))


class _NotClean(Exception):
    """Something in the file is not clean (or not simple): the row path takes over."""


def rows_frame(rows: Sequence[Sequence[str]], width: int) -> pl.DataFrame | None:
    """Rows read by the importer as one text column per position; None if a row is not ``width`` cells
    (the row path pads or refuses it)."""
    if not rows or any(len(r) != width for r in rows):
        return None
    return pl.DataFrame(rows, orient="row", schema=[(f"c{i}", pl.String) for i in range(width)])


def read_csv(text: str, delimiter: str, max_rows: int) -> tuple[list[str], pl.DataFrame] | None:
    """The header and the data rows of a CSV text as :func:`rows_frame` gives them, read by Polars'
    reader if it reads this text exactly as the importer's reader (Python's ``csv``) does; else None.

    Polars' reading is taken only when writing its cells back with minimal quoting (the way Excel,
    LibreOffice and Python's ``csv`` write) gives back the very text: then the text is the standard
    encoding of those cells, which both readers read alike. Anything else (a blank line, a ragged row,
    quotes where none are needed, a lone carriage return, ...) leaves the file to Python's reader.
    """
    if "\r" in text.replace("\r\n", ""):
        return None  # a lone carriage return: a line end to Python, not to Polars
    ending = "\r\n" if "\r\n" in text else "\n"  # (a file of the other kind is refused below)
    body = text if text.endswith(ending) else text + ending
    try:
        cells = pl.read_csv(
            body.encode(), has_header=False, infer_schema=False, separator=delimiter, quote_char='"'
        )
    except pl.exceptions.PolarsError:
        return None
    if cells.height < 2 or cells.height - 1 > max_rows:
        return None
    again = cells.write_csv(
        include_header=False,
        null_value="",
        quote_style="necessary",
        separator=delimiter,
        line_terminator=ending,
    )
    if again != body:
        return None
    cells = cells.rename({c: f"c{i}" for i, c in enumerate(cells.columns)}).fill_null("")
    longest = cells.select(pl.all().str.len_chars().max()).row(0)
    if max(longest) > csv.field_size_limit():
        return None  # Python's reader refuses such a cell
    if _has_blank_row(cells):
        return None  # Python's reader skips such a row
    header = list(cells.row(0))
    return header, cells.slice(1)


def _has_blank_row(cells: pl.DataFrame) -> bool:
    """A row whose cells are all blank (by ``str.strip``, which the regex's class covers)."""
    joined = cells.select(pl.concat_str(pl.all())).to_series()
    maybe = joined.filter(joined.str.contains(r"^[\s\x1c-\x1f]*$")).unique().to_list()
    return any(not v.strip() for v in maybe)


@dataclass
class Checking:
    """A file whose case columns are clean; :meth:`seizures` checks the rest (so that the cases can be
    written meanwhile). ``cases`` has one row per case (file order of first rows): its ``reference``,
    the :data:`CASE_JSON_FIELDS`, ``transit_countries`` (codes joined by ","), ``visibility`` (the
    operation's default filled in). Every value is its JSON-mode dump (text, bool or null)."""

    cases: pl.DataFrame
    _frame: pl.DataFrame

    @property
    def rows(self) -> int:
        """The file's data rows."""
        return self._rows

    def __post_init__(self) -> None:
        self._rows = self._frame.height

    def seizures(self) -> pl.DataFrame | None:
        """One row per file row (file order) if every seizure cell is valid, else None: ``reference``,
        ``line_no`` (1, 2, ... within its case), the :data:`SEIZURE_FIELDS` and ``commodity_group``, as
        JSON-mode dumps (text, int or null)."""
        try:
            return _seizures(self._frame)
        except _NotClean:
            return None
        finally:
            self._frame = self._frame.clear()


def check_cases(
    header_index: dict[str, int],
    cells: pl.DataFrame,
    op: Operation,
    stored: set[str],
    *,
    max_cell: int,
    to_bool: Callable[[str], bool | str],
) -> Checking | None:
    """The file's cases if its rows and its case columns are clean, else None (see the module's doc).

    ``header_index`` maps the known columns to their positions (a header already found correct);
    ``cells`` are the data rows, one text column per position (:func:`rows_frame`, :func:`read_csv`);
    ``stored`` the references this organisation already reported in ``op``.
    """
    try:
        if cells.height == 0:
            raise _NotClean
        index = header_index
        frame = pl.DataFrame([_stripped(name, cells.to_series(i), max_cell) for name, i in index.items()])
        if frame.is_duplicated().any():  # a row repeated (after stripping) is an error in the file
            raise _NotClean
        refs = frame["case_reference"]
        if refs.str.len_bytes().min() == 0 or (stored and refs.is_in(list(stored)).any()):
            raise _NotClean  # a row without reference; or a case to compare with the stored one
        case_columns = [c for c in index if c == "case_reference" or c in CaseRow.model_fields]
        first = frame.select(case_columns).unique(maintain_order=True)
        if first.height != refs.n_unique():  # the rows of some case disagree on a case column
            raise _NotClean
        return Checking(_cases(first, op, to_bool), frame)
    except _NotClean:
        return None


def _stripped(name: str, raw: pl.Series, max_cell: int) -> pl.Series:
    """The column's cells stripped as the row path strips them (``str.strip``); too long a cell (even
    of blanks) or a NUL is not clean."""
    if raw.str.len_chars().max() > max_cell:  # type: ignore[operator]
        raise _NotClean
    distinct = raw.unique().to_list()
    stripped = [v.strip() for v in distinct]
    if any("\x00" in v for v in stripped):
        raise _NotClean
    if stripped == distinct:
        return raw.alias(name)
    return raw.replace_strict(distinct, stripped, return_dtype=pl.String).alias(name)


def _values(
    model: type[CaseRow] | type[SeizureIn],
    name: str,
    column: pl.Series | None,
    height: int,
    dtype: pl.DataType,
    *,
    prepare: Callable[[str], Any] | None = None,
    result: Callable[[Any, TypeAdapter[Any]], Any] | None = None,
) -> pl.Series:
    """Each cell validated by the field's validator, once per distinct cell, as its JSON-mode dump (or
    ``result(value, adapter)``, which raises :class:`_NotClean` for a value breaking a rule). A blank
    cell (or a missing column) takes the field's default, as the row path leaves blank cells out of
    what it validates; ``prepare`` turns a cell into the input the validator gets."""
    adapter = _adapter(model, name)
    info = model.model_fields[name]

    def value_of(cell: str) -> Any:
        if not cell:
            if info.is_required():
                raise _NotClean
            value = info.get_default(call_default_factory=True)
        else:
            try:
                value = adapter.validate_python(prepare(cell) if prepare is not None else cell)
            except ValidationError:
                raise _NotClean from None
        if result is not None:
            return result(value, adapter)
        return adapter.dump_python(value, mode="json")

    if column is None:
        return pl.repeat(value_of(""), height, dtype=dtype, eager=True).alias(name)
    distinct = column.unique().to_list()
    return column.replace_strict(distinct, [value_of(v) for v in distinct], return_dtype=dtype).alias(name)


def _cases(first: pl.DataFrame, op: Operation, to_bool: Callable[[str], bool | str]) -> pl.DataFrame:
    """One row per case: the case columns validated (``first`` holds each case's cells once)."""
    height = first.height

    def within_operation(day: dt.date, adapter: TypeAdapter[Any]) -> Any:
        if not (op.starts_on <= day <= op.ends_on):  # as service.operation_rule_errors
            raise _NotClean
        return adapter.dump_python(day, mode="json")

    def column(name: str) -> pl.Series | None:
        return first[name] if name in first.columns else None

    # the reference's own pattern and length (its dump is itself)
    out = [_values(CaseRow, "reference", first["case_reference"], height, pl.String())]
    for name in CASE_JSON_FIELDS:
        dtype = pl.Boolean() if name == "is_ecommerce" else pl.String()
        out.append(
            _values(
                CaseRow,
                name,
                column(name),
                height,
                dtype,
                prepare=to_bool if name == "is_ecommerce" else None,
                result=within_operation if name == "detected_on" else None,
            )
        )
    # the codes, validated as a list, joined by "," as the case row stores them
    out.append(
        _values(
            CaseRow,
            "transit_countries",
            column("transit_countries"),
            height,
            pl.String(),
            result=lambda codes, adapter: ",".join(adapter.dump_python(codes, mode="json")),
        )
    )
    visibility = _values(CaseRow, "visibility", column("visibility"), height, pl.String())
    out.append(visibility.fill_null(op.default_visibility.value))
    return pl.DataFrame(out)


def _seizures(frame: pl.DataFrame) -> pl.DataFrame:
    """One row per file row: the seizure columns validated, the model's own rule checked."""
    height = frame.height

    def column(name: str) -> pl.Series | None:
        return frame[name] if name in frame.columns else None

    dtypes: dict[str, pl.DataType] = {"pieces": pl.Int64()}
    out = [frame["case_reference"].alias("reference")]
    out += [
        _values(SeizureIn, name, column(name), height, dtypes.get(name, pl.String()))
        for name in SEIZURE_FIELDS
    ]
    seizures = pl.DataFrame(out)
    weight_zero = _values(
        SeizureIn, "weight_kg", column("weight_kg"), height, pl.Boolean(), result=lambda w, _: w == Decimal(0)
    )
    # SeizureIn._quantities: pieces or weight, and a currency with a value
    broken = ((seizures["pieces"] == 0) & weight_zero) | (
        seizures["value_amount"].is_not_null() & seizures["currency"].is_null()
    )
    if broken.any():
        raise _NotClean
    groups = {code: c.group for code, c in get_reference().commodities.items()}
    codes = seizures["commodity_code"].unique().to_list()
    return seizures.with_columns(
        line_no=pl.int_range(pl.len(), dtype=pl.Int64).over("reference") + 1,
        commodity_group=seizures["commodity_code"].replace_strict(
            codes, [groups[c] for c in codes], return_dtype=pl.String
        ),
    )
