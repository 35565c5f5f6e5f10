"""Property tests of the bulk import against malformed CSV and XLSX files.

Whatever the bytes, an import ends in one of two ways: a clear error (``InvalidInput`` whose every error
names a field, or 413 over HTTP) and nothing written, or a correct import that wrote exactly what it
reports. Never an unhandled exception, never a partial import, never a hang. Bounded: few examples per
property, no Hypothesis database (CI leaves no files), each import under a wall-clock alarm.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import itertools
import signal
import struct
import threading
import time
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from typing import Any

import openpyxl
import pytest
from hypothesis import HealthCheck, assume, given, note
from hypothesis import settings as hsettings
from hypothesis import strategies as st
from hypothesis.errors import InvalidArgument
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE
from sqlalchemy import func, select

from stopnet.access.service import cli_principal
from stopnet.core.errors import Conflict, InvalidInput, TooLarge
from stopnet.db.models import Case, CaseStatus, CaseVersion, ImportBatch, Operation, Seizure
from stopnet.reporting import importer
from stopnet.reporting.importer import COLUMNS, ImportResult

URL = "/api/v1/operations/TEST-OP/imports"
XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
HANG_SECONDS = 30  # one import of these small files takes well under a second

FUZZ = hsettings(
    max_examples=30,
    deadline=None,
    database=None,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
    ],
)
FEW = hsettings(FUZZ, max_examples=10)


# ------------------------------------------------------------------------------------------- helpers


class Hang(Exception):
    pass


@contextmanager
def alarm(seconds: int = HANG_SECONDS) -> Iterator[None]:
    """Fail (rather than hang the suite) when the body runs longer than ``seconds``."""
    if threading.current_thread() is not threading.main_thread() or not hasattr(signal, "setitimer"):
        yield
        return

    def ring(*_: object) -> None:
        raise Hang(f"the import ran longer than {seconds} s")

    old = signal.signal(signal.SIGALRM, ring)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


def _note(message: str) -> None:
    with suppress(InvalidArgument):  # outside a Hypothesis test
        note(message)


def at(draw: st.DrawFn, data: bytes) -> int:
    """A position in ``data``, drawn independently of its length (which may vary between runs)."""
    return draw(st.integers(0, 1000)) * len(data) // 1000


def counts(db) -> tuple[int, int, int, int]:  # type: ignore[no-untyped-def]
    db.rollback()  # a fresh snapshot: see what other sessions committed
    return tuple(  # type: ignore[return-value]
        db.scalar(select(func.count()).select_from(m)) for m in (Case, Seizure, CaseVersion, ImportBatch)
    )


def import_direct(db, settings, data: bytes, filename: str) -> ImportResult | InvalidInput:  # type: ignore[no-untyped-def]
    """Import as the CLI does (commit on success, roll back on error); check the outcome's invariants."""
    before = counts(db)
    principal = cli_principal(db, "FR-CUS")
    op = db.scalars(select(Operation).where(Operation.code == "TEST-OP")).one()
    t = time.perf_counter()
    try:
        with alarm():
            result = importer.import_seizures(db, principal, op, filename, data, settings)
        db.commit()
    except InvalidInput as e:
        db.rollback()
        _note(f"refused in {time.perf_counter() - t:.2f} s: {e.summary}; {[str(x) for x in e.errors[:5]]}")
        assert e.errors, "InvalidInput without any error"
        for err in e.errors:
            assert err.field and err.message, err
        assert counts(db) == before, "a refused import wrote rows"
        return e
    except (TooLarge, Conflict):
        db.rollback()
        assert counts(db) == before
        raise
    after = counts(db)
    _note(f"imported in {time.perf_counter() - t:.2f} s: {result}")
    if result.already_imported:
        assert after == before
    else:
        assert after == (
            before[0] + result.cases_created,
            before[1] + result.seizures_created,
            before[2] + result.cases_created,
            before[3] + 1,
        ), (before, after, result)
        assert result.rows == result.seizures_created + result.rows_unchanged
    return result


def upload(client, actor, data: bytes, name: str):  # type: ignore[no-untyped-def]
    ctype = XLSX_TYPE if name.endswith(".xlsx") else "text/csv"
    with alarm():
        return client.post(URL, files={"file": (name, data, ctype)}, headers=actor.headers)


def check_http(client, world, db, data: bytes, name: str) -> int:  # type: ignore[no-untyped-def]
    before = counts(db)
    r = upload(client, world["fr_officer"], data, name)  # an unhandled exception would raise here
    assert r.status_code in (200, 201, 413, 422), (r.status_code, r.text[:500])
    if r.status_code == 422:
        body = r.json()
        assert body["errors"] and all(e["field"] for e in body["errors"]), body
    if r.status_code in (413, 422, 200):
        assert counts(db) == before
    else:
        got = r.json()
        after = counts(db)
        assert (
            after[0] == before[0] + got["cases_created"] and after[1] == before[1] + got["seizures_created"]
        )
    return r.status_code


