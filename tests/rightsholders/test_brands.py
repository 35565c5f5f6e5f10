"""Brands: registration, approval by the coordinating unit, matching seizure reports, contact points."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select

from stopnet.db.models import AuditEntry, Seizure
from stopnet.rightsholders.service import brands_for_seizures, normalise_brand

from .conftest import BRAND, approve, register_brand, report_case

URL = "/api/v1/rights/brands"


def test_register_and_approve(client, world, clock, db):
    holder, coord, officer = world["rights_holder"], world["coordinator"], world["fr_officer"]
    brand = register_brand(client, holder)
    assert brand["status"] == "pending" and brand["owner_org"] == "BRAND-X"
    assert brand["aliases"] == ["Brand X", "Brand-X"]  # "BrandX" is the same key as "Brand X"
    assert [t["registration_number"] for t in brand["trademarks"]] == ["018000001", "1500001"]
    assert brand["representatives"][0]["firm"] == "IP Counsel LLP"
    assert client.post(URL, json=BRAND, headers=holder.headers).status_code == 409  # same name again
    for name in ("fr_officer", "coordinator", "partner"):
        assert (
            client.post(URL, json={**BRAND, "name": "Other"}, headers=world[name].headers).status_code == 403
        )
    bad = client.post(URL, json={**BRAND, "name": "No marks", "trademarks": []}, headers=holder.headers)
    assert bad.status_code == 422
    bad = client.post(URL, json={**BRAND, "name": "Bad HS", "hs_codes": ["30a"]}, headers=holder.headers)
    assert bad.status_code == 422

    # pending: officers do not see it; the coordinating unit does
    assert client.get(f"{URL}/{brand['id']}", headers=officer.headers).status_code == 404
    assert client.get(URL, headers=officer.headers).json() == []
    assert [b["id"] for b in client.get(URL, params={"status": "pending"}, headers=coord.headers).json()] == [
        brand["id"]
    ]
    # only the coordinating unit decides
    for name in ("rights_holder", "fr_ncp", "admin"):
        r = client.post(
            f"{URL}/{brand['id']}/decision", json={"decision": "approved"}, headers=world[name].headers
        )
        assert r.status_code == (200 if name == "admin" else 403), name
        if name == "admin":
            client.post(
                f"{URL}/{brand['id']}/decision", json={"decision": "rejected"}, headers=world[name].headers
            )
    out = approve(client, world, brand["id"])
    assert out["status"] == "approved" and out["decided_at"].startswith("2025-05-16")
    assert (
        client.post(
            f"{URL}/{brand['id']}/decision", json={"decision": "approved"}, headers=coord.headers
        ).status_code
        == 409
    )
    assert client.get(f"{URL}/{brand['id']}", headers=officer.headers).json()["name"] == "Brand X"
    decisions = db.scalars(select(AuditEntry).where(AuditEntry.action == "brand.decide")).all()
    assert [(e.details["from"], e.details["decision"]) for e in decisions] == [
        ("pending", "approved"),
        ("approved", "rejected"),
        ("rejected", "approved"),
    ]
    assert decisions[-1].actor_label.endswith(":coordinator token")


def test_alias_conflicts_shown_to_the_coordinator(client, world, clock, other_holder):
    approve(client, world, register_brand(client, world["rights_holder"])["id"])
    copycat = register_brand(client, other_holder, name="Brand  x", aliases=["B-X"])
    seen = client.get(f"{URL}/{copycat['id']}", headers=world["coordinator"].headers).json()
    assert [(c["alias"], c["owner_org"]) for c in seen["alias_conflicts"]] == [("Brand  x", "BRAND-X")]
    own = client.get(f"{URL}/{copycat['id']}", headers=other_holder.headers).json()
    assert own["alias_conflicts"] == []  # never tells a holder about another holder's brands


def test_normalise_brand():
    assert (
        normalise_brand(" Brand  X ") == normalise_brand("BRANDX") == normalise_brand("brand\tx") == "brandx"
    )
    assert normalise_brand("ＢＲＡＮＤ Ｘ") == "brandx"  # full-width letters (NFKC)
    assert normalise_brand("Straße") == normalise_brand("STRASSE")
    assert normalise_brand("") == ""


def test_brands_for_seizures(client, world, clock, other_holder, db):
    bx = register_brand(client, world["rights_holder"])
    report_case(client, world["fr_officer"])  # seizures "Brand X" and "Runfast"
    lines = [
        {"commodity_code": "MED-WEIGHT", "brand": "  BRANDX ", "pieces": 3},
        {"commodity_code": "MED-WEIGHT", "brand": "brand-x", "pieces": 4},
        {"commodity_code": "IPR-FOOT", "brand": "Brandy", "pieces": 5},
        {"commodity_code": "IPR-FOOT", "brand": "", "pieces": 6},
    ]
    report_case(client, world["de_officer"], "DE-0001", seizures=lines)
    seizures = db.scalars(select(Seizure).order_by(Seizure.id)).all()
    assert all(v == [] for v in brands_for_seizures(db, seizures).values())  # pending brands never match
    approve(client, world, bx["id"])
    rf = approve(client, world, register_brand(client, other_holder, name="Runfast", aliases=[])["id"])
    db.expire_all()
    found = {
        s.brand: [b.name for b in bs]
        for s, bs in zip(seizures, brands_for_seizures(db, seizures).values(), strict=True)
    }
    assert found == {
        "Brand X": ["Brand X"],
        "Runfast": ["Runfast"],
        "BRANDX": ["Brand X"],
        "brand-x": ["Brand X"],
        "Brandy": [],
        "": [],
    }
    assert rf["status"] == "approved"


def test_contact_points_and_staleness(client, world, clock, other_holder):
    holder, officer = world["rights_holder"], world["fr_officer"]
    brand = approve(client, world, register_brand(client, holder)["id"])
    contact = {
        "territory": "fr",
        "name": "Brand X France",
        "email": "fr@brandx.test",
        "languages": "fr, en",
        "response_hours": 24,
        "channel": "e-mail",
    }
    r = client.post(f"{URL}/{brand['id']}/contacts", json=contact, headers=holder.headers)
    assert r.status_code == 201, r.text
    c = r.json()
    assert c["territory"] == "FR" and c["stale"] is False
    world_c = client.post(
        f"{URL}/{brand['id']}/contacts",
        json={"name": "Brand X global", "phone": "+41 1"},
        headers=holder.headers,
    ).json()
    assert world_c["territory"] == "*"
    assert (
        client.post(f"{URL}/{brand['id']}/contacts", json={"name": "x"}, headers=holder.headers).status_code
        == 422
    )
    for actor in (officer, other_holder):
        r = client.post(f"{URL}/{brand['id']}/contacts", json=contact, headers=actor.headers)
        assert r.status_code in (403, 404)
    # 181 days later the contact point is flagged stale, for officers and the holder alike
    clock.now += dt.timedelta(days=181)
    seen = client.get(f"{URL}/{brand['id']}", headers=officer.headers).json()
    assert [(x["territory"], x["stale"]) for x in seen["contacts"]] == [("FR", True), ("*", True)]
    assert client.get(URL, headers=holder.headers).json()[0]["stale_contacts"] == 2
    assert (
        client.post(f"/api/v1/rights/contacts/{c['id']}/confirm", headers=other_holder.headers).status_code
        == 404
    )
    r = client.post(f"/api/v1/rights/contacts/{c['id']}/confirm", headers=holder.headers)
    assert r.status_code == 200 and r.json()["stale"] is False
    r = client.put(
        f"/api/v1/rights/contacts/{world_c['id']}", json={**contact, "territory": "*"}, headers=holder.headers
    )
    assert r.status_code == 200 and r.json()["stale"] is False and r.json()["email"] == "fr@brandx.test"
    assert (
        client.delete(f"/api/v1/rights/contacts/{world_c['id']}", headers=holder.headers).status_code == 204
    )
    assert len(client.get(f"{URL}/{brand['id']}", headers=officer.headers).json()["contacts"]) == 1
