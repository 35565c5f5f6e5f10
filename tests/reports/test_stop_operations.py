"""The demo's simulated STOP IV and STOP III, as the WCO's coordinator sees them: the dashboard and the
end-of-operation report (JSON through the API, PDF text) show every published figure exactly, and the
published findings come out of the dashboard's own panels; the comparison and the CLI commands."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from openpyxl import load_workbook
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session, sessionmaker
from typer.testing import CliRunner

from stopnet.access.service import create_token, principal_for
from stopnet.analytics import service as analytics
from stopnet.analytics.schemas import DashboardFilters
from stopnet.config import Settings, get_settings
from stopnet.db.engine import make_engine, make_sessionmaker, session_scope
from stopnet.db.migrate import upgrade
from stopnet.db.models import AuditEntry, Case, Operation, Organisation, Role, User, Visibility
from stopnet.reference import get_reference
from stopnet.reports import service, views
from stopnet.simulate import SPECS, STOP_III, STOP_IV, seed_demo
from tests.reports.conftest import pdf_text

ADMIN = "admin@stopnet-demo.example"
COORDINATOR = "coordinator@stopnet-demo.example"
OFFICER = "officer@stopnet-demo.example"
RIGHTS_HOLDER = "rights-holder@stopnet-demo.example"

#: The figures the WCO published (shared/seeds), as the coordinator's report must show them.
PUBLISHED: dict[str, dict[str, Any]] = {
    "STOP-IV": {  # WCO, 3rd Symposium "Removing Counterfeits from E-Commerce", 25 November 2025
        "cases": 1066,
        "seizures": 1774,
        "administrations": 119,
        "groups": {
            "ipr": (5_500_000, 68.0),
            "medicines": (171_700_000, 27.0),
            "other": (10_900_000, 106.0),
        },
        "pdf": (
            "1,066 cases",
            "1,774 seizures",
            "119 customs administrations involved",
            "IPR-infringing goods: 5.5 million pieces and 68 tonnes",
            "Counterfeit medicines: 171.7 million pieces and 27 tonnes",
            "Other counterfeit goods: 10.9 million pieces and 106 tonnes",
            "171,700,000",
            "5,500,000",
            "10,900,000",
        ),
    },
    "STOP-III": {  # WCO, Operation STOP III results leaflet
        "cases": 894,
        "seizures": 1488,
        "administrations": 111,
        "reporting": 48,
        "ecommerce_pct": 63,
        "pieces": {"medicines": 43_500_000, "ipr": 1_100_000},
        "pdf": (
            "894 cases",
            "1,488 seizures",
            "111 customs administrations involved",
            "48 administrations reporting",
            "reported by 48 of the 111 customs administrations involved",
            "Counterfeit medicines: 43.5 million pieces",
            "IPR-infringing goods: 1.1 million pieces",
            "63% of seizures from e-commerce",
            "6 of the 6 WCO regions reported e-commerce cases",
        ),
    },
}


@dataclass
class Sim:
    url: str
    engine: Engine
    factory: sessionmaker[Session]
    client: TestClient
    headers: dict[str, str]  # the demo coordinator's API token


@pytest.fixture(scope="module")
def sim(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sim]:
    """The demo as ``stopnet demo`` seeds it (STOP IV and STOP III, seed 42), once for this module, with
    an API token of the demo coordinator (WCO-OCU) and the web app over it."""
    tmp = tmp_path_factory.mktemp("stopdb")
    url = f"sqlite:///{tmp / 'stop.db'}"
    upgrade(url)
    engine = make_engine(url)
    factory = make_sessionmaker(engine)
    with session_scope(factory) as s:
        seed_demo(s, seed=42)
        user = s.scalars(select(User).where(User.email == COORDINATOR)).one()
        org = s.get_one(Organisation, user.org_id)
        _, token = create_token(
            s, None, org, "figures test", Role.COORDINATOR, frozenset({"cases:read"}), user=user
        )
    analytics.clear_cache()
    from stopnet.web.app import create_app

    app = create_app(Settings(database_url=url, data_dir=tmp / "var", secret_key="test-secret-key"))
    with TestClient(app) as client:
        yield Sim(url, engine, factory, client, {"Authorization": f"Bearer {token}"})
    app.state.engine.dispose()
    analytics.clear_cache()
    engine.dispose()


@pytest.fixture(autouse=True)
def _fresh_summaries() -> Iterator[None]:  # the module's database outlives one test: keep its summaries
    yield


def _principal(s: Session, email: str):  # type: ignore[no-untyped-def]
    user = s.scalars(select(User).where(User.email == email)).one()
    return principal_for(user, s.get_one(Organisation, user.org_id))


def _op(s: Session, code: str) -> Operation:
    return s.scalars(select(Operation).where(Operation.code == code)).one()


def _dashboard(sim: Sim, code: str, **filters: Any) -> dict[str, Any]:
    """The coordinator's dashboard of ``code`` through the API (JSON), with ``filters``."""
    r = sim.client.get(f"/api/v1/operations/{code}/dashboard", params=filters, headers=sim.headers)
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


