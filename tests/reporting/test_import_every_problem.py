"""One check names every problem of every row at once, and gives the file back annotated.

A row with several independent problems (a cell of the case, a cell of the seizure, a rule across
cells, the operation's dates) gets them all in one answer, whichever path the file takes (the row
path; on PostgreSQL the columnar path first, which hands a bad file over); the annotated copy has one
problem cell per row, in the upload's own format.
"""

from __future__ import annotations

import csv
import io

import openpyxl
import pytest
from sqlalchemy import func, select

from stopnet.db.models import Case, ImportBatch
from stopnet.reporting import columnar
from stopnet.reporting.importer import COLUMNS, PROBLEMS
from tests.pages import HTML, read_form

from .test_import import URL, row, rows_csv, upload

ANNOTATED = URL + "/annotated"

# each bad row: its overrides and the columns its problems are reported on (3 or 4 independent ones)
MIXED: list[tuple[dict[str, str], set[str]]] = [
    ({}, set()),
    (
        {
            "commodity_code": "XYZ",
            "detected_on": "2025-07-01",
            "pieces": "",
            "weight_kg": "",
            "value_amount": "50",
        },
        {"commodity_code", "detected_on", "pieces", "currency"},
    ),
    (
        {"channel": "DRONE", "origin_country": "QQ", "hs_code": "91", "weight_kg": "abc"},
        {"channel", "origin_country", "hs_code", "weight_kg"},
    ),
    (
        {
            "detected_on": "2025-06-45",
            "is_ecommerce": "maybe",
            "pieces": "-3",
            "value_amount": "5",
            "currency": "XX",
        },
        {"detected_on", "is_ecommerce", "pieces", "currency"},
    ),
    (
        {"case_reference": "", "transport_mode": "BOAT", "pieces": "", "weight_kg": ""},
        {"case_reference", "transport_mode", "pieces"},
    ),
    (
        {"detected_on": "2025-07-01", "transport_mode": "BOAT", "hs_code": "12"},
        {"detected_on", "transport_mode", "hs_code"},
    ),
]
# case columns clean, seizure cells bad: on PostgreSQL the columnar path writes the cases, then hands over
SEIZURES_ONLY: list[tuple[dict[str, str], set[str]]] = [
    ({}, set()),
    (
        {"commodity_code": "XYZ", "hs_code": "91", "pieces": "", "weight_kg": "", "value_amount": "9"},
        {"commodity_code", "hs_code", "pieces", "currency"},
    ),
    (
        {"pieces": "2.5", "weight_kg": "1,234", "nature": "FAKE", "currency": "XX", "value_amount": "1"},
        {"pieces", "weight_kg", "nature", "currency"},
    ),
]
PYDANTIC = ("should be", "Input should", "String should", "value is not", "pattern")


def _rows(spec: list[tuple[dict[str, str], set[str]]]) -> list[dict[str, str]]:
    return [row(f"R-{i}", **{"case_reference": f"R-{i}"} | change) for i, (change, _) in enumerate(spec)]


def _expected(spec: list[tuple[dict[str, str], set[str]]]) -> set[tuple[int, str]]:
    return {(i + 2, col) for i, (_, cols) in enumerate(spec) for col in cols}


@pytest.mark.parametrize("spec", [MIXED, SEIZURES_ONLY], ids=["mixed", "seizure-cells"])
def test_every_problem_of_every_row_is_reported_at_once(client, world, db, monkeypatch, spec):
    taken: list[object] = []  # what the columnar check made of the file (PostgreSQL only)
    real = columnar.check_cases

    def check_cases(*a, **kw):  # type: ignore[no-untyped-def]
        taken.append(real(*a, **kw))
        return taken[-1]

    monkeypatch.setattr(columnar, "check_cases", check_cases)
    r = upload(client, world["fr_officer"], rows_csv(_rows(spec)))
    assert r.status_code == 422, r.text
    errors = r.json()["errors"]
    assert {(e["row"], e["field"]) for e in errors} == _expected(spec)
    for e in errors:
        assert e["code"] and e["code"] != "invalid", e
        assert not any(p in e["message"] for p in PYDANTIC), e
    if db.get_bind().dialect.name == "postgresql" and spec is SEIZURES_ONLY:
        assert taken and taken[0] is not None, "the columnar path was not taken"
    assert db.scalar(select(func.count()).select_from(Case)) == 0
    assert db.scalar(select(func.count()).select_from(ImportBatch)) == 0


def _read_csv(data: bytes) -> list[list[str]]:
    return list(csv.reader(io.StringIO(data.decode("utf-8-sig"), newline="")))


def _xlsx(rows: list[dict[str, str]]) -> bytes:
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.append(list(COLUMNS))
    for r in rows:
        ws.append([r.get(c, "") for c in COLUMNS])
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def _read_xlsx(data: bytes) -> list[list[str]]:
    wb = openpyxl.load_workbook(io.BytesIO(data), read_only=True)
    return [["" if v is None else str(v) for v in r] for r in wb.worksheets[0].iter_rows(values_only=True)]


