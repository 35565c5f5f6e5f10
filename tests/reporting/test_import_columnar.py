"""The bulk import's columnar check (reporting/columnar.py) against the row path it stands in for.

The columnar check may decline any file (the row path then runs), but a file it accepts must be one the
row path accepts, and what it stores must be what the row path stores. The first two properties need
no database: the row path's parse is compared with the columnar result directly, on generated files
full of mistakes. The last ones import through PostgreSQL, which is where the columnar path runs.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from contextlib import suppress
from dataclasses import dataclass
from typing import Any

import polars as pl
import pytest
from hypothesis import event, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st
from hypothesis.errors import InvalidArgument
from sqlalchemy import select

from stopnet.core.errors import InvalidInput
from stopnet.db.models import Case, CaseVersion, Operation, Seizure, Visibility
from stopnet.reference import get_reference
from stopnet.reporting import columnar, importer
from stopnet.reporting.importer import COLUMNS, ImportResult

from .test_import_fuzz import FUZZ, VALUES, good_row, import_direct, mangled_csv, tables, to_csv

OP = Operation(
    code="COL-OP",
    starts_on=dt.date(2025, 5, 12),
    ends_on=dt.date(2025, 5, 30),
    default_visibility=Visibility.PARTICIPANTS,
)
MANY = hsettings(FUZZ, max_examples=150)

# more ways to write (or miswrite) a value than test_import_fuzz's VALUES: all go through the same
# pydantic validators on both paths, so these exercise the plumbing around them (blanks, defaults,
# stripping, the cross-cell rules)
ODD = {
    "weight_kg": st.sampled_from(
        ["1.5", "01.5", "1.50", "1e2", "1E-2", " 2 ", "1_000", "+3", "0.000", "-0", ".5"]
    ),
    "pieces": st.sampled_from(["0", " 7", "007", "1_0", "+2", "10000000001", "2.0"]),
    "value_amount": st.sampled_from(["", "0", "12.34", "12.345", "1e13", "1e14"]),
    "detected_on": st.sampled_from(["2025-05-12", " 2025-05-30 ", "2025-05-11", "20250514", "2025-5-14"]),
    "is_ecommerce": st.sampled_from(["Yes", " no ", "oui", "X", "true", "TRUE", "2"]),
    "currency": st.sampled_from(["", "EUR", " usd ", "eu"]),
    "visibility": st.sampled_from(["", "own", "partners", "coordinator", "OWN"]),
    "transit_countries": st.sampled_from(["", "ae", "AE, TR", "AE;;TR", " ", "AE,QQ"]),
    "hs_code": st.sampled_from(["", "3004", "300490", "30049", "123", "12345678901", "30 04"]),
    "platform_type": st.sampled_from(["", "MARKETPLACE", "marketplace", "SOCIAL"]),
    "brand": st.sampled_from(["", "B" * 120, "B" * 121, " Nike "]),
}


@st.composite
def odd_tables(draw: st.DrawFn) -> list[dict[str, str]]:
    """Rows of a few cases whose cells are mostly valid, with odd spellings and mistakes."""
    rows = []
    for c in range(draw(st.integers(1, 4))):
        ref = draw(st.sampled_from([f"OD-{c}", f"OD-{c}", f" OD-{c} ", "OD-0"]))  # OD-0: may disagree
        case_cells = {col: draw(ODD[col]) for col in draw(st.lists(st.sampled_from(sorted(ODD)), max_size=2))}
        for _ in range(draw(st.integers(1, 3))):
            row = good_row(ref, **{k: v for k, v in case_cells.items() if k in importer.CASE_COLUMNS})
            for col in draw(st.lists(st.sampled_from(sorted(ODD)), max_size=2)):
                if col not in importer.CASE_COLUMNS:
                    row[col] = draw(ODD[col])
            rows.append(row)
    return rows


def _columns(draw: st.DrawFn) -> tuple[str, ...]:
    """All the columns, or a shuffled subset keeping the required ones."""
    if draw(st.booleans()):
        return COLUMNS
    optional = [c for c in COLUMNS if c not in importer.REQUIRED and c not in ("pieces", "weight_kg")]
    keep = draw(st.lists(st.sampled_from(optional), unique=True))
    return tuple(draw(st.permutations([*importer.REQUIRED, "pieces", "weight_kg", *keep])))


def row_path(data: bytes, name: str) -> tuple[list[importer.ParsedCase], list[Any]] | InvalidInput:
    try:
        table = importer.read_table(name, data, 10_000)
    except InvalidInput as e:
        return e
    return importer.parse_rows(table, OP)  # header problems included


def expected(cases: list[importer.ParsedCase]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """What the row path writes, in the columnar result's shape."""
    groups = {code: c.group for code, c in get_reference().commodities.items()}
    case_rows = [
        {
            "reference": p.reference,
            **p.fields.model_dump(mode="json", include=set(columnar.CASE_JSON_FIELDS)),
            "transit_countries": ",".join(p.fields.transit_countries),
            "visibility": (p.fields.visibility or OP.default_visibility).value,
        }
        for p in cases
    ]
    seizure_rows = [
        {
            "reference": p.reference,
            "line_no": line,
            **s.model_dump(mode="json"),
            "commodity_group": groups[s.commodity_code],
        }
        for p in cases
        for line, s in enumerate(p.seizures, start=1)
    ]
    return case_rows, seizure_rows