def _group_figures(kf: dict[str, Any]) -> dict[str, tuple[int, float]]:
    return {g["group"]: (g["pieces"], g["tonnes"]) for g in kf["groups"]}


# ---------------------------------------------------------------------------------------------- figures


@pytest.mark.parametrize("code", ["STOP-IV", "STOP-III"])
def test_the_coordinator_sees_every_published_figure(sim: Sim, code: str) -> None:
    spec, published = SPECS[code], PUBLISHED[code]
    with sim.factory() as s:
        coordinator = _principal(s, COORDINATOR)
        op = _op(s, code)
        board = analytics.dashboard(s, coordinator, op, DashboardFilters())
        r = service.final_report(s, coordinator, op, "none")
        pdf = views.final_pdf(r)
    api = sim.client.get(f"/api/v1/operations/{code}/reports/final", headers=sim.headers)
    assert api.status_code == 200, api.text
    report = api.json()
    api_pdf = sim.client.get(
        f"/api/v1/operations/{code}/reports/final", params={"format": "pdf"}, headers=sim.headers
    )
    assert api_pdf.status_code == 200
    dashboard = _dashboard(sim, code)
    # the dashboard service, the dashboard API and the report's JSON: the same figures
    assert board.key_figures.model_dump(mode="json") == dashboard["key_figures"]
    assert report["figures"]["key_figures"] == dashboard["key_figures"]
    assert report["viewer"] == "WCO-OCU"
    kf = dashboard["key_figures"]
    assert (kf["cases"], kf["seizures"]) == (published["cases"], published["seizures"])
    assert (kf["cases"], kf["seizures"]) == (spec.cases, spec.seizures)
    assert report["figures"]["administrations"] == published["administrations"] == spec.participants
    assert kf["reporting_administrations"] == spec.reporting_members
    assert published.get("reporting", spec.reporting_members) == spec.reporting_members
    groups = {g["group"]: (g["pieces"], g["weight_kg"]) for g in kf["groups"]}
    assert groups == {g: (t.pieces, float(t.weight_kg)) for g, t in spec.group_totals.items()}
    if "groups" in published:
        assert _group_figures(kf) == published["groups"]
    for group, pieces in published.get("pieces", {}).items():
        assert groups[group][0] == pieces
    assert kf["pieces"] == spec.total_pieces
    if code == "STOP-III":
        assert kf["pieces"] > 45_000_000  # "a total of more than 45 million pieces"
    assert kf["ecommerce_seizures"] == round(spec.ecommerce_share_of_seizures * spec.seizures)
    assert round(kf["ecommerce_share"] * 100) == published.get("ecommerce_pct", 63)
    assert kf["ecommerce_regions"] == kf["regions_total"] == 6  # all six WCO regions
    for text in (pdf_text(pdf), pdf_text(api_pdf.content)):
        for phrase in published["pdf"]:
            assert phrase.lower() in text.lower(), (code, phrase)
    assert f"All goods {spec.seizures:,} {spec.total_pieces:,}" in pdf_text(pdf)
    by_weight = next(f for f in report["findings"] if f.startswith("By weight, "))
    assert any(f"By weight, {g}" in by_weight for g in ("IPR-infringing", "other", "counterfeit"))


