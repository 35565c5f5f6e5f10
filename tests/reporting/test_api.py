"""The reporting API over real HTTP (ASGI) against a real database built from the migrations."""

from __future__ import annotations

from decimal import Decimal

from sqlalchemy import func, select

from stopnet.db.models import AuditEntry, Case, CaseVersion, Seizure
from tests.conftest import case_payload

URL = "/api/v1/operations/TEST-OP/cases"


def create(client, actor, **kw):  # type: ignore[no-untyped-def]
    return client.post(URL, json=case_payload(**kw), headers=actor.headers)


def test_create_and_read_case(client, world):
    r = create(client, world["fr_officer"])
    assert r.status_code == 201, r.text
    body = r.json()
    assert r.headers["location"] == f"/api/v1/cases/{body['id']}"
    assert body["status"] == "submitted"
    assert body["version"] == 1
    assert body["reporting_org"] == "FR-CUS"
    assert body["region_code"] == "EUR"
    assert body["visibility"] == "participants"  # the operation's default
    assert [s["line_no"] for s in body["seizures"]] == [1, 2]
    assert body["seizures"][0]["commodity_group"] == "medicines"
    assert body["total_pieces"] == 132
    assert Decimal(body["total_weight_kg"]) == Decimal("12.850")
    got = client.get(f"/api/v1/cases/{body['id']}", headers=world["fr_officer"].headers).json()
    assert got["consignee_name"] == "Jean Dupont"
    other = client.get(f"/api/v1/cases/{body['id']}", headers=world["de_officer"].headers)
    assert other.status_code == 200
    assert other.json()["consignee_name"] is None  # personal data stays with the reporter


def test_openapi_lists_reporting_routes(client):
    spec = client.get("/openapi.json").json()
    for path in (
        "/api/v1/operations/{code}/cases",
        "/api/v1/cases/{case_id}",
        "/api/v1/cases/{case_id}/corrections",
        "/api/v1/cases/{case_id}/validate",
        "/api/v1/operations/{code}/imports",
    ):
        assert path in spec["paths"], path


def test_unauthenticated_and_non_participant_refused(client, world):
    assert client.get(URL).status_code == 401
    assert client.get(URL, headers={"Authorization": "Bearer stn_bad_token"}).status_code == 401
    r = create(client, world["xx_officer"])
    assert r.status_code == 404  # the operation is not theirs to see
    for name in ("partner", "rights_holder", "analyst_we", "coordinator"):
        assert create(client, world[name]).status_code == 403, name


def test_bad_input_names_the_field(client, world):
    h = world["fr_officer"].headers
    cases = {
        "pieces": case_payload(seizures=[{"commodity_code": "IPR-FOOT", "pieces": -3}]),
        "commodity_code": case_payload(seizures=[{"commodity_code": "NOPE", "pieces": 3}]),
        "channel": case_payload(channel="CARRIER_PIGEON"),
        "origin_country": case_payload(origin_country="ZZ"),
        "detected_on": case_payload(detected_on="not-a-date"),
        "is_ecommerce": case_payload(is_ecommerce="perhaps"),
    }
    for fieldname, body in cases.items():
        r = client.post(URL, json=body, headers=h)
        assert r.status_code == 422, (fieldname, r.text)
        fields = [e["field"] for e in r.json()["errors"]]
        assert any(fieldname in f for f in fields), (fieldname, fields)
    outside = client.post(URL, json=case_payload(detected_on="2025-06-02"), headers=h)
    assert outside.status_code == 422
    assert outside.json()["errors"][0]["field"] == "detected_on"
    assert "outside the operation" in outside.json()["errors"][0]["message"]
    empty = client.post(URL, json=case_payload(seizures=[{"commodity_code": "IPR-FOOT"}]), headers=h)
    assert empty.status_code == 422
    assert "no pieces and no weight" in empty.text


def test_bad_input_stores_nothing(client, world, db):
    create(client, world["fr_officer"], reference="GOOD-1")
    client.post(
        URL, json=case_payload(reference="BAD-1", origin_country="ZZ"), headers=world["fr_officer"].headers
    )
    assert db.scalar(select(func.count()).select_from(Case)) == 1
    assert db.scalar(select(func.count()).select_from(Seizure)) == 2


def test_duplicate_reference_conflicts(client, world):
    assert create(client, world["fr_officer"]).status_code == 201
    r = create(client, world["fr_officer"])
    assert r.status_code == 409
    assert "already exists" in r.json()["detail"]
    assert create(client, world["de_officer"]).status_code == 201  # references are per administration


