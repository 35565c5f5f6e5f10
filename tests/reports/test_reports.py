"""Daily and end-of-operation reports on a small hand-built operation: figures, HTML, JSON, PDF."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from stopnet.analytics import service as analytics
from stopnet.analytics.schemas import DashboardFilters
from stopnet.db.models import (
    CaseStatus,
    Operation,
    OperationStatus,
    Participant,
    ParticipantRole,
    Visibility,
)
from stopnet.reports import service, views
from stopnet.web.assets import static_url
from tests.analytics.factories import C, S, seed
from tests.conftest import World
from tests.reports.conftest import pdf_text

DAY = dt.date(2025, 5, 15)


@pytest.fixture
def data(session_factory: sessionmaker[Session], world: World) -> World:
    """Four counted cases (two on the 15th), a draft, and a DE case kept to itself (``own``)."""
    seed(
        session_factory,
        world,
        [
            C(org="FR-CUS", day=14, seizures=[S("MED-WEIGHT", 1_000, "2.5"), S("IPR-FOOT", 20, "10")]),
            C(org="DE-CUS", day=14, channel="EXPRESS", ecom=False, seizures=[S("IPR-CLOTH", 300, "90")]),
            C(org="FR-CUS", day=15, seizures=[S("MED-WEIGHT", 2_500, "5"), S("OTH-COSM", 40, "4")]),
            C(org="KE-CUS", day=15, channel="CARGO", ecom=False, seizures=[S("IPR-CLOTH", 12_000, "1500")]),
            C(org="FR-CUS", day=15, status=CaseStatus.DRAFT, seizures=[S("MED-WEIGHT", 99_999, "9")]),
            C(org="DE-CUS", day=15, visibility=Visibility.OWN, seizures=[S("OTH-TOBAC", 77_777, "777")]),
        ],
    )
    return world


def test_daily_report_counts_the_day_and_the_running_totals(db: Session, data: World) -> None:
    op = db.get_one(Operation, data.op.id)
    r = service.daily_report(db, data["fr_officer"].principal, op, DAY)
    assert (r.day_number, r.days_total) == (4, 19)
    # the day: the FR case and the KE case (the draft and DE's own case are not FR's to count)
    assert (r.new.cases, r.new.seizures, r.new.pieces) == (2, 3, 14_540)
    assert {g.group: g.pieces for g in r.new.groups} == {"medicines": 2_500, "ipr": 12_000, "other": 40}
    assert r.new.weight_kg == 1509.0
    # running totals from the 12th to the 15th
    assert (r.running.cases, r.running.seizures, r.running.pieces) == (4, 6, 15_860)
    assert r.running.reporting_administrations == 3
    changes = {c.figure: (c.day, c.previous_day, c.change) for c in r.changes}
    assert changes["cases"] == (2, 2, 0)
    assert changes["seizures"] == (3, 3, 0)
    assert changes["pieces"] == (14_540, 1_320, 13_220)
    assert [p.cumulative_seizures for p in r.progression] == [0, 0, 3, 6]
    assert [c.code for c in r.new_categories] == ["IPR-CLOTH", "MED-WEIGHT", "OTH-COSM"]


def test_daily_report_equals_the_dashboard_of_the_viewer(db: Session, data: World) -> None:
    op = db.get_one(Operation, data.op.id)
    for who in ("fr_officer", "de_officer", "partner", "analyst_esa", "coordinator"):
        p = data[who].principal
        r = service.daily_report(db, p, op, DAY)
        d = analytics.dashboard(db, p, op, DashboardFilters(date_from=DAY, date_to=DAY), today=DAY)
        assert r.new == d.key_figures, who
        d = analytics.dashboard(db, p, op, DashboardFilters(date_to=DAY), today=DAY)
        assert r.running == d.key_figures, who
    de = service.daily_report(db, data["de_officer"].principal, op, DAY)
    fr = service.daily_report(db, data["fr_officer"].principal, op, DAY)
    assert de.new.pieces == fr.new.pieces + 77_777  # DE's own case counts for DE only


def test_daily_report_date_outside_the_operation_is_refused(client: TestClient, data: World) -> None:
    r = client.get(
        "/api/v1/operations/TEST-OP/reports/daily",
        params={"date": "2025-06-02"},
        headers=data["fr_officer"].headers,
    )
    assert r.status_code == 422
    assert "date" in r.text and "2025-05-12" in r.text


def test_daily_report_api_json_and_pdf(client: TestClient, data: World) -> None:
    h = data["fr_officer"].headers
    r = client.get("/api/v1/operations/TEST-OP/reports/daily", params={"date": "2025-05-15"}, headers=h)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["new"]["cases"] == 2 and body["running"]["seizures"] == 6
    r = client.get(
        "/api/v1/operations/TEST-OP/reports/daily", params={"date": "2025-05-15", "format": "pdf"}, headers=h
    )
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/pdf"
    assert "stopnet-test-op-daily-2025-05-15.pdf" in r.headers["content-disposition"]
    text = pdf_text(r.content)
    assert "daily situation report, 15 May 2025" in text
    assert "day 4 of 19" in text
    assert "New on 15 May" in text and "Running totals" in text
    assert "14,540" in text  # pieces of the day
    assert "15,860" in text  # pieces to date
    assert "+13,220" in text  # pieces against the day before
    assert "Emerging trends" in text
    assert "77,777" not in text and "99,999" not in text  # DE's own case, FR's draft


def test_daily_report_page_has_charts_links_and_no_inline_style(client: TestClient, data: World) -> None:
    h = data["fr_officer"].headers
    r = client.get("/operations/TEST-OP/reports/daily", params={"date": "2025-05-15"}, headers=h)
    assert r.status_code == 200, r.text
    html = r.text
    assert "<svg" in html and 'class="chart progression"' in html
    assert "/operations/TEST-OP/reports/daily.pdf?date=2025-05-15" in html
    assert static_url("reports.css") in html
    assert " style=" not in html and "<script>" not in html and "<style" not in html
    twin = client.get(
        "/operations/TEST-OP/reports/daily", params={"date": "2025-05-15", "format": "json"}, headers=h
    )
    assert twin.json()["new"]["pieces"] == 14_540
    pdf = client.get("/operations/TEST-OP/reports/daily.pdf", params={"date": "2025-05-15"}, headers=h)
    assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF")
    # the default day of an operation that is over is its last day
    r = client.get("/operations/TEST-OP/reports/daily", params={"format": "json"}, headers=h)
    assert r.json()["day"] == "2025-05-30"


def test_reports_are_not_shown_to_outsiders(client: TestClient, data: World) -> None:
    h = data["xx_officer"].headers
    assert client.get("/operations/TEST-OP/reports/daily", headers=h).status_code == 404
    assert client.get("/api/v1/operations/TEST-OP/reports/final", headers=h).status_code == 404
    assert client.get("/operations/TEST-OP/reports/final.pdf").status_code in (303, 401)


def _second_operation(db: Session, world: World) -> None:
    """An earlier operation (EARLY-OP, no case) in which only FR took part."""
    op = Operation(
        code="EARLY-OP",
        name="Operation Early",
        scope="",
        starts_on=dt.date(2024, 1, 8),
        ends_on=dt.date(2024, 1, 19),
        status=OperationStatus.CLOSED,
        default_visibility=Visibility.PARTICIPANTS,
        coordinator_org_id=world.orgs["WCO-OCU"].id,
    )
    db.add(op)
    db.flush()
    db.add(Participant(operation_id=op.id, org_id=world.orgs["FR-CUS"].id, role=ParticipantRole.MEMBER))
    db.commit()


def test_final_report_figures_findings_and_pdf(client: TestClient, db: Session, data: World) -> None:
    h = data["fr_officer"].headers
    r = client.get("/api/v1/operations/TEST-OP/reports/final", headers=h)
    assert r.status_code == 200, r.text
    body = r.json()
    kf = body["figures"]["key_figures"]
    assert (kf["cases"], kf["seizures"], kf["pieces"]) == (4, 6, 15_860)
    assert body["figures"]["administrations"] == 3  # FR, DE and KE take part as members
    assert body["comparison"] is None and "No earlier operation" in body["comparison_note"]
    assert body["top_categories"][0]["code"] == "IPR-CLOTH"
    assert any("4 cases and 6 seizures" in f for f in body["findings"])
    pdf = client.get("/api/v1/operations/TEST-OP/reports/final", params={"format": "pdf"}, headers=h)
    text = pdf_text(pdf.content)
    assert "end-of-operation report" in text
    assert "Key figures" in text and "Findings" in text and "Top commodity categories" in text
    assert "15,860" in text
    assert "customs administrations involved" in text
    assert "No earlier operation in the database to compare with." in text

    _second_operation(db, data)
    r = client.get("/api/v1/operations/TEST-OP/reports/final", headers=h).json()
    assert r["comparison"]["previous"]["operation"] == "EARLY-OP"  # the previous operation by default
    rows = {x["figure"]: x for x in r["comparison"]["rows"]}
    assert rows["cases"]["previous"] == 0 and rows["cases"]["current"] == 4 and rows["cases"]["change"] == 4
    none = client.get(
        "/api/v1/operations/TEST-OP/reports/final", params={"compare": "none"}, headers=h
    ).json()
    assert none["comparison"] is None
    bad = client.get("/api/v1/operations/TEST-OP/reports/final", params={"compare": "NOPE"}, headers=h)
    assert bad.status_code == 422 and "compare" in bad.text
    # an operation DE does not take part in is not offered to DE, nor usable by it
    de = client.get("/api/v1/operations/TEST-OP/reports/final", headers=data["de_officer"].headers).json()
    assert de["comparison"] is None
    bad = client.get(
        "/api/v1/operations/TEST-OP/reports/final",
        params={"compare": "EARLY-OP"},
        headers=data["de_officer"].headers,
    )
    assert bad.status_code == 422


def test_final_page_links_and_compare_choices(client: TestClient, db: Session, data: World) -> None:
    _second_operation(db, data)
    h = data["fr_officer"].headers
    html = client.get("/operations/TEST-OP/reports/final", headers=h).text
    assert "/operations/TEST-OP/reports/final.pdf" in html
    assert re.search(r'<option value="EARLY-OP"\s+selected', html)
    assert " style=" not in html


def test_operation_page_links_reports_and_exports(client: TestClient, data: World) -> None:
    html = client.get("/operations/TEST-OP", headers=data["fr_officer"].headers).text
    assert "/operations/TEST-OP/reports/daily" in html
    assert "/operations/TEST-OP/reports/final" in html
    assert "/api/v1/operations/TEST-OP/exports/cases.csv" in html
    assert "/api/v1/operations/TEST-OP/exports/seizures.xlsx" in html
    html = client.get(
        "/operations/TEST-OP/cases", params={"channel": "POSTAL"}, headers=data["fr_officer"].headers
    ).text
    assert "/api/v1/operations/TEST-OP/exports/cases.csv?channel=POSTAL" in html


def test_report_html_is_rendered_offline(data: World, db: Session) -> None:
    """The PDF's HTML references nothing outside itself (WeasyPrint's fetcher refuses every URL)."""
    op = db.get_one(Operation, data.op.id)
    r = service.daily_report(db, data["fr_officer"].principal, op, DAY)
    html = views.daily_html(r)
    assert "<link" not in html and "<script" not in html and "src=" not in html
    from stopnet.reports import pdf

    with pytest.raises(pdf.ExternalResourceRefused):
        pdf._no_fetch("https://example.org/x.css")


def test_daily_report_carries_the_signed_audit_head_for_audit_readers(
    client: TestClient, data: World
) -> None:
    """Each daily report a coordinator receives keeps a copy of the audit trail's signed head."""
    from stopnet.audit.checkpoints import Checkpoint

    params = {"date": "2025-05-15"}
    coordinator = client.get(
        "/api/v1/operations/TEST-OP/reports/daily", params=params, headers=data["coordinator"].headers
    )
    head = Checkpoint.from_json(coordinator.json()["audit_checkpoint"])
    assert head.count >= 1 and len(head.head) == 64 and head.signature
    page = client.get("/operations/TEST-OP/reports/daily", params=params, headers=data["coordinator"].headers)
    assert "Audit trail checkpoint" in page.text and head.head in page.text
    officer = client.get(
        "/api/v1/operations/TEST-OP/reports/daily", params=params, headers=data["fr_officer"].headers
    )
    assert officer.json()["audit_checkpoint"] is None  # an officer does not read the trail, nor its size