def _page_text(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


@pytest.mark.parametrize("code", ["STOP-IV", "STOP-III"])
def test_the_coordinator_pages_show_every_published_figure(sim: Sim, code: str) -> None:
    """The HTML pages: the dashboard's key-figure tiles and the end-of-operation report."""
    spec, published = SPECS[code], PUBLISHED[code]
    page = sim.client.get(f"/operations/{code}/dashboard", headers=sim.headers)
    assert page.status_code == 200
    tiles = dict(re.findall(r'data-figure="(\w+)" data-value="([^"]*)"', page.text))
    assert (tiles["cases"], tiles["seizures"]) == (str(published["cases"]), str(published["seizures"]))
    assert tiles["reporting_administrations"] == str(spec.reporting_members)
    for group, totals in spec.group_totals.items():
        assert tiles[f"pieces_{group}"] == str(totals.pieces)
    assert tiles["pieces"] == str(spec.total_pieces)
    assert tiles["ecommerce_seizures"] == str(round(spec.ecommerce_share_of_seizures * spec.seizures))
    assert tiles["ecommerce_regions"] == "6"
    report = sim.client.get(f"/operations/{code}/reports/final", headers=sim.headers)
    assert report.status_code == 200
    text = _page_text(report.text)
    for phrase in published["pdf"]:
        assert phrase.lower() in text.lower(), (code, phrase)


def test_restricted_cases_stay_restricted_without_changing_the_official_figures(sim: Sim) -> None:
    """Every simulated case is reported to the operation: none is kept ``own``, and the ``coordinator``
    ones are read by the coordinating unit only (they count in its figures, in nobody else's)."""
    with sim.factory() as s:
        op = _op(s, "STOP-IV")
        by_visibility = dict(
            s.execute(
                select(Case.visibility, func.count(Case.id))
                .where(Case.operation_id == op.id)
                .group_by(Case.visibility)
            ).all()
        )
        officer = _principal(s, OFFICER)
        seen = analytics.dashboard(s, officer, op, DashboardFilters()).key_figures
        fr_restricted = s.scalar(
            select(func.count(Case.id)).where(
                Case.operation_id == op.id,
                Case.reporting_org_id == officer.org_id,
                Case.visibility == Visibility.COORDINATOR,
            )
        )
    assert Visibility.OWN not in by_visibility
    assert by_visibility[Visibility.COORDINATOR] > 0
    assert seen.cases == STOP_IV.cases - by_visibility[Visibility.COORDINATOR] + (fr_restricted or 0)
    assert seen.cases < STOP_IV.cases


# ---------------------------------------------------------------------------------------------- findings


def _commodity_group(code: str) -> str:
    return get_reference().commodities[code].group


def _trend(rows: list[dict[str, Any]], code: str) -> dict[str, Any]:
    return next(r for r in rows if r["dimension"] == "commodity" and r["code"] == code)


def test_stop_iv_health_and_beauty_products_rise_and_weight_loss_products_are_ongoing(sim: Sim) -> None:
    """ "Reports of counterfeit health or beauty products showed an increasing trend [...]. There are also
    ongoing reports of attempts to distribute counterfeit weight-loss products." (STOP IV)"""
    trends = _dashboard(sim, "STOP-IV")["trends"]
    assert (trends["recent_from"], trends["recent_to"]) == ("2025-05-26", "2025-05-30")
    beauty, weight_loss = _trend(trends["rows"], "OTH-COSM"), _trend(trends["rows"], "MED-WEIGHT")
    for row in (beauty, weight_loss):
        assert row["flagged"], row
        assert row["q_value"] <= trends["alpha"] and row["rate_ratio"] >= trends["min_ratio"]
        assert row["share_after"] > row["share_before"] > 0
    # ongoing: weight-loss products are seized in every week of the operation, on most of its days
    days = _dashboard(sim, "STOP-IV", commodity_code="MED-WEIGHT")["progression"]["days"]
    seized = [dt.date.fromisoformat(d["day"]) for d in days if d["seizures"]]
    assert {d.isocalendar().week for d in seized} == {20, 21, 22}  # 12-18, 19-25 and 26-30 May 2025
    assert len(seized) >= 2 / 3 * STOP_IV.days
    assert weight_loss["before"] > 0 and weight_loss["after"] > 0
    with sim.factory() as s:
        r = service.final_report(s, _principal(s, COORDINATOR), _op(s, "STOP-IV"), "none")
    assert {"OTH-COSM", "MED-WEIGHT"} <= {t.code for t in r.trends if t.dimension == "commodity"}
    rising = next(f for f in r.findings if f.startswith("Rising in the last 5 days"))
    assert "Cosmetics and beauty products" in rising and "Weight-loss products" in rising


@pytest.mark.parametrize("code", ["STOP-III", "STOP-IV"])
def test_the_commodity_findings_come_out_of_the_panels(sim: Sim, code: str) -> None:
    """STOP III's leaflet: clothing then footwear the most reported via e-commerce; nervous system agents
    the most reported medicines; by quantity anti-infectives first and medicines the top three; among IPR
    goods, transportation and spare parts first (the simulation keeps them in STOP IV too)."""
    ecommerce = _dashboard(sim, code, is_ecommerce="true")["commodities"]["rows"]
    by_seizures = sorted(ecommerce, key=lambda r: -r["seizures"])
    assert [r["code"] for r in by_seizures[:2]] == ["IPR-CLOTH", "IPR-FOOT"]
    assert by_seizures[1]["seizures"] > by_seizures[2]["seizures"]
    board = _dashboard(sim, code)
    therapeutic = sorted(board["therapeutic"]["rows"], key=lambda r: -r["seizures"])
    assert therapeutic[0]["code"] == "MED-NERV" and therapeutic[0]["seizures"] > therapeutic[1]["seizures"]
    by_pieces = sorted(board["commodities"]["rows"], key=lambda r: -r["pieces"])
    assert by_pieces[0]["code"] == "MED-ANTIINF"
    assert [_commodity_group(r["code"]) for r in by_pieces[:3]] == ["medicines"] * 3
    ipr = sorted(
        _dashboard(sim, code, commodity_group="ipr")["commodities"]["rows"], key=lambda r: -r["pieces"]
    )
    assert ipr[0]["code"] == "IPR-TRANSP" and ipr[0]["pieces"] > ipr[1]["pieces"]
    with sim.factory() as s:
        r = service.final_report(s, _principal(s, COORDINATOR), _op(s, code), "none")
    assert "Among medicines, Nervous system agents (ATC N) was the most reported group" in " ".join(
        r.findings
    )
    assert any(f.startswith("E-commerce accounted for 63% of seizures") for f in r.findings)


# ---------------------------------------------------------------------------------------------- comparison


def test_stop_iv_compared_with_stop_iii(sim: Sim) -> None:
    with sim.factory() as s:
        r = service.final_report(s, _principal(s, COORDINATOR), _op(s, "STOP-IV"))  # default: the previous
        pdf = views.final_pdf(r)
    assert r.comparison is not None and r.comparison.previous.operation == "STOP-III"
    rows = {x.figure: x for x in r.comparison.rows}
    assert (rows["cases"].previous, rows["cases"].current) == (894, 1066)
    assert rows["cases"].change == 172 and rows["cases"].change_pct == pytest.approx(19.2)
    assert (rows["seizures"].previous, rows["seizures"].current) == (1488, 1774)
    assert rows["administrations"].previous == STOP_III.participants == 111
    assert rows["reporting_administrations"].previous == 48
    assert rows["medicines_pieces"].previous == 43_500_000 and rows["ipr_pieces"].previous == 1_100_000
    assert (rows["pieces"].previous, rows["pieces"].current) == (STOP_III.total_pieces, STOP_IV.total_pieces)
    text = pdf_text(pdf)
    assert "Comparison: STOP-IV against STOP-III" in text
    for line in (  # the table quoted in docs/reports.md
        "Cases 894 1,066 +172 +19.2%",
        "Seizures 1,488 1,774 +286 +19.2%",
        "Customs administrations involved 111 119 +8 +7.2%",
        "Administrations that reported cases 48 52 +4 +8.3%",
        "Pieces, all goods 45,050,000 188,100,000 +143,050,000 +317.5%",
        "E-commerce share of seizures 63% 63% +0.1 pp",
    ):
        assert line in text, line
    assert any("Compared with STOP-III" in f for f in r.findings)


def test_a_partner_sees_the_figures_of_partner_cases_only(sim: Sim) -> None:
    with sim.factory() as s:
        partner = _principal(s, "partner@stopnet-demo.example")
        r = service.final_report(s, partner, _op(s, "STOP-IV"), "none")
        n = s.scalars(
            select(Case.id).where(
                Case.operation_id == _op(s, "STOP-IV").id, Case.visibility == Visibility.PARTNERS
            )
        ).all()
    assert 0 < r.figures.key_figures.cases == len(n) < 1066


@pytest.fixture
def cli_env(sim: Sim, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("STOPNET_DATABASE_URL", sim.url)
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def test_cli_reports(cli_env: None, tmp_path: Path) -> None:
    from stopnet.cli import app

    runner = CliRunner()
    out = tmp_path / "final"
    res = runner.invoke(
        app,
        [
            "report",
            "final",
            "--operation",
            "STOP-IV",
            "--as",
            ADMIN,
            "--compare",
            "STOP-III",
            "--out",
            str(out),
        ],
    )
    assert res.exit_code == 0, res.output
    text = pdf_text((tmp_path / "final.pdf").read_bytes())
    assert "1,066 cases" in text and "Comparison: STOP-IV against STOP-III" in text
    assert "1,066" in (tmp_path / "final.html").read_text()
    res = runner.invoke(
        app,
        ["report", "daily", "--operation", "STOP-IV", "--as", OFFICER, "--date", "2025-05-20",
         "--format", "pdf", "--out", str(tmp_path / "day")],
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    text = pdf_text((tmp_path / "day.pdf").read_bytes())
    assert "daily situation report, 20 May 2025" in text and "day 9 of 19" in text
    assert not (tmp_path / "day.html").exists()
    res = runner.invoke(
        app, ["report", "daily", "--operation", "STOP-IV", "--as", OFFICER, "--date", "2025-07-01"]
    )
    assert res.exit_code == 2 and "within the operation" in res.output
    res = runner.invoke(app, ["report", "final", "--operation", "STOP-IV", "--as", "nobody@example.org"])
    assert res.exit_code == 2 and "no active user" in res.output


def test_cli_exports_act_as_the_user(cli_env: None, sim: Sim, tmp_path: Path) -> None:
    from stopnet.cli import app

    runner = CliRunner()
    path = tmp_path / "cases.csv"
    res = runner.invoke(
        app,
        ["export", "cases", "--operation", "STOP-IV", "--as", OFFICER, "--format", "csv", "--out", str(path),
         "--channel", "POSTAL"],
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    rows = list(csv.DictReader(io.StringIO(path.read_text(encoding="utf-8-sig"))))
    with sim.factory() as s:
        officer = _principal(s, OFFICER)
        from stopnet.access.policy import case_read_clause

        op = _op(s, "STOP-IV")
        expected = set(
            s.scalars(
                select(Case.reference).where(
                    Case.operation_id == op.id, Case.channel == "POSTAL", case_read_clause(s, officer, op.id)
                )
            )
        )
        audit = s.scalars(select(AuditEntry).where(AuditEntry.action == "export.cases")).all()[-1]
    assert {r["reference"] for r in rows} == expected and 0 < len(expected) < 1066
    assert {r["channel"] for r in rows} == {"POSTAL"}
    assert audit.details["rows"] == len(expected) and audit.actor_label == OFFICER
    assert all("consignee_name" not in r for r in rows)  # no personal data in any export

    xlsx = tmp_path / "seizures.xlsx"
    res = runner.invoke(
        app,
        [
            "export",
            "seizures",
            "--operation",
            "STOP-IV",
            "--as",
            ADMIN,
            "--format",
            "xlsx",
            "--out",
            str(xlsx),
        ],
    )
    assert res.exit_code == 0, res.output
    ws = load_workbook(xlsx, read_only=True)["seizures"]
    assert sum(1 for _ in ws.iter_rows(min_row=2)) == 1774

    js = tmp_path / "brands.json"
    res = runner.invoke(
        app,
        [
            "export",
            "seizures",
            "--operation",
            "STOP-IV",
            "--as",
            RIGHTS_HOLDER,
            "--format",
            "json",
            "--out",
            str(js),
        ],
    )
    assert res.exit_code == 0, res.output
    body = json.loads(js.read_text())
    assert body["columns"][0] == "operation" and "consignee_name" not in body["columns"]
    res = runner.invoke(app, ["export", "cases", "--operation", "STOP-IV", "--as", RIGHTS_HOLDER])
    assert res.exit_code == 2 and "rights holders" in res.output