# ------------------------------------------------------------------------------------------- generators


def good_row(ref: str, **kw: str) -> dict[str, str]:
    base = {
        "case_reference": ref,
        "detected_on": "2025-05-14",
        "transport_mode": "AIR",
        "is_ecommerce": "yes",
        "channel": "POSTAL",
        "origin_country": "CN",
        "destination_country": "FR",
        "detection_method": "XRAY",
        "commodity_code": "IPR-CLOTH",
        "brand": "Brand X",
        "pieces": "10",
        "weight_kg": "1.5",
    }
    base.update(kw)
    return base


def to_csv(rows: list[dict[str, str]], columns: tuple[str, ...] = COLUMNS, delimiter: str = ",") -> bytes:
    buf = io.StringIO()
    # "\r\n": the writer then also quotes a cell holding a lone "\r", which readers take for a line end
    w = csv.DictWriter(
        buf, fieldnames=columns, delimiter=delimiter, lineterminator="\r\n", extrasaction="ignore"
    )
    w.writeheader()
    w.writerows(rows)
    return buf.getvalue().encode()


FORMULAS = ["=cmd|' /C calc'!A0", "=1+1", "+SUM(A1:A2)", "-2+3", "@SUM(1)", '=HYPERLINK("http://x","y")']
NASTY = st.one_of(
    st.sampled_from(
        [
            *FORMULAS,
            "",
            " ",
            "\t",
            '"',
            '""',
            "a,b",
            "a;b",
            "line\nbreak",
            "\r",
            "x" * (importer.MAX_CELL + 1),
            "é" * 50,
            "\ufeff",
            "\u202e",
            "-1",
            "1e400",
            "NaN",
            "inf",
            "9" * 40,
            "0.0001",
            "2025-02-30",
            "2025-05-14T00:00",
            "yes",
            "QQ",
            "MED-WEIGHT",
        ]
    ),
    st.text(max_size=30),
)
VALUES = {
    "detected_on": st.sampled_from(["2025-05-12", "2025-05-30", "2025-05-31", "14/05/2025", ""]),
    "transport_mode": st.sampled_from(["AIR", "air", " SEA ", "DRONE", ""]),
    "is_ecommerce": st.sampled_from(["yes", "no", "1", "0", "maybe", ""]),
    "channel": st.sampled_from(["POSTAL", "EXPRESS", "CAR", ""]),
    "commodity_code": st.sampled_from(["IPR-CLOTH", "MED-WEIGHT", "med-nerv", "XXX", ""]),
    "pieces": st.sampled_from(["10", "0", "-1", "1.5", "1e3", "ten", ""]),
    "weight_kg": st.sampled_from(["1.5", "0", "0.0001", "-2", "1,5", ""]),
    "value_amount": st.sampled_from(["", "10", "10.005", "-1"]),
    "currency": st.sampled_from(["", "EUR", "eur", "XYZ"]),
    "transit_countries": st.sampled_from(["", "AE", "AE;TR", "AE TR", "QQ", ",".join(["AE"] * 11)]),
    "visibility": st.sampled_from(["", "own", "participants", "public"]),
}


@st.composite
def tables(draw: st.DrawFn) -> list[dict[str, str]]:
    """Rows of a few cases, each cell either valid, a plausible mistake or something nasty."""
    n_cases = draw(st.integers(1, 4))
    rows = []
    for c in range(n_cases):
        ref = draw(st.sampled_from([f"FZ-{c}", f"FZ-{c}", "", "bad ref!", "x" * 70]))
        for line in range(draw(st.integers(1, 3))):
            row = good_row(ref, pieces=str(line + 1))
            for col in draw(st.lists(st.sampled_from(COLUMNS), max_size=3)):
                row[col] = draw(VALUES.get(col, NASTY) if draw(st.booleans()) else NASTY)
            rows.append(row)
    return rows