@dataclass
class Clean:
    cases: pl.DataFrame
    seizures: pl.DataFrame


def columnar_check(name: str, data: bytes, stored: frozenset[str] = frozenset()) -> Clean | None:
    """The importer's columnar check of a file, cases and seizures (as an import runs it)."""
    checking, _ = importer._columnar(name, data, 10_000, OP, set(stored))
    seizures = checking.seizures() if checking is not None else None
    if checking is None or seizures is None:
        return None
    return Clean(checking.cases, seizures)


def _event(what: str) -> None:
    with suppress(InvalidArgument):  # outside a Hypothesis test
        event(what)


def agree(data: bytes, name: str = "f.csv") -> Clean | None:
    """Run both paths on ``data``; the columnar one must not accept what the row path refuses, and what
    it accepts must be the row path's values exactly."""
    rows = row_path(data, name)
    try:
        clean = columnar_check(name, data)
    except InvalidInput as e:
        assert isinstance(rows, InvalidInput), f"columnar refused a file the row path reads: {e}"
        assert e.errors == rows.errors  # the same reader's error
        return None
    if isinstance(rows, InvalidInput) or rows[1]:
        _event("row path: refused")
        assert clean is None, f"columnar accepted a file the row path refuses: {rows}"
        return None
    _event(f"row path: clean; columnar: {'declined' if clean is None else 'accepted'}")
    if clean is None:
        return None
    cases, seizures = expected(rows[0])
    assert clean.cases.columns == ["reference", *columnar.CASE_JSON_FIELDS, "transit_countries", "visibility"]
    assert clean.cases.to_dicts() == cases
    got = sorted(clean.seizures.to_dicts(), key=lambda r: (r["reference"], r["line_no"]))
    assert got == sorted(seizures, key=lambda r: (r["reference"], r["line_no"]))
    return clean


# ------------------------------------------------------------------------------------------- without a database


@MANY
@given(rows=st.one_of(tables(), odd_tables(), odd_tables()), data=st.data())
def test_columnar_accepts_only_clean_files_and_reads_them_as_the_row_path(rows, data) -> None:
    columns = _columns(data.draw)
    delimiter = data.draw(st.sampled_from([",", ";", "\t"]))
    agree(to_csv(rows, columns, delimiter))


@FUZZ
@given(data=mangled_csv())
def test_columnar_never_accepts_a_mangled_file_the_row_path_refuses(data: bytes) -> None:
    agree(data)


@FUZZ
@given(rows=odd_tables())
def test_xlsx_rows_agree_too(rows) -> None:
    from .test_import_fuzz import xlsx_bytes

    agree(xlsx_bytes([list(COLUMNS), *([r.get(c, "") for c in COLUMNS] for r in rows)]), "f.xlsx")


CELL_TEXT = st.text(st.characters(codec="utf-8", exclude_characters="\x00"), max_size=8)


@MANY
@given(
    grid=st.lists(st.lists(CELL_TEXT, min_size=3, max_size=3), min_size=2, max_size=6),
    delimiter=st.sampled_from([",", ";", "\t"]),
    ending=st.sampled_from(["\n", "\r\n"]),
    quoting=st.sampled_from([csv.QUOTE_MINIMAL, csv.QUOTE_ALL]),
)
def test_polars_reading_is_taken_only_when_it_is_pythons(grid, delimiter, ending, quoting) -> None:
    """Whatever the cells (quotes, delimiters, line breaks, blanks), ``read_csv`` either declines or
    gives the header and rows Python's reader gives; with minimal quoting of cells that are neither
    blank rows nor carriage returns, it reads the text."""
    buf = io.StringIO()
    csv.writer(buf, delimiter=delimiter, lineterminator=ending, quoting=quoting).writerows(grid)
    text = buf.getvalue()
    got = columnar.read_csv(text, delimiter, 10_000)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
    python = [r for r in reader if "".join(r).strip()]
    if got is not None:
        header, cells = got
        assert [header, *map(list, cells.rows())] == python
    simple = all("".join(r).strip() and "\r" not in "".join(r) for r in grid)
    if quoting == csv.QUOTE_MINIMAL and simple:
        assert got is not None, text


