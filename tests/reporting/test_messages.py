"""Every field of a case and its seizures, given a bad value, is refused in a person's words.

The same bad values go through the bulk import, the case form and the API: each field is named by its
label (never its machine name) with what was found and what is expected, pydantic's own phrases never
show, and the API gives each problem a stable ``code`` beside the field's machine name. Dates written
``21/05/2025`` and decimals written ``2,35`` are read when unambiguous, refused naming the format when not.
"""

from __future__ import annotations

import html
import re

import pytest
from sqlalchemy import func, select

from stopnet.db.models import Case, Seizure
from stopnet.reporting.schemas import CaseCreate, SeizureIn
from tests.conftest import case_payload
from tests.pages import HTML, read_form
from tests.web.test_pages import NEW, fill_new_case

from .test_import import row, rows_csv, upload

PYDANTIC = ("should be", "Input should", "String should", "value is not", "pattern", "Value error")
MACHINE = sorted(
    {n for n in [*CaseCreate.model_fields, *SeizureIn.model_fields, "case_reference"] if "_" in n}
)
BAD_CASE = {
    "reference": "A B",
    "detected_on": "2025-13-45",
    "office": "o" * 201,
    "place": "p" * 201,
    "transport_mode": "BOAT",
    "is_ecommerce": "maybe",
    "channel": "DRONE",
    "departure_country": "QQ",
    "origin_country": "Q1",
    "destination_country": "ZZ",
    "transit_countries": "AE,QQ",
    "detection_method": "PSYCHIC",
    "concealment": "INVISIBLE",
    "platform_type": "BLOG",
    "platform_name": "n" * 201,
    "consignee_name": "c" * 201,
    "visibility": "everyone",
    "notes": "x" * 10_001,
}
BAD_SEIZURE = {
    "commodity_code": "XYZ",
    "description": "d" * 2001,
    "brand": "b" * 121,
    "rights_holder": "r" * 201,
    "hs_code": "91",
    "pieces": "ten",
    "weight_kg": "2.3456",
    "value_amount": "abc",
    "currency": "XX",
    "infringement_type": "THEFT",
    "nature": "FAKE",
}


def readable(messages: list[str]) -> None:
    assert messages
    for m in messages:
        assert not any(p in m for p in PYDANTIC), m
        assert not any(re.search(rf"\b{name}\b", m) for name in MACHINE), m
        assert ":" in m and m.split(":", 1)[1].strip(), m  # "Label: what is wrong"


def test_import_names_every_bad_field_readably(client, world, db):
    cells = {("case_reference" if k == "reference" else k): v for k, v in BAD_CASE.items()} | BAD_SEIZURE
    cells["notes"] = "x" * 10_000  # (a longer cell is refused as too long for any column)
    r = upload(client, world["fr_officer"], rows_csv([row("R-1", **cells)]))
    assert r.status_code == 422, r.text
    errors = r.json()["errors"]
    fields = {e["field"] for e in errors}
    expected = set(cells) - {"notes"}
    assert expected <= fields, expected - fields
    readable([e["message"] for e in errors])
    hs = next(e for e in errors if e["field"] == "hs_code")
    assert hs["message"] == "HS code: '91' has 2 digits; give 4 to 10 digits, e.g. 3004"
    assert hs["code"] == "bad_format" and hs["value"] == "91"


def test_the_form_names_every_bad_field_readably(client, world, signed_in, db):
    signed_in(world["fr_officer"])
    data = fill_new_case(client.get(NEW, headers=HTML).text)
    data |= {k: v for k, v in BAD_CASE.items() if k != "is_ecommerce"}  # (a checkbox: yes or no)
    data |= {f"s-0-{k}": v for k, v in BAD_SEIZURE.items()}
    r = client.post(NEW, data=data, headers=HTML)
    assert r.status_code == 422
    summary = r.text[
        r.text.index('id="form-errors"') : r.text.index("</div>", r.text.index('id="form-errors"'))
    ]
    anchors = set(re.findall(r'<a href="#f-([\w-]+)">', summary))
    expected = {k for k in BAD_CASE if k != "is_ecommerce"} | {f"s-0-{k}" for k in BAD_SEIZURE}
    assert expected <= anchors, expected - anchors
    readable([html.unescape(m) for m in re.findall(r'<a href="#f-[\w-]+">([^<]*)</a>', summary)])
    assert read_form(r.text, NEW).values["s-0-hs_code"] == "91"  # what was typed is kept
    assert db.scalar(select(func.count()).select_from(Case)) == 0