@st.composite
def mangled_csv(draw: st.DrawFn) -> bytes:
    """A CSV, then damaged at the byte level."""
    rows = draw(tables())
    delimiter = draw(st.sampled_from([",", ";", "\t"]))
    data = to_csv(rows, delimiter=delimiter)
    for _ in range(draw(st.integers(0, 3))):
        how = draw(
            st.sampled_from(
                [
                    "truncate",
                    "insert",
                    "open_quote",
                    "mixed_delimiter",
                    "nul",
                    "bom",
                    "encoding",
                    "crlf",
                    "cr",
                ]
            )
        )
        if how == "truncate":
            data = data[: at(draw, data)]
        elif how == "insert":
            i = at(draw, data)
            data = data[:i] + draw(st.binary(min_size=1, max_size=20)) + data[i:]
        elif how == "open_quote":
            i = at(draw, data)
            data = data[:i] + b'"' + data[i:]
        elif how == "mixed_delimiter":
            lines = data.split(b"\n")
            i = draw(st.integers(0, len(lines) - 1))
            other = draw(st.sampled_from([b",", b";", b"\t", b"|"]))
            lines[i] = lines[i].replace(delimiter.encode(), other)
            data = b"\n".join(lines)
        elif how == "nul":
            i = at(draw, data)
            data = data[:i] + b"\x00" + data[i:]
        elif how == "bom":
            data = draw(st.sampled_from([b"\xef\xbb\xbf", b"\xff\xfe", b"\xfe\xff", b"\xef\xbb"])) + data
        elif how == "encoding":
            text = data.decode("utf-8", errors="replace")
            codec = draw(st.sampled_from(["latin-1", "cp1252", "utf-16", "utf-16-le", "utf-32", "utf-8-sig"]))
            data = text.encode(codec, errors="replace")
        elif how == "crlf":
            data = data.replace(b"\n", b"\r\n")
        elif how == "cr":
            data = data.replace(b"\n", b"\r")
    return data


def xlsx_bytes(
    rows: list[list[Any]],
    merges: tuple[str, ...] = (),
    blank_rows: tuple[int, ...] = (),
    formulas: bool = False,
) -> bytes:
    wb = openpyxl.Workbook()
    wb.properties.created = wb.properties.modified = dt.datetime(2025, 5, 1)  # same bytes every run
    ws = wb.active
    for i, r in enumerate(rows):
        if i in blank_rows:
            ws.append([])
        # openpyxl refuses control characters (XML cannot hold them); Excel could not write them either
        ws.append([ILLEGAL_CHARACTERS_RE.sub("", v) if isinstance(v, str) else v for v in r])
    for m in merges:
        ws.merge_cells(m)
    if not formulas:  # keep "=..." as literal text, as a user typing a leading apostrophe would
        for row in ws.iter_rows():
            for cell in row:
                if isinstance(cell.value, str) and cell.value.startswith("="):
                    cell.data_type = "s"
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


CELL = st.one_of(
    NASTY,
    st.none(),
    st.integers(-(10**12), 10**12),
    st.floats(allow_nan=True, allow_infinity=True),
    st.booleans(),
    st.datetimes(min_value=dt.datetime(1900, 3, 1), max_value=dt.datetime(2100, 1, 1)),
    st.dates(min_value=dt.date(1900, 3, 1), max_value=dt.date(2100, 1, 1)),
)


@st.composite
def workbooks(draw: st.DrawFn) -> bytes:
    rows = draw(tables())
    header = list(COLUMNS)
    grid: list[list[Any]] = [header] + [[r.get(c, "") for c in header] for r in rows]
    for _ in range(draw(st.integers(0, 4))):
        i = draw(st.integers(1, len(grid) - 1))
        j = draw(st.integers(0, len(header) + 2))
        while len(grid[i]) <= j:
            grid[i].append(None)
        grid[i][j] = draw(CELL)
    if draw(st.booleans()):
        grid[1][COLUMNS.index("detected_on")] = dt.datetime(2025, 5, 15)
        grid[1][COLUMNS.index("pieces")] = 25
    merges = tuple(
        draw(st.lists(st.sampled_from(["A2:C2", "D3:D4", "H2:K3", "AA1:AC1"]), max_size=2, unique=True))
    )
    blank = tuple(draw(st.lists(st.integers(1, len(grid)), max_size=3)))
    data = xlsx_bytes(grid, merges, blank, formulas=draw(st.booleans()))
    damage = draw(st.sampled_from(["none", "none", "truncate", "flip"]))
    if damage == "truncate":
        data = data[: at(draw, data)]
    elif damage == "flip":
        i = min(at(draw, data), len(data) - 1)
        data = data[:i] + bytes([data[i] ^ draw(st.integers(1, 255))]) + data[i + 1 :]
    return data


def rezip(data: bytes, change: dict[str, bytes | None]) -> bytes:
    """The XLSX ``data`` with some members replaced (or removed, for ``None``)."""
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as src, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            if info.filename in change:
                if change[info.filename] is not None:
                    dst.writestr(info.filename, change[info.filename])  # type: ignore[arg-type]
            else:
                dst.writestr(info.filename, src.read(info.filename))
    return out.getvalue()


def sheet_xml(rows_xml: str, dimension: str = "A1") -> bytes:
    return (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
        '<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">'
        f'<dimension ref="{dimension}"/><sheetData>{rows_xml}</sheetData></worksheet>'
    ).encode()


