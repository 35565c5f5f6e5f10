"""Isolation: a rights holder reads only its own brands, guides, requests and seizures, never another
holder's data, a case, a case reference or any consignee personal data, in the API JSON and the pages."""

from __future__ import annotations

from .conftest import GUIDE, approve, register_brand, report_case

HTML = {"Accept": "text/html"}
SECRETS = ("Jean Dupont", "FR-0001", "pens declared as cosmetics", "Roissy")


def _setup(client, world):  # type: ignore[no-untyped-def]
    holder, officer = world["rights_holder"], world["fr_officer"]
    brand = approve(client, world, register_brand(client, holder)["id"])
    draft = client.post(
        "/api/v1/rights/guides",
        json={**GUIDE, "brand_id": brand["id"], "title": "Secret draft"},
        headers=holder.headers,
    ).json()
    case = report_case(client, officer)
    req = client.post(
        "/api/v1/rights/requests",
        json={
            "brand_id": brand["id"],
            "case_id": case["id"],
            "seizure_id": case["seizures"][0]["id"],
            "product": "pens",
            "details": "blue box",
        },
        headers=officer.headers,
    ).json()
    return brand, draft, case, req


def test_second_holder_reads_nothing_of_the_first(client, world, clock, other_holder, signed_in):
    brand, draft, case, req = _setup(client, world)
    h = other_holder.headers
    api = client
    assert api.get(f"/api/v1/rights/requests/{req['id']}", headers=h).status_code == 404
    assert api.get("/api/v1/rights/requests", headers=h).json()["total"] == 0
    assert (
        api.post(
            f"/api/v1/rights/requests/{req['id']}/answer", json={"answer": "genuine"}, headers=h
        ).status_code
        == 404
    )
    assert api.get(f"/api/v1/rights/guides/{draft['id']}", headers=h).status_code == 404
    assert api.get(f"/api/v1/rights/guides/{draft['id']}/versions", headers=h).status_code == 404
    assert api.get("/api/v1/rights/guides", params={"q": "secret"}, headers=h).json()["total"] == 0
    assert api.get(f"/api/v1/rights/brands/{brand['id']}", headers=h).status_code == 404
    assert api.get("/api/v1/rights/brands", headers=h).json() == []
    assert api.get("/api/v1/rights/seizures", headers=h).json()["total"] == 0
    figures = api.get("/api/v1/rights/outreach", headers=h).json()
    assert figures["rows"] == [] and figures["scope"] == "own_brands"
    assert api.get(f"/api/v1/rights/cases/{case['id']}/verifications", headers=h).status_code == 404
    assert api.get(f"/api/v1/cases/{case['id']}", headers=h).status_code == 404

    # the same through the pages and their JSON twins
    page = signed_in(other_holder)
    for url in (
        f"/rights/requests/{req['id']}",
        f"/rights/guides/{draft['id']}",
        f"/rights/brands/{brand['id']}",
        f"/rights/cases/{case['id']}",
    ):
        assert page.get(url, headers=HTML).status_code == 404, url
        assert page.get(url + "?format=json").status_code == 404, url
    for url in (
        "/rights",
        "/rights/requests",
        "/rights/guides",
        "/rights/brands",
        "/rights/seizures",
        "/rights/outreach",
    ):
        for r in (page.get(url, headers=HTML), page.get(url + "?format=json")):
            assert r.status_code == 200, url
            for secret in (*SECRETS, "Brand X", "Secret draft"):
                assert secret not in r.text, (url, secret)


def test_holder_sees_its_own_without_personal_data(client, world, clock, signed_in):
    brand, draft, case, req = _setup(client, world)
    holder = world["rights_holder"]
    got = client.get(f"/api/v1/rights/requests/{req['id']}", headers=holder.headers).json()
    assert got["brand"] == "Brand X" and got["case_id"] is None
    seizures = client.get("/api/v1/rights/seizures", headers=holder.headers).json()
    assert seizures["total"] == 1
    row = seizures["items"][0]
    assert set(row) == {
        "operation",
        "brand_id",
        "brand",
        "reported_brand",
        "commodity_code",
        "commodity_group",
        "pieces",
        "weight_kg",
        "detected_on",
        "country",
    }
    assert row["pieces"] == 120 and row["country"] == "FR" and row["detected_on"] == "2025-05-14"
    page = signed_in(holder)
    for url in (
        "/rights",
        "/rights/requests",
        f"/rights/requests/{req['id']}",
        "/rights/seizures",
        f"/rights/guides/{draft['id']}",
        f"/rights/brands/{brand['id']}",
        "/rights/outreach",
    ):
        for r in (page.get(url, headers=HTML), page.get(url + "?format=json")):
            assert r.status_code == 200, (url, r.text)
            for secret in SECRETS:
                assert secret not in r.text, (url, secret)
            assert f"/cases/{case['id']}" not in r.text, url
    assert "Secret draft" in page.get(f"/rights/guides/{draft['id']}", headers=HTML).text
    # cases stay closed to rights holders
    assert page.get(f"/cases/{case['id']}", headers=HTML).status_code == 404
    assert page.get(f"/rights/cases/{case['id']}", headers=HTML).status_code == 404


def test_seizures_of_private_and_draft_cases_are_not_shown(client, world, clock):
    holder = world["rights_holder"]
    approve(client, world, register_brand(client, holder)["id"])
    report_case(client, world["fr_officer"], "FR-OWN", visibility="own")
    report_case(client, world["fr_officer"], "FR-COORD", visibility="coordinator")
    report_case(client, world["fr_officer"], "FR-DRAFT", submit=False)
    assert client.get("/api/v1/rights/seizures", headers=holder.headers).json()["total"] == 0
    report_case(client, world["de_officer"], "DE-SHARED", visibility="partners")
    items = client.get("/api/v1/rights/seizures", headers=holder.headers).json()["items"]
    assert [i["country"] for i in items] == ["DE"]
    # customs and the coordinating unit do not use this holder-only list
    assert client.get("/api/v1/rights/seizures", headers=world["fr_officer"].headers).status_code == 403


def test_other_administrations_do_not_see_a_request(client, world, clock):
    _brand, _draft, case, req = _setup(client, world)
    for name in ("de_officer", "analyst_we", "partner"):
        assert (
            client.get(f"/api/v1/rights/requests/{req['id']}", headers=world[name].headers).status_code == 404
        )
    coord = client.get(f"/api/v1/rights/requests/{req['id']}", headers=world["coordinator"].headers).json()
    assert (
        coord["case_id"] == case["id"] and coord["case_reference"] is None and coord["requested_by"] is None
    )