@pytest.mark.parametrize("kind", ["csv", "xlsx"])
def test_the_annotated_copy_has_one_problem_cell_per_bad_row(client, world, db, kind):
    rows = _rows(MIXED)
    data = rows_csv(rows) if kind == "csv" else _xlsx(rows)
    name = f"seizures.{kind}"
    checked = upload(client, world["fr_officer"], data, name).json()["errors"]
    r = client.post(ANNOTATED, files={"file": (name, data, "text/csv")}, headers=world["fr_officer"].headers)
    assert r.status_code == 200, r.text
    assert f'filename="seizures-problems.{kind}"' in r.headers["content-disposition"]
    assert int(r.headers["x-problems"]) == len(checked)
    table = _read_csv(r.content) if kind == "csv" else _read_xlsx(r.content)
    assert table[0] == [*COLUMNS, PROBLEMS]
    assert len(table) == len(rows) + 1
    for n, cells in enumerate(table[1:], start=2):
        assert cells[:-1] == [rows[n - 2].get(c, "") for c in COLUMNS]  # the file as it was
        expected = [e["message"] for e in checked if e["row"] == n]
        assert [p for p in cells[-1].split("\n") if p] == expected, n
    assert sum(1 for cells in table[1:] if cells[-1]) == len(MIXED) - 1  # one cell per bad row
    assert db.scalar(select(func.count()).select_from(Case)) == 0
    # the user fixes the rows in the copy and imports it back: the problems column is ignored
    fixed = [row(f"R-{i}") for i in range(len(rows))]
    back = rows_csv(fixed).decode().splitlines()
    back = [back[0] + f",{PROBLEMS}"] + [line + ',"old note"' for line in back[1:]]
    again = upload(client, world["fr_officer"], "\n".join(back).encode() + b"\n")
    assert again.status_code == 201, again.text
    assert again.json()["cases_created"] == len(rows)


def test_the_import_page_offers_the_annotated_copy(client, world, signed_in, db):
    signed_in(world["fr_officer"])
    page = client.get("/operations/TEST-OP/import", headers=HTML)
    assert 'formaction="/operations/TEST-OP/import/annotated"' in page.text
    token = read_form(page.text, "/operations/TEST-OP/import").values["csrf_token"]
    data = rows_csv(_rows(MIXED))
    r = client.post(
        "/operations/TEST-OP/import/annotated",
        files={"file": ("mine.csv", data, "text/csv")},
        data={"csrf_token": token},
    )
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/csv")
    assert sum(1 for cells in _read_csv(r.content)[1:] if cells[-1]) == len(MIXED) - 1
    # the import's own answer: one table of every problem, and the way to the annotated copy
    r = client.post(
        "/operations/TEST-OP/import",
        files={"file": ("mine.csv", data, "text/csv")},
        data={"csrf_token": token},
    )
    assert r.status_code == 422
    assert r.text.count('<tr><td class="num">') == len(_expected(MIXED))
    assert "Check only" in r.text
    unreadable = client.post(
        "/operations/TEST-OP/import/annotated",
        files={"file": ("x.csv", b"", "text/csv")},
        data={"csrf_token": token},
        headers=HTML,
    )
    assert unreadable.status_code == 422 and "empty" in unreadable.text and "<form" in unreadable.text


def test_a_header_problem_does_not_hide_the_rows_problems(client, world, db):
    """A misspelt column and a missing one are named with the problems of the rows' other cells."""
    data = rows_csv(_rows(MIXED)).decode().replace("channel", "chanel", 1).replace(",notes,", ",notes_x,", 1)
    r = upload(client, world["fr_officer"], data.encode())
    assert r.status_code == 422, r.text
    got = {(e["row"], e["field"], e["code"]) for e in r.json()["errors"]}
    assert {(1, "chanel", "unknown_column"), (1, "notes_x", "unknown_column")} <= got
    assert (1, "channel", "missing_column") in got
    rows = {(row, field) for row, field, _ in got if row != 1}
    assert rows == _expected(MIXED) - {(4, "channel")}  # the channel cells cannot be read
    assert not any(f == "channel" and row != 1 for row, f, _ in got)  # no "required" on every row


def test_an_annotated_copy_with_header_problems_imports_back_once_fixed(client, world, db):
    data = rows_csv(_rows(MIXED)).decode().replace("channel", "chanel", 1).encode()
    r = client.post(
        ANNOTATED, files={"file": ("h.csv", data, "text/csv")}, headers=world["fr_officer"].headers
    )
    assert r.status_code == 200
    table = _read_csv(r.content)
    assert table[0][-1].startswith(f"{PROBLEMS} (") and "chanel" in table[0][-1]
    # the user renames the column and fixes the rows, keeping the annotated header cell
    fixed = [[*table[0][:-1], table[0][-1]]]
    fixed[0][fixed[0].index("chanel")] = "channel"
    good = [row(f"R-{i}") for i in range(len(MIXED))]
    fixed += [[g.get(c, "") for c in COLUMNS] + ["old note"] for g in good]
    again = upload(
        client, world["fr_officer"], "\n".join(",".join(f'"{c}"' for c in line) for line in fixed).encode()
    )
    assert again.status_code == 201, again.text