def inline_row(r: int, cells: list[tuple[str, str]]) -> str:
    return (
        f'<row r="{r}">'
        + "".join(f'<c r="{ref}" t="inlineStr"><is><t>{v}</t></is></c>' for ref, v in cells)
        + "</row>"
    )


def header_xml() -> str:
    letters = [openpyxl.utils.get_column_letter(i + 1) for i in range(len(COLUMNS))]
    return inline_row(1, [(f"{col}1", name) for col, name in zip(letters, COLUMNS, strict=True)])


def valid_row_xml(r: int, ref: str) -> str:
    values = good_row(ref)
    letters = [openpyxl.utils.get_column_letter(i + 1) for i in range(len(COLUMNS))]
    return inline_row(
        r, [(f"{col}{r}", values[c]) for col, c in zip(letters, COLUMNS, strict=True) if values.get(c)]
    )


# ------------------------------------------------------------------------------------------- properties


@FUZZ
@given(data=st.binary(max_size=3000), name=st.sampled_from(["f.csv", "f.xlsx", "f.txt"]))
def test_random_bytes(db, world, settings, data: bytes, name: str) -> None:
    import_direct(db, settings, data, name)


@FUZZ
@given(data=mangled_csv())
def test_mangled_csv(db, world, settings, data: bytes) -> None:
    import_direct(db, settings, data, "mangled.csv")


@FUZZ
@given(rows=tables(), delimiter=st.sampled_from([",", ";", "\t"]), bom=st.booleans())
def test_well_formed_csv_with_bad_values(db, world, settings, rows, delimiter: str, bom: bool) -> None:
    data = (b"\xef\xbb\xbf" if bom else b"") + to_csv(rows, delimiter=delimiter)
    out = import_direct(db, settings, data, "values.csv")
    if isinstance(out, InvalidInput) and b"\x00" not in data:  # NUL bytes: the file is refused as a whole
        # a well-formed file: every problem is pinned to a row (or to the header, row 1)
        assert all(e.row is not None for e in out.errors), out.errors


@FUZZ
@given(data=workbooks())
def test_generated_xlsx(db, world, settings, data: bytes) -> None:
    import_direct(db, settings, data, "book.xlsx")


@FEW
@given(
    rows=st.lists(
        st.fixed_dictionaries(
            {
                "brand": st.text(max_size=20).filter(lambda s: "\x00" not in s),
                "pieces": st.integers(1, 10**6).map(str),
                "weight_kg": st.decimals(0, 1000, places=3, allow_nan=False, allow_infinity=False).map(str),
                "commodity_code": st.sampled_from(["IPR-CLOTH", "MED-WEIGHT", "OTH-COSM"]),
                "description": st.sampled_from(["", *FORMULAS]),
            }
        ),
        min_size=1,
        max_size=6,
    ),
    ref=st.from_regex(r"[A-Za-z0-9][A-Za-z0-9._/-]{0,20}", fullmatch=True),
)
def test_valid_rows_import_exactly(db, world, settings, rows, ref: str) -> None:
    """Valid rows (formula-looking text included) import as one case, stored as text, line by line."""
    full = [good_row(ref, **r) for r in rows]
    assume(len({tuple(sorted(r.items())) for r in full}) == len(full))  # a repeated row is an error
    db_ref_exists = db.scalar(select(func.count()).select_from(Case).where(Case.reference == ref))
    out = import_direct(db, settings, to_csv(full), f"ok-{ref[:10]}.csv")
    if db_ref_exists:
        return  # same reference reported before: unchanged or refused, both checked above
    assert isinstance(out, ImportResult), out.errors
    assert (out.cases_created, out.seizures_created) == (1, len(full))
    stored = db.scalars(
        select(Seizure).join(Case).where(Case.reference == ref).order_by(Seizure.line_no)
    ).all()
    assert [s.description for s in stored] == [r["description"] for r in full]
    assert [s.brand for s in stored] == [r["brand"].strip() for r in full]
    case = db.scalars(select(Case).where(Case.reference == ref)).one()
    assert case.status is CaseStatus.SUBMITTED
    version = db.scalars(select(CaseVersion).where(CaseVersion.case_id == case.id)).one()
    op = db.get_one(Operation, case.operation_id)
    parsed, errors = importer.parse_rows(importer.read_table("x.csv", to_csv(full), 100), op)
    assert not errors
    # the fast snapshot written by the import is the one service.snapshot_of takes
    assert version.snapshot == importer._snapshot_for(parsed[0], op, CaseStatus.SUBMITTED)


# ------------------------------------------------------------------------------------------- hand-made cases


def _template_xlsx() -> bytes:
    return xlsx_bytes([list(COLUMNS), [good_row("XL-1").get(c, "") for c in COLUMNS]])


