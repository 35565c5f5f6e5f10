"""The demo's risk-targeting data: loaded through the targeting service into a real SQLite database
built from the migrations, and by ``stopnet demo --no-serve``."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker
from typer.testing import CliRunner

from stopnet.access.service import cli_principal
from stopnet.config import get_settings
from stopnet.db.engine import make_engine, make_sessionmaker, session_scope
from stopnet.db.migrate import upgrade
from stopnet.db.models import Operation, Organisation, Role
from stopnet.db.models.targeting import (
    Consignment,
    ConsignmentScore,
    InspectionResult,
    RuleProposal,
    RuleStatus,
    SelectionItem,
    TargetingModel,
    TargetingRule,
    TargetingSelection,
)
from stopnet.simulate import seed_demo
from stopnet.simulate.targeting import DEMO_OFFICES, TargetingDemoInfo, seed_demo_targeting
from stopnet.targeting import service as targeting

TODAY = dt.date(2026, 12, 2)


@pytest.fixture(scope="module")
def loaded(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[sessionmaker[Session], TargetingDemoInfo, Path]]:
    root = tmp_path_factory.mktemp("targeting-demo")
    url = f"sqlite:///{root / 'demo.db'}"
    upgrade(url)
    engine = make_engine(url)
    factory = make_sessionmaker(engine)
    with session_scope(factory) as s:
        home = seed_demo(s, seed=42, operations=("STOP-IV",)).home_org
    with session_scope(factory) as s:
        info = seed_demo_targeting(
            s,
            operation="STOP-IV",
            org_code=home,
            key_master=b"k" * 32,
            model_dir=root / "models",
            today=TODAY,
        )
    yield factory, info, root
    engine.dispose()


def test_consignments_of_the_home_administration_up_to_today(loaded) -> None:  # type: ignore[no-untyped-def]
    factory, info, _ = loaded
    with session_scope(factory) as s:
        fr = s.scalar(select(Organisation).where(Organisation.code == "FR-CUS"))
        assert fr is not None
        rows = s.execute(
            select(Consignment.org_id, Consignment.destination_country, Consignment.office)
        ).all()
        assert info.consignments == len(rows) == 30_000
        assert {r.org_id for r in rows} == {fr.id}
        assert {r.destination_country for r in rows} == {"FR"}
        assert {r.office for r in rows} <= set(DEMO_OFFICES)
        # nothing that arrives today or later has an inspection result; earlier ones do
        inspected = s.execute(
            select(Consignment.arrival_date).join(
                InspectionResult, InspectionResult.consignment_pk == Consignment.id
            )
        ).scalars()
        days = list(inspected)
        assert days and max(days) < TODAY
        assert s.scalar(select(func.count()).where(Consignment.arrival_date > TODAY)), "advance data expected"


def test_a_model_a_rule_and_todays_selection(loaded) -> None:  # type: ignore[no-untyped-def]
    factory, info, root = loaded
    with session_scope(factory) as s:
        model = s.scalar(select(TargetingModel).where(TargetingModel.active))
        assert model is not None and model.version == info.model_version
        # its validation rests on enough seizures to mean something (profiled past inspections)
        validation = model.metrics["validation"]
        assert validation["seizures"] >= 30 and validation["n"] >= 200, validation
        assert validation["auc"] > 0.75, validation
        assert Path(model.path).is_file() and Path(model.path).parent == root / "models"
        rule = s.scalar(select(TargetingRule).where(TargetingRule.code == info.rule))
        assert rule is not None and rule.status == RuleStatus.ACTIVE
        selection = s.scalar(select(TargetingSelection).where(TargetingSelection.day == TODAY))
        assert selection is not None and info.day == TODAY
        arriving = s.scalar(select(func.count()).where(Consignment.arrival_date == TODAY))
        assert selection.n_consignments == arriving > 100
        assert selection.n_selected == info.selected == arriving * 5 // 100  # 5 %, rounded down
        red = s.execute(
            select(ConsignmentScore.explanation, ConsignmentScore.model_version)
            .join(SelectionItem, SelectionItem.score_id == ConsignmentScore.id)
            .where(SelectionItem.selection_id == selection.id, SelectionItem.lane == "RED")
        ).all()
        assert len(red) == info.selected
        assert all(r.model_version == model.version and r.explanation for r in red)
        # the active rule hits the demo's consignments (a planted pattern)
        officer = cli_principal(s, "FR-CUS", Role.CONTACT_POINT)
        op = s.scalars(select(Operation).where(Operation.code == "STOP-IV")).one()
        assert targeting.test_rule(s, officer, op, rule.id).hits > 0


def test_rules_are_proposed_from_the_operations_own_seizures(loaded) -> None:  # type: ignore[no-untyped-def]
    """The operation is over (May 2025): the proposals' seizure window ends on its last day, not today."""
    factory, info, _ = loaded
    with session_scope(factory) as s:
        proposals = s.scalars(select(RuleProposal)).all()
        assert info.proposals == len(proposals) > 0
        op = s.scalars(select(Operation).where(Operation.code == "STOP-IV")).one()
        for p in proposals:
            window = p.evidence["reports_window"]
            assert window["until"] == str(op.ends_on), window
            assert p.evidence["seizure_reports"]["flagged"]
            assert p.destination_country == "FR", "a proposal targets what arrives in FR-CUS's country"


def test_loading_again_changes_nothing(loaded) -> None:  # type: ignore[no-untyped-def]
    factory, _, root = loaded
    with session_scope(factory) as s:
        before = s.scalar(select(func.count()).select_from(Consignment))
        again = seed_demo_targeting(
            s,
            operation="STOP-IV",
            org_code="FR-CUS",
            key_master=b"k" * 32,
            model_dir=root / "m2",
            today=TODAY,
        )
        assert again == TargetingDemoInfo()
        assert s.scalar(select(func.count()).select_from(Consignment)) == before
        assert s.scalar(select(func.count()).select_from(TargetingModel)) == 1


def test_demo_command_loads_and_prints_the_selection(monkeypatch, tmp_path) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("STOPNET_DATABASE_URL", f"sqlite:///{tmp_path / 'stopnet.db'}")
    monkeypatch.setenv("STOPNET_DATA_DIR", str(tmp_path))
    get_settings.cache_clear()
    from stopnet.cli import app as cli

    try:
        first = CliRunner().invoke(cli, ["demo", "--no-serve"])
        second = CliRunner().invoke(cli, ["demo", "--no-serve"])
    finally:
        get_settings.cache_clear()
    assert first.exit_code == 0, first.output
    assert "Risk targeting: 30,000 simulated consignments of FR-CUS" in first.output
    assert "/operations/STOP-IV/targeting/selection?day=" in first.output
    assert list((tmp_path / "models").glob("*.zip"))
    assert second.exit_code == 0, second.output
    assert "Risk targeting" not in second.output  # already loaded: left as it is
