"""Bulk import of CSV and XLSX: all-or-nothing, every error named, idempotent."""

from __future__ import annotations

import csv
import io

import openpyxl
import pytest
from sqlalchemy import func, select

from stopnet.db.models import Case, ImportBatch, Seizure
from stopnet.db.models.sharing import OutboxEvent
from stopnet.reporting import importer
from stopnet.reporting.importer import COLUMNS, template_csv

URL = "/api/v1/operations/TEST-OP/imports"


def rows_csv(rows: list[dict[str, str]], delimiter: str = ",") -> bytes:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=COLUMNS, delimiter=delimiter, lineterminator="\n")
    w.writeheader()
    for r in rows:
        w.writerow(r)
    return buf.getvalue().encode()


def row(ref: str, **kw: str) -> dict[str, str]:
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


def upload(client, actor, data: bytes, name: str = "seizures.csv"):  # type: ignore[no-untyped-def]
    return client.post(URL, files={"file": (name, data, "text/csv")}, headers=actor.headers)


def count(db, model) -> int:  # type: ignore[no-untyped-def]
    return db.scalar(select(func.count()).select_from(model))


def test_template_is_importable(client, world, db):
    r = upload(client, world["fr_officer"], template_csv().replace("2025-05-14", "2025-05-14").encode())
    assert r.status_code == 201, r.text
    assert r.json()["cases_created"] == 1


def test_import_groups_rows_into_cases(client, world, db):
    data = rows_csv([row("A-1"), row("A-1", commodity_code="IPR-FOOT", pieces="4"), row("A-2", pieces="7")])
    r = upload(client, world["fr_officer"], data)
    assert r.status_code == 201, r.text
    assert r.json() | {"batch_id": 0, "sha256": ""} == {
        "batch_id": 0,
        "filename": "seizures.csv",
        "sha256": "",
        "rows": 3,
        "cases_created": 2,
        "seizures_created": 3,
        "rows_unchanged": 0,
        "already_imported": False,
    }
    assert count(db, Case) == 2
    assert count(db, Seizure) == 3
    assert db.scalar(select(func.sum(Seizure.pieces))) == 21
    lines = db.scalars(
        select(Seizure.line_no).join(Case).where(Case.reference == "A-1").order_by(Seizure.line_no)
    ).all()
    assert lines == [1, 2]


def test_imported_cases_reach_the_live_feed_and_a_large_import_is_announced_once(
    client, world, db, monkeypatch
):
    data = rows_csv([row("L-1"), row("L-1", commodity_code="IPR-FOOT", pieces="4"), row("L-2")])
    assert upload(client, world["fr_officer"], data).status_code == 201
    events = db.execute(select(OutboxEvent.kind, OutboxEvent.payload).order_by(OutboxEvent.id)).all()
    assert [k for k, _ in events] == ["case.created", "case.created"]
    first = events[0][1]["case"]
    assert (first["reference"], [s["commodity_code"] for s in first["seizures"]]) == (
        "L-1",
        ["IPR-CLOTH", "IPR-FOOT"],
    )
    # above the threshold: one counts-only event to the importing administration
    monkeypatch.setattr(importer, "FEED_CASE_EVENTS", 2)
    big = rows_csv([row(f"B-{i}") for i in range(3)])
    assert upload(client, world["fr_officer"], big, "big.csv").status_code == 201
    last = db.execute(select(OutboxEvent).order_by(OutboxEvent.id.desc()).limit(1)).scalar_one()
    assert last.kind == "import.completed" and last.payload["import"]["cases"] == 3
    assert last.org_ids == [world["fr_officer"].principal.org_id]
    assert db.scalar(select(func.count()).select_from(OutboxEvent)) == 3


def test_same_file_twice_creates_nothing(client, world, db):
    data = rows_csv([row("A-1"), row("A-2")])
    assert upload(client, world["fr_officer"], data).status_code == 201
    again = upload(client, world["fr_officer"], data)
    assert again.status_code == 200
    assert again.json()["already_imported"] is True
    assert count(db, Case) == 2
    assert count(db, ImportBatch) == 1
    # another file holding the same rows plus one new row: only the new case is created
    more = rows_csv([row("A-2"), row("A-1"), row("A-3")])
    r = upload(client, world["fr_officer"], more, "more.csv")
    assert r.status_code == 201, r.text
    assert r.json()["cases_created"] == 1
    assert r.json()["rows_unchanged"] == 2
    assert count(db, Case) == 3