def test_a_file_with_quoted_cells_is_read_by_polars() -> None:
    rows = [good_row("Q-1", transit_countries="AE,TR", notes='said "urgent"'), good_row("Q-2")]
    text = to_csv(rows).decode()
    assert '"AE,TR"' in text
    header, cells = columnar.read_csv(text, ",", 10) or ([], None)
    assert header == list(COLUMNS) and cells is not None and cells.height == 2


@pytest.mark.parametrize(
    "change",
    [
        {},
        {"weight_kg": "0", "pieces": "3"},
        {"value_amount": "", "currency": ""},
        {"transit_countries": "AE;TR", "visibility": "own", "is_ecommerce": "no"},
    ],
)
def test_a_clean_file_takes_the_columnar_path(change: dict[str, str]) -> None:
    rows = [good_row(f"C-{i}", **({"pieces": str(i + 1)} | change)) for i in range(3)]
    rows.append(good_row("C-0", **(change | {"pieces": "9"})))
    clean = agree(to_csv(rows))
    assert clean is not None
    assert clean.cases.height == 3 and clean.seizures["line_no"].to_list() == [1, 1, 1, 2]


@pytest.mark.parametrize(
    "change",
    [
        {"pieces": "0", "weight_kg": "0"},  # the model's own rule
        {"value_amount": "5", "currency": ""},
        {"detected_on": "2025-05-31"},  # outside the operation
        {"commodity_code": "NOPE"},
        {"brand": "x" * 121},
        {"case_reference": ""},
    ],
)
def test_a_bad_cell_leaves_the_file_to_the_row_path(change: dict[str, str]) -> None:
    rows = [good_row("B-1"), good_row("B-2", **change)]
    result = row_path(to_csv(rows), "f.csv")
    assert not isinstance(result, InvalidInput) and result[1]  # the row path names the problem
    assert columnar_check("f.csv", to_csv(rows)) is None


def test_rows_of_a_case_that_disagree_or_repeat_are_left_to_the_row_path() -> None:
    disagree = [good_row("D-1"), good_row("D-1", office="elsewhere")]
    repeat = [good_row("D-1"), good_row("D-1")]
    for rows in (disagree, repeat):
        assert columnar_check("f.csv", to_csv(rows)) is None
    assert columnar_check("f.csv", to_csv([good_row("D-1")]), {"D-1"}) is None  # stored


def test_values_used_as_defaults_match_the_row_path() -> None:
    """A column left out of the file altogether takes each field's default, as a blank cell does."""
    columns = tuple(c for c in COLUMNS if c in importer.REQUIRED or c in ("pieces", "weight_kg"))
    clean = agree(to_csv([good_row("M-1")], columns))
    assert clean is not None
    row = clean.seizures.row(0, named=True)
    assert (row["infringement_type"], row["nature"], row["currency"]) == ("TRADEMARK", "COUNTERFEIT", None)
    assert clean.cases.row(0, named=True)["visibility"] == OP.default_visibility.value


# ------------------------------------------------------------------------------------------- PostgreSQL

_n = iter(range(10**6))


