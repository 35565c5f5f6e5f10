"""Verification requests end to end over HTTP: deadlines in working days, overdue flags, answers attached
to the case, the risk engine's labels, personal data kept out, and the audit trail."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select

from stopnet.db.models import AuditEntry
from stopnet.rightsholders.service import verification_labels

from .conftest import FRIDAY, approve, register_brand, report_case

URL = "/api/v1/rights/requests"


def ask(client, actor, brand_id, case=None, line=0, **kw):  # type: ignore[no-untyped-def]
    body = {"brand_id": brand_id, "product": "weight-loss pens", "details": "blue box, no hologram", **kw}
    if case is not None:
        body.update(case_id=case["id"], seizure_id=case["seizures"][line]["id"])
    else:
        body.setdefault("operation", "TEST-OP")
    return client.post(URL, json=body, headers=actor.headers)


def test_whole_request_cycle(client, world, brand_x, clock, db):
    officer, holder = world["fr_officer"], world["rights_holder"]
    # Friday 16 May 2025: 10 working days (weekends skipped) -> due Friday 30 May
    r = ask(
        client, officer, brand_x.brand["id"], brand_x.case, hs_code="300490", pieces=120, origin_country="cn"
    )
    assert r.status_code == 201, r.text
    req = r.json()
    assert r.headers["location"] == f"{URL}/{req['id']}"
    assert req["sent_at"].startswith("2025-05-16T10:00")
    assert req["working_days"] == 10
    assert req["due_on"] == "2025-05-30"
    assert req["status"] == "open" and req["overdue"] is False
    assert req["case_id"] == brand_x.case["id"] and req["case_reference"] == "FR-0001"
    assert req["origin_country"] == "CN"
    assert req["requested_by"] == officer.email

    # the holder sees it without the case, its reference or who asked
    seen = client.get(f"{URL}/{req['id']}", headers=holder.headers).json()
    assert seen["case_id"] is None and seen["case_reference"] is None and seen["seizure_id"] is None
    assert seen["requested_by"] is None and seen["requesting_org"] == "FR-CUS"
    assert "Jean Dupont" not in str(seen)

    # still on time during the due day, overdue the next day (a Saturday)
    clock.now = dt.datetime(2025, 5, 30, 23, 0, tzinfo=dt.UTC)
    assert client.get(f"{URL}/{req['id']}", headers=officer.headers).json()["overdue"] is False
    clock.now = dt.datetime(2025, 5, 31, 9, 0, tzinfo=dt.UTC)
    assert client.get(f"{URL}/{req['id']}", headers=officer.headers).json()["overdue"] is True
    overdue = client.get(URL, params={"overdue": "true"}, headers=holder.headers).json()
    assert [i["id"] for i in overdue["items"]] == [req["id"]]
    assert client.get(URL, params={"overdue": "false"}, headers=holder.headers).json()["total"] == 0
    assert verification_labels(db) == []

    # only the brand's holder answers; the answer closes the request (late) and is attached to the case
    for name in ("fr_officer", "coordinator", "de_officer"):
        bad = client.post(
            f"{URL}/{req['id']}/answer", json={"answer": "genuine"}, headers=world[name].headers
        )
        assert bad.status_code in (403, 404), name
    answered_at = dt.datetime(2025, 6, 2, 8, 30, tzinfo=dt.UTC)
    clock.now = answered_at
    r = client.post(
        f"{URL}/{req['id']}/answer",
        json={"answer": "counterfeit", "note": "no hologram; batch number printed"},
        headers=holder.headers,
    )
    assert r.status_code == 200, r.text
    done = r.json()
    assert done["status"] == "answered" and done["answer"] == "counterfeit" and done["overdue"] is False
    again = client.post(f"{URL}/{req['id']}/answer", json={"answer": "genuine"}, headers=holder.headers)
    assert again.status_code == 409

    on_case = client.get(
        f"/api/v1/rights/cases/{brand_x.case['id']}/verifications", headers=officer.headers
    ).json()
    assert [(v["request_id"], v["answer"], v["answer_note"]) for v in on_case] == [
        (req["id"], "counterfeit", "no hologram; batch number printed")
    ]
    # another participating administration that may read the case sees the answer too
    assert (
        client.get(
            f"/api/v1/rights/cases/{brand_x.case['id']}/verifications", headers=world["de_officer"].headers
        ).json()[0]["answer"]
        == "counterfeit"
    )
    # rights holders never read cases, not even through this route
    assert (
        client.get(
            f"/api/v1/rights/cases/{brand_x.case['id']}/verifications", headers=holder.headers
        ).status_code
        == 404
    )

    # the risk engine's labels
    labels = verification_labels(db, since=dt.datetime(2025, 6, 1, tzinfo=dt.UTC))
    assert [(lb.case_id, lb.label) for lb in labels] == [(brand_x.case["id"], "counterfeit")]
    assert labels[0].answered_at == answered_at
    assert verification_labels(db, since=dt.datetime(2025, 6, 3, tzinfo=dt.UTC)) == []

    # the audit trail has the create and the answer
    actions = db.scalars(
        select(AuditEntry.action).where(AuditEntry.object_type == "verification_request")
    ).all()
    assert actions == ["verification.create", "verification.answer"]
    answer_entry = db.scalar(select(AuditEntry).where(AuditEntry.action == "verification.answer"))
    assert answer_entry.details["late"] is True

    # the outreach figures count it
    figures = client.get("/api/v1/rights/outreach", headers=world["coordinator"].headers).json()
    row = next(r for r in figures["rows"] if r["brand"] == "Brand X")
    assert row["requests_sent"] == 1 and row["requests_answered"] == 1 and row["answered_late"] == 1
    assert row["median_response_hours"] == round((answered_at - FRIDAY).total_seconds() / 3600, 1)


def test_deadline_per_operation(client, world, brand_x, clock):
    coord = world["coordinator"]
    url = "/api/v1/rights/operations/TEST-OP/settings"
    assert client.get(url, headers=coord.headers).json() == {
        "operation": "TEST-OP",
        "response_working_days": 10,
        "is_default": True,
    }
    assert (
        client.put(url, json={"response_working_days": 3}, headers=world["fr_ncp"].headers).status_code == 403
    )
    assert client.put(url, json={"response_working_days": 0}, headers=coord.headers).status_code == 422
    r = client.put(url, json={"response_working_days": 3}, headers=coord.headers)
    assert r.status_code == 200 and r.json()["is_default"] is False
    req = ask(client, world["fr_officer"], brand_x.brand["id"]).json()
    assert req["working_days"] == 3 and req["due_on"] == "2025-05-21"  # Mon, Tue, Wed


def test_withdraw_and_open_lists(client, world, brand_x, clock):
    officer = world["fr_officer"]
    req = ask(client, officer, brand_x.brand["id"]).json()
    assert (
        client.post(f"{URL}/{req['id']}/withdraw", headers=world["rights_holder"].headers).status_code == 403
    )
    assert client.post(f"{URL}/{req['id']}/withdraw", headers=world["de_officer"].headers).status_code == 404
    r = client.post(f"{URL}/{req['id']}/withdraw", headers=officer.headers)
    assert r.status_code == 200 and r.json()["status"] == "withdrawn"
    clock.now = dt.datetime(2025, 7, 1, tzinfo=dt.UTC)
    assert client.get(f"{URL}/{req['id']}", headers=officer.headers).json()["overdue"] is False
    assert client.get(URL, params={"status": "open"}, headers=officer.headers).json()["total"] == 0


def test_consignee_name_is_refused_and_never_copied(client, world, brand_x, clock):
    officer = world["fr_officer"]
    r = ask(client, officer, brand_x.brand["id"], brand_x.case, details="addressed to JEAN  dupont, Lyon")
    assert r.status_code == 422
    assert [e["field"] for e in r.json()["errors"]] == ["details"]
    r = ask(client, officer, brand_x.brand["id"], brand_x.case)
    assert r.status_code == 201
    for who in ("rights_holder", "coordinator", "fr_officer"):
        body = client.get(f"{URL}/{r.json()['id']}", headers=world[who].headers).text
        assert "Jean Dupont" not in body and "consignee" not in body


def test_who_may_ask(client, world, brand_x, clock, other_holder):
    brand_id = brand_x.brand["id"]
    for name in ("rights_holder", "coordinator", "partner", "analyst_we"):
        assert ask(client, world[name], brand_id).status_code == 403, name
    assert ask(client, other_holder, brand_id).status_code == 403
    assert ask(client, world["xx_officer"], brand_id).status_code == 404  # not in the operation
    # a case of another administration cannot be linked, even one the officer may read
    assert ask(client, world["de_officer"], brand_id, brand_x.case).status_code == 403
    # a seizure of another case cannot be linked
    other = report_case(client, world["fr_officer"], "FR-0002")
    body = {
        "brand_id": brand_id,
        "product": "pens",
        "case_id": brand_x.case["id"],
        "seizure_id": other["seizures"][0]["id"],
    }
    assert client.post(URL, json=body, headers=world["fr_officer"].headers).status_code == 422
    # only approved brands
    pending = register_brand(client, world["rights_holder"], name="Brand X Junior", aliases=[])
    assert ask(client, world["fr_officer"], pending["id"]).status_code == 404
    approve(client, world, pending["id"])
    assert ask(client, world["fr_officer"], pending["id"]).status_code == 201
    # the operation is required without a case
    r = client.post(URL, json={"brand_id": brand_id, "product": "pens"}, headers=world["fr_officer"].headers)
    assert r.status_code == 422


def test_request_photos(client, world, brand_x, clock, settings):
    from .test_guides import PNG

    officer = world["fr_officer"]
    req = ask(client, officer, brand_x.brand["id"]).json()
    up = client.post(
        f"{URL}/{req['id']}/attachments",
        files={"file": ("pen.png", PNG, "image/png")},
        headers=officer.headers,
    )
    assert up.status_code == 201, up.text
    att = up.json()
    assert client.get(att["url"], headers=world["rights_holder"].headers).content == PNG
    assert client.get(att["url"], headers=world["de_officer"].headers).status_code == 404
    bad = client.post(
        f"{URL}/{req['id']}/attachments",
        files={"file": ("pen.png", PNG, "image/png")},
        headers=world["rights_holder"].headers,
    )
    assert bad.status_code == 403


def test_a_genuine_answer_clears_the_seizure_label_of_the_risk_engine(client, world, brand_x, db):
    """An inspection recorded as a seizure of a case the rights holder then verifies as genuine is not
    a hit for the model (targeting's training labels); a counterfeit answer keeps it one."""
    from stopnet.db.models.targeting import Consignment
    from stopnet.targeting.service.consignments import _load_frame
    from tests.targeting.conftest import records, stream

    officer, holder = world["fr_officer"], world["rights_holder"]
    recs = records(stream(2, seed=3, start="2025-05-14", days=1, labels="none"))
    r = client.post(
        "/api/v1/targeting/consignments",
        json={"operation": "TEST-OP", "consignments": recs},
        headers=officer.headers,
    )
    assert r.status_code == 201, r.text
    other = report_case(client, officer, "FR-0002")
    for rec, case in zip(recs, (brand_x.case, other), strict=True):
        r = client.post(
            f"/api/v1/targeting/operations/TEST-OP/consignments/{rec['consignment_id']}/inspection",
            json={"outcome": "seizure", "case_id": case["id"]},
            headers=officer.headers,
        )
        assert r.status_code == 201, r.text

    def labels() -> dict[str, bool]:
        db.expire_all()
        frame, _ = _load_frame(db, [Consignment.operation_id == world.op.id])
        return dict(zip(frame["consignment_id"], frame["seized"], strict=True))

    ids = [rec["consignment_id"] for rec in recs]
    assert labels() == {ids[0]: True, ids[1]: True}
    for case, answer in ((brand_x.case, "genuine"), (other, "counterfeit")):
        req = ask(client, officer, brand_x.brand["id"], case).json()
        r = client.post(f"{URL}/{req['id']}/answer", json={"answer": answer}, headers=holder.headers)
        assert r.status_code == 200, r.text
    assert labels() == {ids[0]: False, ids[1]: True}