def test_xlsx_zip_bomb_refused(db, world, settings) -> None:
    """A small zip whose member expands hugely is refused before anything decompresses it."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as z:
        z.writestr("[Content_Types].xml", "<Types/>")
        z.writestr("xl/worksheets/sheet1.xml", b"\x00" * (64 * 1024 * 1024))
    data = out.getvalue()
    assert len(data) < 200_000
    e = import_direct(db, settings, data, "bomb.xlsx")
    assert isinstance(e, InvalidInput) and "zip bomb" in e.summary


def test_xlsx_zip_bomb_lying_about_its_size(db, world, settings) -> None:
    """A member that declares a small size but inflates to much more is cut at the declared size."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("xl/worksheets/sheet1.xml", b"\x00" * (16 * 1024 * 1024))
    data = bytearray(out.getvalue())
    local = data.find(b"PK\x03\x04")
    central = data.find(b"PK\x01\x02")
    struct.pack_into("<I", data, local + 22, 1000)
    struct.pack_into("<I", data, central + 24, 1000)
    e = import_direct(db, settings, bytes(data), "liar.xlsx")
    assert isinstance(e, InvalidInput)


def test_xlsx_claiming_the_whole_sheet_does_not_hang(db, world, settings) -> None:
    """A few KB that declare A1:XFD1048576 and a last row at 1,048,576 (or far beyond) stay cheap."""
    base = _template_xlsx()
    for tail in (
        inline_row(1048576, [("XFD1048576", "x")]),
        inline_row(2_000_000_000, [("A2000000000", "x")]),
        "".join(inline_row(r, [(f"XFD{r}", "x")]) for r in range(3, 2000)),
    ):
        xml = sheet_xml(header_xml() + valid_row_xml(2, "XL-BIG") + tail, "A1:XFD1048576")
        data = rezip(base, {"xl/worksheets/sheet1.xml": xml})
        t = time.perf_counter()
        e = import_direct(db, settings, data, "huge.xlsx")
        assert time.perf_counter() - t < 20
        assert isinstance(e, InvalidInput), e


def test_xlsx_escapes_and_illegal_xml_characters(db, world, settings) -> None:
    """Excel's _x0000_ escapes stay literal text; a NUL or control character reference breaks the XML."""
    base = _template_xlsx()
    for bad in ("&#0;", "&#1;"):
        row = valid_row_xml(2, "XL-NUL").replace("Brand X", f"Brand{bad}X")
        e = import_direct(
            db, settings, rezip(base, {"xl/worksheets/sheet1.xml": sheet_xml(header_xml() + row)}), "n.xlsx"
        )
        assert isinstance(e, InvalidInput), e
    row = valid_row_xml(2, "XL-ESC").replace("Brand X", "Brand_x0000_X")
    out = import_direct(
        db, settings, rezip(base, {"xl/worksheets/sheet1.xml": sheet_xml(header_xml() + row)}), "e.xlsx"
    )
    assert isinstance(out, ImportResult) and out.cases_created == 1
    assert db.scalar(select(Seizure.brand).join(Case).where(Case.reference == "XL-ESC")) == "Brand_x0000_X"


def test_nul_in_a_cell_is_pinned_to_row_and_field(world, db) -> None:
    """Should a reader ever pass a NUL through (PostgreSQL cannot store one), the row is refused."""
    op = db.scalars(select(Operation).where(Operation.code == "TEST-OP")).one()
    cells = [good_row("N-1", brand="A\x00B").get(c, "") for c in COLUMNS]
    _, errors = importer.parse_rows(importer.Table(list(COLUMNS), [cells], has_nul=True), op)
    assert [(e.row, e.field) for e in errors] == [(2, "brand")]


def test_xlsx_damaged_members(db, world, settings) -> None:
    base = _template_xlsx()
    broken = [
        rezip(base, {"xl/worksheets/sheet1.xml": b"<worksheet><sheetData><row><c><v>1</v>"}),
        rezip(base, {"xl/worksheets/sheet1.xml": None}),
        rezip(base, {"xl/workbook.xml": None}),
        rezip(base, {"xl/workbook.xml": b"<not-a-workbook/>"}),
        rezip(base, {"[Content_Types].xml": None}),
        rezip(
            base, {"xl/worksheets/sheet1.xml": sheet_xml('<row r="1"><c r="A1" t="s"><v>99</v></c></row>')}
        ),
    ]
    # a corrupt deflate stream (not just a bad CRC): zlib.error while testing the archive
    data = bytearray(base)
    info = zipfile.ZipFile(io.BytesIO(base)).getinfo("xl/worksheets/sheet1.xml")
    start = info.header_offset + 30 + len(info.filename.encode()) + len(info.extra)
    data[start : start + 8] = b"\xff" * 8
    broken.append(bytes(data))
    for data in broken:
        out = import_direct(db, settings, data, "broken.xlsx")
        assert isinstance(out, InvalidInput), out