@pytest.mark.postgres_only  # the columnar path writes with COPY
@hsettings(FUZZ, max_examples=10)
@given(rows=odd_tables())
def test_columnar_and_row_by_row_imports_store_the_same(world, db, settings, monkeypatch, rows) -> None:
    """The same file imported through the columnar path and through the row path (columnar check
    switched off) stores the same cases, seizures and snapshots, or is refused the same way."""
    n = next(_n)

    def renamed(prefix: str) -> bytes:
        return to_csv([r | {"case_reference": f"{prefix}{n}-{r['case_reference'].strip()}"} for r in rows])

    written: list[int | None] = []  # what each columnar write returned (None: a seizure cell was bad)
    real = importer._Copier.columns

    def columns(self, *a: Any, **kw: Any) -> int | None:  # type: ignore[no-untyped-def]
        written.append(real(self, *a, **kw))
        return written[-1]

    monkeypatch.setattr(importer._Copier, "columns", columns)
    fast = import_direct(db, settings, renamed("CL"), f"cl{n}.csv")
    with monkeypatch.context() as m:
        m.setattr(columnar, "check_cases", lambda *a, **kw: None)
        slow = import_direct(db, settings, renamed("RW"), f"rw{n}.csv")
    if isinstance(slow, InvalidInput):
        assert isinstance(fast, InvalidInput) and all(w is None for w in written)

        def said(e: InvalidInput, prefix: str) -> list[str]:
            return [str(x).replace(f"{prefix}{n}-", "") for x in e.errors]

        assert said(fast, "CL") == said(slow, "RW")
        return
    assert isinstance(fast, ImportResult) and isinstance(slow, ImportResult)
    assert (fast.cases_created, fast.seizures_created) == (slow.cases_created, slow.seizures_created)
    assert stored(db, f"CL{n}-") == stored(db, f"RW{n}-")
    assert written == [fast.seizures_created], "a clean file went row by row"


def stored(db, prefix: str) -> list[tuple[Any, ...]]:  # type: ignore[no-untyped-def]
    skip_case = {"id", "reference", "created_at", "updated_at", "submitted_at", "import_batch_id"}
    skip_seizure = {"id", "case_id", "created_at", "updated_at"}
    out = []
    for case in db.scalars(select(Case).where(Case.reference.like(f"{prefix}%")).order_by(Case.reference)):
        version = db.scalars(select(CaseVersion).where(CaseVersion.case_id == case.id)).one()
        out.append(
            (
                case.reference.removeprefix(prefix),
                {c.key: getattr(case, c.key) for c in Case.__table__.columns if c.key not in skip_case},
                [
                    {c.key: getattr(s, c.key) for c in Seizure.__table__.columns if c.key not in skip_seizure}
                    for s in case.seizures
                ],
                {k: v for k, v in version.snapshot.items() if k != "reference"},
                (version.version, version.action, version.reason, version.changed_by_id),
            )
        )
    return out


@pytest.mark.postgres_only
def test_text_that_looks_like_null_or_csv_survives_the_copy(world, db, settings) -> None:
    """Cells holding ``\\N``, quotes, delimiters, line breaks and non-Latin text are stored as text."""
    tricky = ["\\N", 'a "quoted", text', "two\nlines", "Ελληνικά 中文", "tab\there", "=1+1"]
    rows = [good_row(f"TX-{i}", notes=t, brand=t[:120]) for i, t in enumerate(tricky)]
    result = import_direct(db, settings, to_csv(rows), "tricky.csv")
    assert isinstance(result, ImportResult) and result.cases_created == len(tricky)
    for i, t in enumerate(tricky):
        case = db.scalars(select(Case).where(Case.reference == f"TX-{i}")).one()
        assert case.notes == t and case.seizures[0].brand == t[:120]
        version = db.scalars(select(CaseVersion).where(CaseVersion.case_id == case.id)).one()
        assert version.snapshot["notes"] == t and version.snapshot["seizures"][0]["brand"] == t[:120]


def test_values_of_the_fuzz_strategies_are_known_columns() -> None:
    assert set(VALUES) <= set(COLUMNS) and set(ODD) <= set(COLUMNS)


@pytest.mark.postgres_only
def test_a_bad_seizure_after_the_cases_were_sent_rolls_them_back(world, db, settings, monkeypatch) -> None:
    """The cases of a file go to the server while its seizure cells are checked; a bad seizure cell
    then undoes them, and the row path refuses the file with its usual errors: nothing is stored."""
    sent: list[int | None] = []
    real = importer._Copier.columns

    def columns(self, *a: Any, **kw: Any) -> int | None:  # type: ignore[no-untyped-def]
        sent.append(real(self, *a, **kw))
        return sent[-1]

    monkeypatch.setattr(importer._Copier, "columns", columns)
    rows = [good_row(f"RB-{i}") for i in range(50)] + [good_row("RB-7", pieces="0", weight_kg="0")]
    refused = import_direct(db, settings, to_csv(rows), "rb.csv")  # checks that nothing was written
    assert sent == [None]
    assert isinstance(refused, InvalidInput)
    assert [(e.row, e.field, e.code) for e in refused.errors] == [(52, "pieces", "needs_quantity")]
    assert "no pieces and no weight" in refused.errors[0].message
    fixed = import_direct(db, settings, to_csv(rows[:-1]), "rb-fixed.csv")
    assert isinstance(fixed, ImportResult) and fixed.cases_created == 50 and sent[-1] == 50