def test_idempotency_key_makes_retries_safe(client, world, db):
    h = {**world["fr_officer"].headers, "Idempotency-Key": "req-123"}
    first = client.post(URL, json=case_payload(), headers=h)
    second = client.post(URL, json=case_payload(), headers=h)
    assert first.status_code == second.status_code == 201
    assert second.headers.get("idempotent-replayed") == "true"
    assert first.json()["id"] == second.json()["id"]
    assert db.scalar(select(func.count()).select_from(Case)) == 1
    changed = client.post(URL, json=case_payload(office="elsewhere"), headers=h)
    assert changed.status_code == 409
    other_org = client.post(
        URL, json=case_payload(), headers={**world["de_officer"].headers, "Idempotency-Key": "req-123"}
    )
    assert other_org.status_code == 201  # keys are per organisation


def test_correction_is_versioned_never_overwritten(client, world, db):
    h = world["fr_officer"].headers
    case = create(client, world["fr_officer"]).json()
    body = case_payload()
    body.pop("reference")
    body["seizures"][0]["pieces"] = 150
    body.update(expected_version=1, reason="recount at the office")
    r = client.post(f"/api/v1/cases/{case['id']}/corrections", json=body, headers=h)
    assert r.status_code == 200, r.text
    assert r.json()["version"] == 2
    assert r.json()["seizures"][0]["pieces"] == 150
    assert r.json()["seizures"][0]["id"] == case["seizures"][0]["id"]  # same seizure, corrected
    stale = client.post(f"/api/v1/cases/{case['id']}/corrections", json=body, headers=h)
    assert stale.status_code == 409  # expected_version 1 is stale now
    hist = client.get(f"/api/v1/cases/{case['id']}/history", headers=h).json()
    assert [v["version"] for v in hist] == [1, 2]
    assert hist[0]["snapshot"]["seizures"][0]["pieces"] == 120
    assert hist[1]["snapshot"]["seizures"][0]["pieces"] == 150
    assert hist[1]["reason"] == "recount at the office"
    assert db.scalar(select(func.count()).select_from(CaseVersion)) == 2
    de = client.post(
        f"/api/v1/cases/{case['id']}/corrections",
        json={**body, "expected_version": 2},
        headers=world["de_officer"].headers,
    )
    assert de.status_code == 403


def test_draft_submit_validate_flow(client, world):
    fr, ncp = world["fr_officer"], world["fr_ncp"]
    case = client.post(URL, json=case_payload(submit=False), headers=fr.headers).json()
    assert case["status"] == "draft"
    # nobody else sees a draft
    assert client.get(f"/api/v1/cases/{case['id']}", headers=world["de_officer"].headers).status_code == 404
    assert client.get(f"/api/v1/cases/{case['id']}", headers=world["coordinator"].headers).status_code == 404
    assert (
        client.post(
            f"/api/v1/cases/{case['id']}/validate", json={"expected_version": 1}, headers=ncp.headers
        ).status_code
        == 409
    )
    sub = client.post(f"/api/v1/cases/{case['id']}/submit", json={"expected_version": 1}, headers=fr.headers)
    assert sub.json()["status"] == "submitted"
    assert (
        client.post(
            f"/api/v1/cases/{case['id']}/validate", json={"expected_version": 2}, headers=fr.headers
        ).status_code
        == 403
    )
    assert (
        client.post(
            f"/api/v1/cases/{case['id']}/validate",
            json={"expected_version": 2},
            headers=world["de_ncp"].headers,
        ).status_code
        == 403
    )
    val = client.post(
        f"/api/v1/cases/{case['id']}/validate", json={"expected_version": 2}, headers=ncp.headers
    )
    assert val.status_code == 200
    assert val.json()["status"] == "validated"
    # a correction after validation sends the case back for validation
    body = case_payload()
    body.pop("reference")
    body.update(expected_version=3, reason="brand corrected", notes="updated")
    corr = client.post(f"/api/v1/cases/{case['id']}/corrections", json=body, headers=fr.headers).json()
    assert corr["status"] == "submitted"
    assert corr["version"] == 4
    coord = client.post(
        f"/api/v1/cases/{case['id']}/validate",
        json={"expected_version": 4},
        headers=world["coordinator"].headers,
    )
    assert coord.json()["status"] == "validated"