def test_csv_edge_files(db, world, settings) -> None:
    header = ",".join(COLUMNS).encode()
    good = to_csv([good_row("E-1")])
    cases = [
        b"\x00" * 100,
        b"\xef\xbb\xbf",
        b"\xff\xfe",
        b"\xff\xfe\x00",
        header + b"\n" + b'"unterminated,' + b"x" * 200_000,
        header + b"\n" + b"a" * 200_000 + b"\n",
        header.replace(b",", b";", 5) + b"\n",
        b",".join([b"junk"] * 100_000) + b"\n1\n",
        good.replace(b"\n", b"\r"),
        good + b"\x1a",
        b"\n".join([header] + [b"E-1,2025-05-14"] * 3),
        good.replace(b"Brand X", b'"Brand ""X"""'),
    ]
    for data in cases:
        import_direct(db, settings, data, "edge.csv")


def test_too_large_and_too_many_rows(db, world, settings) -> None:
    data = to_csv([good_row(f"L-{i}") for i in range(30)])
    settings.max_upload_bytes = 500
    e = import_direct(db, settings, data, "big.csv")
    assert isinstance(e, InvalidInput) and "larger than" in e.summary
    settings.max_upload_bytes = 10**7
    settings.max_import_rows = 10
    e = import_direct(db, settings, data, "many.csv")
    assert isinstance(e, InvalidInput) and "more than 10 data rows" in e.summary


@pytest.mark.parametrize(
    ("bad", "field"),
    [({"channel": "DRONE"}, "channel"), ({"pieces": "-5"}, "pieces"), ({"currency": "XYZ"}, "currency")],
)
def test_a_bad_row_anywhere_imports_nothing(db, world, settings, bad: dict[str, str], field: str) -> None:
    """All or nothing, also when the only problems are on the last rows of many (on PostgreSQL the
    earlier cases, and seizures, were already sent to the server when the problem is found)."""
    rows = [good_row(f"N-{i // 2}", pieces=str(i + 1), value_amount="5", currency="EUR") for i in range(400)]
    rows[-1].update(bad)
    rows[201].update(bad)
    e = import_direct(db, settings, to_csv(rows), "last.csv")
    assert isinstance(e, InvalidInput)
    assert [(x.row, x.field) for x in e.errors] == [(203, field), (401, field)]


# ------------------------------------------------------------------------------------------- over HTTP


@FEW
@given(data=st.one_of(mangled_csv(), st.binary(max_size=500)))
def test_http_mangled_csv(client, world, db, data: bytes) -> None:
    check_http(client, world, db, data, "up.csv")


@FEW
@given(data=workbooks())
def test_http_generated_xlsx(client, world, db, data: bytes) -> None:
    check_http(client, world, db, data, "up.xlsx")


def test_http_limits(client, world, db, app) -> None:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("xl/worksheets/sheet1.xml", b"\x00" * (32 * 1024 * 1024))
    assert check_http(client, world, db, out.getvalue(), "bomb.xlsx") == 422
    app.state.settings.max_upload_bytes = 1000
    assert check_http(client, world, db, to_csv([good_row(f"H-{i}") for i in range(40)]), "big.csv") == 413


@pytest.mark.parametrize("name", ["ok.csv", "ok.xlsx"])
def test_http_valid_file_imports(client, world, db, name: str) -> None:
    if name.endswith(".csv"):
        data = to_csv([good_row("HV-1"), good_row("HV-1", pieces="3"), good_row("HV-2")])
    else:
        data = xlsx_bytes(
            [list(COLUMNS)] + [[good_row(r).get(c, "") for c in COLUMNS] for r in ("HV-1", "HV-2")]
        )
    assert check_http(client, world, db, data, name) == 201
    assert check_http(client, world, db, data, name) == 200  # same file again: nothing new


# ------------------------------------------------------------------------------------------- concurrency