def test_changed_existing_case_is_refused(client, world, db):
    upload(client, world["fr_officer"], rows_csv([row("A-1")]))
    r = upload(client, world["fr_officer"], rows_csv([row("A-1", pieces="99")]), "changed.csv")
    assert r.status_code == 422
    err = r.json()["errors"][0]
    assert err["row"] == 2 and err["field"] == "case_reference"
    assert "correction" in err["message"]
    assert db.scalar(select(Seizure.pieces)) == 10


def test_all_errors_reported_and_nothing_imported(client, world, db):
    data = rows_csv(
        [
            row("OK-1"),
            row("B-1", pieces="-5"),
            row("B-2", commodity_code="XYZ"),
            row("B-3", detected_on="2025-07-01"),
            row("B-4", pieces="ten"),
            row("B-5", origin_country="QQ"),
            row("B-6", channel="DRONE"),
            row("OK-1"),
        ]
    )
    r = upload(client, world["fr_officer"], data)
    assert r.status_code == 422
    body = r.json()
    assert "nothing was imported" in body["detail"]
    got = {(e["row"], e["field"]) for e in body["errors"]}
    assert {
        (3, "pieces"),
        (4, "commodity_code"),
        (5, "detected_on"),
        (6, "pieces"),
        (7, "origin_country"),
        (8, "channel"),
        (9, "row"),
    } <= got
    dup = next(e for e in body["errors"] if e["row"] == 9)
    assert "duplicate of row 2" in dup["message"]
    assert count(db, Case) == 0
    assert count(db, ImportBatch) == 0


def test_rows_of_one_case_must_agree(client, world, db):
    r = upload(client, world["fr_officer"], rows_csv([row("A-1"), row("A-1", channel="EXPRESS", pieces="3")]))
    assert r.status_code == 422
    e = r.json()["errors"][0]
    assert (e["row"], e["field"]) == (3, "channel")
    assert "row 2" in e["message"]


@pytest.mark.parametrize(
    ("data", "needle"),
    [
        (b"", "empty"),
        (b"   \n", "empty"),
        (",".join(COLUMNS).encode() + b"\n", "no data rows"),
        (b"case_reference;detected_on\nx;y\n", "required column is missing"),
        (b"case_reference,detected_on,colour\n", "unknown column"),
        ("case_reference,détecté\nA,é\n".encode("latin-1"), "not UTF-8"),
        (b"PK\x03\x04garbage", "XLSX"),
    ],
)
def test_unreadable_files_get_a_clear_error(client, world, db, data, needle):
    r = upload(client, world["fr_officer"], data)
    assert r.status_code == 422, r.text
    assert needle in r.text
    assert count(db, Case) == 0


def test_semicolon_csv_with_bom_and_utf16(client, world, db):
    data = b"\xef\xbb\xbf" + rows_csv([row("S-1", brand="Größe")], delimiter=";")
    assert upload(client, world["fr_officer"], data).status_code == 201
    utf16 = rows_csv([row("U-1")]).decode().encode("utf-16")
    assert upload(client, world["fr_officer"], utf16, "u16.csv").status_code == 201
    assert db.scalar(select(Seizure.brand).join(Case).where(Case.reference == "S-1")) == "Größe"


def test_oversized_file_refused(client, world, app, db):
    app.state.settings.max_upload_bytes = 1000
    r = upload(client, world["fr_officer"], rows_csv([row(f"Z-{i}") for i in range(50)]))
    assert r.status_code == 413
    assert count(db, Case) == 0


def test_wrong_file_type_refused(client, world):
    r = client.post(
        URL,
        files={"file": ("evil.exe", b"MZ...", "application/octet-stream")},
        headers=world["fr_officer"].headers,
    )
    assert r.status_code == 422
    assert "csv" in r.text.lower()


def test_xlsx_import(client, world, db):
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.append(list(COLUMNS))
    import datetime as dt

    for ref in ("X-1", "X-2"):
        r = row(ref)
        values = [r.get(c, "") for c in COLUMNS]
        values[COLUMNS.index("detected_on")] = dt.datetime(2025, 5, 15)
        values[COLUMNS.index("pieces")] = 25
        values[COLUMNS.index("weight_kg")] = 2.5
        ws.append(values)
    buf = io.BytesIO()
    wb.save(buf)
    r = client.post(
        URL,
        files={
            "file": (
                "s.xlsx",
                buf.getvalue(),
                "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            )
        },
        headers=world["fr_officer"].headers,
    )
    assert r.status_code == 201, r.text
    assert r.json()["seizures_created"] == 2
    assert db.scalar(select(func.sum(Seizure.pieces))) == 50


def test_only_participating_reporters_import(client, world):
    data = rows_csv([row("A-1")])
    assert upload(client, world["xx_officer"], data).status_code == 404
    assert upload(client, world["partner"], data).status_code == 403
