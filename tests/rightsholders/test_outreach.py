"""Outreach figures per brand and operation: seizures, requests sent/answered, median response time and
overdue requests, for the coordinating unit (all), each rights holder (its own) and customs (their own)."""

from __future__ import annotations

import datetime as dt

from .conftest import FRIDAY, approve, register_brand, report_case

URL = "/api/v1/rights/outreach"


def _ask(client, actor, brand_id):  # type: ignore[no-untyped-def]
    r = client.post(
        "/api/v1/rights/requests",
        json={"brand_id": brand_id, "operation": "TEST-OP", "product": "goods"},
        headers=actor.headers,
    )
    assert r.status_code == 201, r.text
    return r.json()


def _rows(client, actor, **params):  # type: ignore[no-untyped-def]
    r = client.get(URL, params=params, headers=actor.headers)
    assert r.status_code == 200, r.text
    body = r.json()
    return body, {row["brand"]: row for row in body["rows"]}


def test_figures_per_viewer(client, world, clock, other_holder):
    bx = approve(client, world, register_brand(client, world["rights_holder"])["id"])["id"]
    rf = approve(client, world, register_brand(client, other_holder, name="Runfast", aliases=[])["id"])["id"]
    report_case(client, world["fr_officer"])  # Brand X 120 pieces, Runfast 12 (shared)
    report_case(
        client,
        world["de_officer"],
        "DE-OWN",
        visibility="own",
        seizures=[{"commodity_code": "MED-WEIGHT", "brand": "BRANDX", "pieces": 5}],
    )
    report_case(client, world["ke_officer"], "KE-DRAFT", submit=False)

    answered = _ask(client, world["fr_officer"], bx)
    _ask(client, world["de_officer"], bx)
    _ask(client, world["fr_officer"], rf)
    clock.now = FRIDAY + dt.timedelta(hours=48)
    client.post(
        f"/api/v1/rights/requests/{answered['id']}/answer",
        json={"answer": "genuine"},
        headers=world["rights_holder"].headers,
    )
    clock.now = dt.datetime(2025, 6, 2, 12, tzinfo=dt.UTC)  # the two others are overdue

    body, rows = _rows(client, world["coordinator"])
    assert body["scope"] == "all" and set(rows) == {"Brand X", "Runfast"}
    x = rows["Brand X"]
    assert (x["operation"], x["owner_org"]) == ("TEST-OP", "BRAND-X")
    assert (x["seizures"], x["pieces"]) == (1, 120)  # the DE case is "own", the KE case a draft
    assert (x["requests_sent"], x["requests_answered"], x["requests_open"], x["overdue"]) == (2, 1, 1, 1)
    assert x["median_response_hours"] == 48.0 and x["answered_late"] == 0
    assert (rows["Runfast"]["seizures"], rows["Runfast"]["overdue"]) == (1, 1)
    t = body["totals"]
    assert (t["seizures"], t["requests_sent"], t["requests_answered"], t["overdue"]) == (2, 3, 1, 2)

    body, rows = _rows(client, world["rights_holder"])
    assert body["scope"] == "own_brands" and set(rows) == {"Brand X"}
    assert rows["Brand X"]["requests_sent"] == 2 and rows["Brand X"]["seizures"] == 1
    _, rows = _rows(client, other_holder)
    assert set(rows) == {"Runfast"}

    body, rows = _rows(client, world["de_officer"])
    assert body["scope"] == "own_administration"
    assert (rows["Brand X"]["seizures"], rows["Brand X"]["pieces"], rows["Brand X"]["requests_sent"]) == (
        1,
        5,
        1,
    )
    _, rows = _rows(client, world["fr_ncp"])
    assert (rows["Brand X"]["requests_sent"], rows["Runfast"]["requests_sent"]) == (1, 1)

    _, rows = _rows(client, world["coordinator"], operation="test-op")
    assert set(rows) == {"Brand X", "Runfast"}
    assert (
        client.get(URL, params={"operation": "NOPE"}, headers=world["coordinator"].headers).status_code == 404
    )
    assert client.get(URL, headers=world["partner"].headers).status_code == 403
    assert client.get(URL, headers=world["analyst_we"].headers).status_code == 403
    assert client.get(URL, headers=world["xx_officer"].headers).json()["rows"] == []