def test_same_file_uploaded_twice_at_once(world, db, session_factory, settings) -> None:
    """Two sessions importing the same file at the same moment: one imports, the other finds it done
    (PostgreSQL serialises imports per organisation; SQLite has a single writer)."""
    data = to_csv([good_row(f"C-{i // 2}", pieces=str(i + 1)) for i in range(300)])
    results: list[object] = []
    barrier = threading.Barrier(2)

    def worker() -> None:
        with session_factory() as s:
            principal = cli_principal(s, "FR-CUS")
            op = s.scalars(select(Operation).where(Operation.code == "TEST-OP")).one()
            barrier.wait()
            try:
                results.append(importer.import_seizures(s, principal, op, "twice.csv", data, settings))
                s.commit()
            except Exception as e:  # recorded, checked below
                s.rollback()
                results.append(e)

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert len(results) == 2, results
    created = [r for r in results if isinstance(r, ImportResult) and not r.already_imported]
    assert len(created) == 1, results
    # the other one waited and then found the file imported (PostgreSQL), or lost the race for SQLite's
    # single writer and was told so (409); never a second copy of the cases, never a 500
    other = next(r for r in results if r is not created[0])
    assert (isinstance(other, ImportResult) and other.already_imported) or isinstance(other, Conflict), other
    assert counts(db)[:2] == (150, 300)


@pytest.mark.parametrize("size", [3, 300])
def test_a_reference_taken_meanwhile_is_a_conflict(world, db, settings, monkeypatch, size: int) -> None:
    """A case stored between the importer's look-up and its write (made here by hiding the stored
    references from it) hits the unique constraint: 409, and nothing of the file is written."""
    first = to_csv([good_row("T-1")])
    assert isinstance(import_direct(db, settings, first, "first.csv"), ImportResult)
    monkeypatch.setattr(importer, "_stored_references", lambda *a: set())
    rows = [good_row(f"T-{i}", pieces=str(i + 1)) for i in range(size)]
    before = counts(db)
    with pytest.raises(Conflict):
        import_direct(db, settings, to_csv(rows), "second.csv")
    assert counts(db) == before


_unique = itertools.count()
OPTIONAL = {
    "office": st.sampled_from(["", "Roissy", "  Le Havre  ", "Zoll-Amt Köln"]),
    "place": st.sampled_from(["", "terminal 2"]),
    "departure_country": st.sampled_from(["", "HK", "tr"]),
    "transit_countries": st.sampled_from(["", "AE", "AE;TR", "ae tr"]),
    "concealment": st.sampled_from(["", "MISDECLARED", "none"]),
    "platform_type": st.sampled_from(["", "MARKETPLACE"]),
    "platform_name": st.sampled_from(["", "shop.example"]),
    "consignee_name": st.sampled_from(["", "Jean Dupont"]),
    "visibility": st.sampled_from(["", "own", "participants"]),
    "notes": st.sampled_from(["", "line\nbreak", "=1+1"]),
    "is_ecommerce": st.sampled_from(["yes", "no", "1", "oui"]),
    "detected_on": st.sampled_from(["2025-05-12", "2025-05-30", "2025-05-14"]),
    "hs_code": st.sampled_from(["", "3004", "300490"]),
    "weight_kg": st.sampled_from(["", "0.001", "1.5", "100000"]),
    "value_amount": st.sampled_from(["", "0", "9000.5", "1e3"]),
    "currency": st.sampled_from(["EUR", "usd"]),
    "nature": st.sampled_from(["", "FALSIFIED"]),
    "infringement_type": st.sampled_from(["", "COPYRIGHT"]),
    "rights_holder": st.sampled_from(["", "Brand X Holdings"]),
}


@pytest.mark.postgres_only  # only PostgreSQL has the COPY path
@FEW
@given(
    cases=st.lists(
        st.tuples(st.fixed_dictionaries({}, optional=OPTIONAL), st.integers(1, 3)), min_size=1, max_size=5
    ),
)
def test_copy_and_core_writes_store_the_same(world, db, settings, monkeypatch, cases) -> None:
    """PostgreSQL imports with COPY, other databases with Core executemany: the same file stores the
    same cases, seizures and snapshots either way (only ids, references and timestamps differ)."""
    assert db.get_bind().dialect.name == "postgresql"
    n = next(_unique)  # the database keeps what earlier examples imported

    def rows(prefix: str) -> list[dict[str, str]]:
        return [
            good_row(f"{prefix}{n}-{i}", **({"currency": "EUR"} | case), pieces=str(line + 1))
            for i, (case, k) in enumerate(cases)
            for line in range(k)
        ]

    assert isinstance(import_direct(db, settings, to_csv(rows("CP")), f"cp{n}.csv"), ImportResult)
    with monkeypatch.context() as m:
        m.setattr(importer._Copier, "for_session", classmethod(lambda *a: None))
        assert isinstance(import_direct(db, settings, to_csv(rows("CO")), f"co{n}.csv"), ImportResult)

    def stored(prefix: str) -> list[tuple[Any, ...]]:
        skip_case = {"id", "reference", "created_at", "updated_at", "submitted_at", "import_batch_id"}
        skip_seizure = {"id", "case_id", "created_at", "updated_at"}
        out = []
        for case in db.scalars(
            select(Case).where(Case.reference.like(f"{prefix}{n}-%")).order_by(Case.reference)
        ):
            version = db.scalars(select(CaseVersion).where(CaseVersion.case_id == case.id)).one()
            out.append(
                (
                    {c.key: getattr(case, c.key) for c in Case.__table__.columns if c.key not in skip_case},
                    [
                        {
                            c.key: getattr(s, c.key)
                            for c in Seizure.__table__.columns
                            if c.key not in skip_seizure
                        }
                        for s in case.seizures
                    ],
                    {k: v for k, v in version.snapshot.items() if k != "reference"},
                    (version.version, version.action, version.reason, version.changed_by_id),
                )
            )
        return out

    copied, inserted = stored("CP"), stored("CO")
    assert len(copied) == len(cases)
    assert copied == inserted