def test_list_filters_and_paging(client, world):
    fr, de, ke = world["fr_officer"], world["de_officer"], world["ke_officer"]
    for i in range(7):
        create(client, fr, reference=f"FR-{i}", detected_on=f"2025-05-{12 + i}")
    create(
        client,
        de,
        reference="DE-1",
        channel="POSTAL",
        seizures=[{"commodity_code": "IPR-CLOTH", "pieces": 40}],
    )
    create(
        client,
        ke,
        reference="KE-1",
        is_ecommerce=False,
        channel="PASSENGER",
        seizures=[{"commodity_code": "OTH-COSM", "pieces": 5}],
    )
    h = world["coordinator"].headers
    all_ = client.get(URL, headers=h).json()
    assert all_["total"] == 9
    page = client.get(URL, params={"page_size": 4, "page": 3}, headers=h).json()
    assert page["total"] == 9 and len(page["items"]) == 1
    assert (
        client.get(URL, params={"page_size": 4}, headers=h).json()["items"][0]["detected_on"] >= "2025-05-14"
    )
    assert client.get(URL, params={"reporting_org": "DE-CUS"}, headers=h).json()["total"] == 1
    assert client.get(URL, params={"region": "ESA"}, headers=h).json()["total"] == 1
    assert client.get(URL, params={"channel": "POSTAL"}, headers=h).json()["total"] == 1
    assert client.get(URL, params={"is_ecommerce": "false"}, headers=h).json()["total"] == 1
    assert client.get(URL, params={"commodity_code": "IPR-CLOTH"}, headers=h).json()["total"] == 1
    assert client.get(URL, params={"commodity_group": "medicines"}, headers=h).json()["total"] == 7
    assert (
        client.get(URL, params={"date_from": "2025-05-15", "date_to": "2025-05-16"}, headers=h).json()[
            "total"
        ]
        == 2
    )
    assert client.get(URL, params={"q": "runfast"}, headers=h).json()["total"] == 7
    bad = client.get(URL, params={"date_from": "yesterday"}, headers=h)
    assert bad.status_code == 422


def test_text_search_matches_percent_and_underscore_literally(client, world):
    """``%`` and ``_`` are LIKE wildcards: a search for them finds them, not every case."""
    fr, h = world["fr_officer"], world["coordinator"].headers
    create(client, fr, reference="FR-PCT", notes="sold at 50% off")
    create(client, fr, reference="FR-5000", notes="5000 pieces, 50 boxes")
    create(client, fr, reference="FR_UNDER", notes="a_b written with an underscore")
    create(client, fr, reference="FR-PLAIN", notes="a-b and a.b, no underscore")
    create(client, fr, reference="FR-BACKSLASH", notes="path C:\\stock\\50")

    def refs(q: str) -> set[str]:
        r = client.get(URL, params={"q": q}, headers=h)
        assert r.status_code == 200, r.text
        return {c["reference"] for c in r.json()["items"]}

    assert refs("50%") == {"FR-PCT"}
    assert refs("%") == {"FR-PCT"}
    assert refs("a_b") == {"FR_UNDER"}
    assert refs("_") == {"FR_UNDER"}
    assert refs("r_u") == {"FR_UNDER"}  # in the reference
    assert refs("\\") == {"FR-BACKSLASH"}
    assert refs("50") == {"FR-PCT", "FR-5000", "FR-BACKSLASH"}


def test_visibility_levels_on_list_and_read(client, world):
    fr = world["fr_officer"]
    ids = {}
    for vis in ("own", "participants", "partners", "coordinator"):
        ids[vis] = create(client, fr, reference=f"V-{vis}", visibility=vis).json()["id"]

    def seen(name: str) -> set[str]:
        items = client.get(URL, headers=world[name].headers).json()["items"]
        return {c["visibility"] for c in items}

    assert seen("fr_officer") == {"own", "participants", "partners", "coordinator"}
    assert seen("de_officer") == {"participants", "partners"}
    assert seen("coordinator") == {"participants", "partners", "coordinator"}
    assert seen("partner") == {"partners"}
    assert seen("analyst_we") == {"participants", "partners"}  # France is in the EUR region
    assert seen("analyst_esa") == set()
    assert seen("rights_holder") == set()
    for vis, case_id in ids.items():
        r = client.get(f"/api/v1/cases/{case_id}", headers=world["de_officer"].headers)
        assert r.status_code == (200 if vis in ("participants", "partners") else 404), vis


def test_restricted_read_is_audited(client, world, db):
    case_id = create(client, world["fr_officer"], visibility="coordinator").json()["id"]
    assert client.get(f"/api/v1/cases/{case_id}", headers=world["coordinator"].headers).status_code == 200
    actions = db.scalars(select(AuditEntry.action).order_by(AuditEntry.id)).all()
    assert actions.count("case.create") == 1
    assert actions[-1] == "case.read_restricted"


def test_token_scopes_are_enforced(client, world, db):
    from stopnet.access.service import create_token
    from stopnet.db.models import Organisation, Role

    org = db.scalar(select(Organisation).where(Organisation.code == "FR-CUS"))
    _, raw = create_token(db, None, org, "read only", Role.OFFICER, frozenset({"cases:read"}))
    db.commit()
    r = client.post(URL, json=case_payload(), headers={"Authorization": f"Bearer {raw}"})
    assert r.status_code == 403
    assert "cases:write" in r.json()["detail"]
