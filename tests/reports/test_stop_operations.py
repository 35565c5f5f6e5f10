"""The simulated STOP III and STOP IV operations: the end-of-operation report's key figures equal the
published ones, the comparison of STOP IV against STOP III, and the CLI commands."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from openpyxl import load_workbook
from sqlalchemy import Engine, select, update
from sqlalchemy.orm import Session, sessionmaker
from typer.testing import CliRunner

from stopnet.access.service import principal_for
from stopnet.analytics import service as analytics
from stopnet.config import get_settings
from stopnet.db.engine import make_engine, make_sessionmaker, session_scope
from stopnet.db.migrate import upgrade
from stopnet.db.models import AuditEntry, Case, Operation, Organisation, User, Visibility
from stopnet.reports import service, views
from stopnet.simulate import STOP_III, STOP_IV, seed_demo
from tests.reports.conftest import pdf_text

ADMIN = "admin@stopnet-demo.example"
OFFICER = "officer@stopnet-demo.example"
RIGHTS_HOLDER = "rights-holder@stopnet-demo.example"


@dataclass
class Sim:
    url: str
    engine: Engine
    factory: sessionmaker[Session]


@pytest.fixture(scope="module")
def sim(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sim]:
    """STOP IV and STOP III seeded once (≈ 25 s) in a database of this module.

    Of the simulated cases, 4 % are kept by their reporting administration (``own``): nobody else reads
    them, so no single viewer's figures could equal the published totals. Here those reporters shared
    them with the coordinating unit instead, so the administrator reads every case.
    """
    url = f"sqlite:///{tmp_path_factory.mktemp('stopdb') / 'stop.db'}"
    upgrade(url)
    engine = make_engine(url)
    factory = make_sessionmaker(engine)
    with session_scope(factory) as s:
        seed_demo(s, seed=42, operations=("STOP-IV", "STOP-III"))
        s.execute(
            update(Case).where(Case.visibility == Visibility.OWN).values(visibility=Visibility.COORDINATOR)
        )
    analytics.clear_cache()
    yield Sim(url, engine, factory)
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


def test_stop_iv_key_figures_equal_the_published_ones(sim: Sim) -> None:
    with sim.factory() as s:
        r = service.final_report(s, _principal(s, ADMIN), _op(s, "STOP-IV"))
        pdf = views.final_pdf(r)
    kf = r.figures.key_figures
    assert (kf.cases, kf.seizures, r.figures.administrations) == (1066, 1774, 119)
    assert (kf.cases, kf.seizures, r.figures.administrations) == (
        STOP_IV.cases,
        STOP_IV.seizures,
        STOP_IV.participants,
    )
    groups = {g.group: (g.pieces, g.tonnes) for g in kf.groups}
    assert groups == {
        "ipr": (5_500_000, 68.0),
        "medicines": (171_700_000, 27.0),
        "other": (10_900_000, 106.0),
    }
    assert abs(kf.ecommerce_share - 0.63) <= 0.01  # type: ignore[operator]
    assert kf.ecommerce_regions == 6
    text = pdf_text(pdf)
    # the published key figures (WCO, 25 November 2025), as the report prints them
    for published in (
        "1,066 cases",
        "1,774 seizures",
        "119 customs administrations involved",
        "IPR-infringing goods: 5.5 million pieces and 68 tonnes",
        "Counterfeit medicines: 171.7 million pieces and 27 tonnes",
        "Other counterfeit goods: 10.9 million pieces and 106 tonnes",
    ):
        assert published.lower() in text.lower(), published
    assert "171,700,000" in text and "5,500,000" in text and "10,900,000" in text


def test_stop_iv_compared_with_stop_iii(sim: Sim) -> None:
    with sim.factory() as s:
        r = service.final_report(s, _principal(s, ADMIN), _op(s, "STOP-IV"))  # default: the previous one
        pdf = views.final_pdf(r)
    assert r.comparison is not None and r.comparison.previous.operation == "STOP-III"
    rows = {x.figure: x for x in r.comparison.rows}
    assert (rows["cases"].previous, rows["cases"].current) == (894, 1066)
    assert rows["cases"].change == 172 and rows["cases"].change_pct == pytest.approx(19.2)
    assert (rows["seizures"].previous, rows["seizures"].current) == (1488, 1774)
    assert rows["administrations"].previous == STOP_III.participants == 111
    assert rows["reporting_administrations"].previous == 48
    assert rows["medicines_pieces"].previous == 43_500_000 and rows["ipr_pieces"].previous == 1_100_000
    text = pdf_text(pdf)
    assert "Comparison: STOP-IV against STOP-III" in text
    assert "894" in text and "+172" in text and "+19.2%" in text
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
    assert res.exit_code == 2 and "outside the operation" in res.output
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