# ------------------------------------------------------------------------------------------- formulas, huge cells


def _row_with(r: int, ref: str, column: str, cell_xml: str) -> str:
    """A valid data row whose ``column`` cell is the raw ``cell_xml`` (its r= attribute filled in)."""
    letter = openpyxl.utils.get_column_letter(COLUMNS.index(column) + 1)
    row = valid_row_xml(r, ref)
    start = row.index(f'<c r="{letter}{r}"')
    end = row.index("</c>", start) + len("</c>")
    return row[:start] + cell_xml.format(ref=f"{letter}{r}") + row[end:]


def test_xlsx_formula_cells(db, world, settings) -> None:
    """A formula cell imports the value Excel computed and saved with it, never its formula; a formula
    without a saved value (it would read as an empty cell), or whose value is an error, is refused,
    naming the cell."""
    base = _template_xlsx()

    def sheet(*rows: str) -> bytes:
        return rezip(base, {"xl/worksheets/sheet1.xml": sheet_xml(header_xml() + "".join(rows))})

    cached = _row_with(2, "XF-1", "pieces", '<c r="{ref}"><f>SUM(10,15)</f><v>25</v></c>')
    text = _row_with(
        3, "XF-2", "brand", '<c r="{ref}" t="str"><f>CONCATENATE("Brand"," X")</f><v>Brand X</v></c>'
    )
    out = import_direct(db, settings, sheet(cached, text), "formulas.xlsx")
    assert isinstance(out, ImportResult) and out.cases_created == 2, out
    stored = dict(db.execute(select(Case.reference, Seizure.pieces).join(Seizure)).all())
    assert stored == {"XF-1": 25, "XF-2": 10}
    assert db.scalar(select(Seizure.brand).join(Case).where(Case.reference == "XF-2")) == "Brand X"

    for cell, field in [
        ('<c r="{ref}"><f>SUM(10,15)</f></c>', "pieces"),  # never computed: no value saved
        ('<c r="{ref}" t="e"><f>1/0</f><v>#DIV/0!</v></c>', "pieces"),
        ('<c r="{ref}" t="e"><f>cmd|\' /C calc\'!A0</f><v>#REF!</v></c>', "brand"),
    ]:
        e = import_direct(db, settings, sheet(_row_with(2, "XF-9", field, cell)), "bad-formula.xlsx")
        assert isinstance(e, InvalidInput), (cell, e)
        letter = openpyxl.utils.get_column_letter(COLUMNS.index(field) + 1)
        assert [x.field for x in e.errors] == ["formula"] and f" {letter}2 " in e.summary, e.summary


def test_huge_fields_are_refused_at_their_cell(db, world, settings) -> None:
    """One enormous cell (1 MB, in a small file) is refused with its row and field, in CSV and XLSX."""
    huge = "x" * 1_000_000
    e = import_direct(db, settings, to_csv([good_row("HF-1", brand=huge)]), "huge.csv")
    assert isinstance(e, InvalidInput) and e.errors
    xml = sheet_xml(header_xml() + valid_row_xml(2, "HF-2").replace("Brand X", huge))
    e = import_direct(db, settings, rezip(_template_xlsx(), {"xl/worksheets/sheet1.xml": xml}), "huge.xlsx")
    assert isinstance(e, InvalidInput)
    assert [(x.row, x.field) for x in e.errors] == [(2, "brand")], e.errors


def test_xlsx_zip_bomb_spread_over_many_members(db, world, settings) -> None:
    """Many members, each modest, that together inflate far beyond the file: refused before reading."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as z:
        z.writestr("[Content_Types].xml", "<Types/>")
        z.writestr("xl/worksheets/sheet1.xml", sheet_xml(header_xml()))
        for i in range(64):
            z.writestr(f"xl/media/pad{i}.bin", b"\x00" * (4 * 1024 * 1024))
    data = out.getvalue()
    assert len(data) < 1_000_000
    e = import_direct(db, settings, data, "spread.xlsx")
    assert isinstance(e, InvalidInput) and "zip bomb" in e.summary