def test_the_api_names_every_bad_field_with_a_code(client, world, db):
    body = case_payload(**{k: v for k, v in BAD_CASE.items() if k != "transit_countries"})
    body["transit_countries"] = ["AE", "QQ"]
    body["seizures"] = [BAD_SEIZURE]
    r = client.post("/api/v1/operations/TEST-OP/cases", json=body, headers=world["fr_officer"].headers)
    assert r.status_code == 422, r.text
    errors = r.json()["errors"]
    by_field = {e["field"]: e for e in errors}
    expected = set(BAD_CASE) | {f"seizures.0.{k}" for k in BAD_SEIZURE}
    assert expected <= set(by_field), expected - set(by_field)
    readable([e["message"] for e in errors])
    assert all(e["code"] not in ("", "invalid") for e in errors), errors
    assert by_field["seizures.0.pieces"]["code"] == "not_a_whole_number"
    assert by_field["detected_on"]["code"] == "not_a_date"
    assert by_field["channel"]["code"] == "unknown_code"
    assert by_field["office"]["code"] == "too_long"
    # a body that is not even an object: still words, not pydantic's
    r = client.post("/api/v1/operations/TEST-OP/cases", json=[1], headers=world["fr_officer"].headers)
    assert r.status_code == 422
    readable([e["message"] for e in r.json()["errors"]])


@pytest.mark.parametrize(
    ("cells", "stored"),
    [
        ({"detected_on": "21/05/2025", "weight_kg": "2,35"}, ("2025-05-21", "2.350")),
        ({"detected_on": "2025/05/21", "weight_kg": "0,125"}, ("2025-05-21", "0.125")),
        ({"detected_on": "21.05.2025", "weight_kg": "1.234,5"}, ("2025-05-21", "1234.500")),
    ],
)
def test_european_dates_and_decimal_commas_are_read_when_unambiguous(client, world, db, cells, stored):
    r = upload(client, world["fr_officer"], rows_csv([row("EU-1", **cells)]))
    assert r.status_code == 201, r.text
    case = db.scalars(select(Case)).one()
    weight = db.scalars(select(Seizure.weight_kg)).one()
    assert (case.detected_on.isoformat(), f"{weight:.3f}") == stored


def test_ambiguous_dates_and_numbers_are_refused_naming_the_format(client, world, signed_in, db):
    r = upload(
        client, world["fr_officer"], rows_csv([row("EU-1", detected_on="05/06/2025", weight_kg="1,234")])
    )
    assert r.status_code == 422
    by_field = {e["field"]: e for e in r.json()["errors"]}
    assert by_field["detected_on"]["code"] == "ambiguous_date"
    assert "YYYY-MM-DD, e.g. 2025-06-05" in by_field["detected_on"]["message"]
    assert by_field["weight_kg"]["code"] == "ambiguous_number"
    assert "1234 or 1.234" in by_field["weight_kg"]["message"]
    readable([e["message"] for e in r.json()["errors"]])
    # the form reads them the same way
    signed_in(world["fr_officer"])
    data = fill_new_case(client.get(NEW, headers=HTML).text) | {
        "detected_on": "21/05/2025",
        "s-0-weight_kg": "2,35",
    }
    ok = client.post(NEW, data=data, headers=HTML, follow_redirects=False)
    assert ok.status_code == 303, ok.text
    assert db.scalars(select(Case.detected_on)).one().isoformat() == "2025-05-21"
