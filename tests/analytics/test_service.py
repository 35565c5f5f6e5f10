"""Dashboard aggregates: equal to direct counts, visibility kept, filters applied to every panel."""

from __future__ import annotations

import dataclasses
import datetime as dt
import random
import time
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import and_, distinct, func, select

from stopnet.access import policy
from stopnet.analytics import service
from stopnet.analytics.schemas import PANELS, DashboardFilters, panel_attr
from stopnet.db.models import Case, CaseStatus, Operation, Seizure, Visibility
from stopnet.reference import get_reference
from tests.analytics.factories import C, S, seed

COUNTED = (CaseStatus.SUBMITTED, CaseStatus.VALIDATED)
TODAY = dt.date(2025, 6, 30)  # the operation (12-30 May 2025) is over


def op_of(db: Any, world: Any) -> Operation:
    return db.get_one(Operation, world.op.id)


def dash(db: Any, world: Any, actor: str, **filters: Any) -> Any:
    return service.dashboard(
        db, world[actor].principal, op_of(db, world), DashboardFilters(**filters), today=TODAY
    )


def random_cases(n: int, seed_: int = 7) -> list[C]:
    rng = random.Random(seed_)
    codes = [
        "MED-WEIGHT",
        "MED-NERV",
        "MED-ANTIINF",
        "IPR-CLOTH",
        "IPR-FOOT",
        "IPR-WATCH",
        "OTH-COSM",
        "OTH-FOOD",
    ]
    out = []
    for _ in range(n):
        ecom = rng.random() < 0.6
        out.append(
            C(
                org=rng.choice(["FR-CUS", "DE-CUS", "KE-CUS"]),
                day=rng.randint(12, 30),
                status=rng.choice([CaseStatus.VALIDATED, CaseStatus.SUBMITTED, CaseStatus.DRAFT]),
                visibility=rng.choice(list(Visibility)),
                channel=rng.choice(
                    ["POSTAL", "EXPRESS"] if ecom else ["AIR_CARGO", "ROAD_CARGO", "PASSENGER"]
                ),
                ecom=ecom,
                mode=rng.choice(["AIR", "ROAD", "SEA"]),
                detection=rng.choice(["RISK_PROFILE", "XRAY", "INTELLIGENCE"]),
                origin=rng.choice(["CN", "HK", "IN", "TR", None]),
                seizures=[
                    S(
                        code=rng.choice(codes),
                        pieces=rng.randint(0, 500),
                        kg=str(Decimal(rng.randint(0, 99999)) / 1000),
                        brand=rng.choice(["", "Brand X", "Runfast", "Glowup"]),
                    )
                    for _ in range(rng.randint(1, 3))
                ],
            )
        )
    return out


def direct(db: Any, world: Any, actor: str, f: DashboardFilters) -> dict[str, Any]:
    """The same figures counted straight from the tables, without the dashboard's code."""
    clause = policy.case_read_clause(db, world[actor].principal, world.op.id)
    where = [Case.operation_id == world.op.id, Case.status.in_(COUNTED), clause]
    if f.region:
        where.append(Case.region_code == f.region)
    if f.country:
        where.append(Case.reporting_country == f.country)
    if f.channel:
        where.append(Case.channel == f.channel)
    if f.is_ecommerce is not None:
        where.append(Case.is_ecommerce == f.is_ecommerce)
    if f.date_from:
        where.append(Case.detected_on >= f.date_from)
    if f.date_to:
        where.append(Case.detected_on <= f.date_to)
    if f.commodity_group:
        where.append(Seizure.commodity_group == f.commodity_group)
    if f.commodity_code:
        where.append(Seizure.commodity_code == f.commodity_code)
    joined = (
        select(Seizure.id)
        .select_from(Seizure)
        .join(Case, Case.id == Seizure.case_id)
        .where(*where)
        .subquery()
    )

    def grouped(col: Any) -> dict[Any, int]:
        rows = db.execute(
            select(col, func.count(Seizure.id))
            .select_from(Seizure)
            .join(Case, Case.id == Seizure.case_id)
            .where(*where)
            .group_by(col)
        ).all()
        return {k: v for k, v in rows if v}

    return {
        "seizures": db.scalar(select(func.count()).select_from(joined)),
        "cases": db.scalar(
            select(func.count(distinct(Case.id)))
            .select_from(Seizure)
            .join(Case, Case.id == Seizure.case_id)
            .where(*where)
        ),
        "pieces": db.scalar(
            select(func.coalesce(func.sum(Seizure.pieces), 0))
            .select_from(Seizure)
            .join(Case, Case.id == Seizure.case_id)
            .where(*where)
        ),
        "kg": Decimal(
            str(
                db.scalar(
                    select(func.coalesce(func.sum(Seizure.weight_kg), 0))
                    .select_from(Seizure)
                    .join(Case, Case.id == Seizure.case_id)
                    .where(*where)
                )
            )
        ),
        "ecom_seizures": db.scalar(
            select(func.count())
            .select_from(Seizure)
            .join(Case, Case.id == Seizure.case_id)
            .where(*where, Case.is_ecommerce.is_(True))
        ),
        "administrations": db.scalar(
            select(func.count(distinct(Case.reporting_org_id)))
            .select_from(Seizure)
            .join(Case, Case.id == Seizure.case_id)
            .where(*where)
        ),
        "region": grouped(Case.region_code),
        "country": grouped(Case.reporting_country),
        "commodity": grouped(Seizure.commodity_code),
        "channel": grouped(Case.channel),
        "mode": grouped(Case.transport_mode),
        "detection": grouped(Case.detection_method),
        "brand": {k: v for k, v in grouped(Seizure.brand).items() if k},
        "day": {
            k.isoformat() if isinstance(k, dt.date) else k: v for k, v in grouped(Case.detected_on).items()
        },
    }


def as_counts(breakdown: Any) -> dict[str, int]:
    return {r.code: r.seizures for r in breakdown.rows if r.seizures}


FILTER_SETS = [
    {},
    {"region": "EUR"},
    {"commodity_group": "medicines"},
    {"commodity_code": "IPR-CLOTH", "is_ecommerce": True},
    {"channel": "EXPRESS"},
    {"country": "KE"},
    {"date_from": "2025-05-15", "date_to": "2025-05-22"},
]


@pytest.mark.parametrize(
    "actor", ["coordinator", "admin", "fr_officer", "de_ncp", "analyst_we", "partner", "rights_holder"]
)
def test_aggregates_equal_direct_counts(db, world, session_factory, actor):
    seed(session_factory, world, random_cases(150))
    for fs in FILTER_SETS:
        f = DashboardFilters(**fs)
        d = service.dashboard(db, world[actor].principal, op_of(db, world), f, today=TODAY)
        want = direct(db, world, actor, f)
        kf = d.key_figures
        where = f"{actor} {fs}"
        assert kf.seizures == want["seizures"], where
        assert kf.cases == want["cases"], where
        assert kf.pieces == want["pieces"], where
        assert Decimal(str(kf.weight_kg)) == want["kg"], where
        assert kf.ecommerce_seizures == want["ecom_seizures"], where
        assert kf.reporting_administrations == want["administrations"], where
        assert sum(g.seizures for g in kf.groups) == want["seizures"], where
        assert as_counts(d.regions) == want["region"], where
        assert as_counts(d.countries) == want["country"], where
        assert as_counts(d.commodities) == want["commodity"], where
        assert as_counts(d.channels) == want["channel"], where
        assert as_counts(d.transport_modes) == want["mode"], where
        assert as_counts(d.detection_methods) == want["detection"], where
        assert {r.brand: r.seizures for r in d.brands.rows} == want["brand"], where
        assert {p.day.isoformat(): p.seizures for p in d.progression.days if p.seizures} == want["day"], where
        assert sum(r.seizures for r in d.routes.rows) <= want["seizures"]
        if d.progression.days:
            assert d.progression.days[-1].cumulative_seizures == want["seizures"], where


def test_partner_and_rights_holder_see_only_what_is_shared_with_them(db, world, session_factory):
    seed(
        session_factory,
        world,
        [
            C(visibility=Visibility.PARTNERS, seizures=[S(pieces=5)]),
            C(visibility=Visibility.PARTICIPANTS, seizures=[S(pieces=7)]),
            C(visibility=Visibility.COORDINATOR, seizures=[S(pieces=11)]),
            C(visibility=Visibility.OWN, seizures=[S(pieces=13)]),
            C(visibility=Visibility.PARTNERS, status=CaseStatus.DRAFT, seizures=[S(pieces=17)]),
        ],
    )
    assert dash(db, world, "partner").key_figures.pieces == 5
    assert dash(db, world, "de_officer").key_figures.pieces == 5 + 7
    assert dash(db, world, "coordinator").key_figures.pieces == 5 + 7 + 11
    assert dash(db, world, "fr_officer").key_figures.pieces == 5 + 7 + 11 + 13  # its own; never the draft
    assert dash(db, world, "rights_holder").key_figures.pieces == 0


def comparable(d: Any) -> dict[str, Any]:
    out = d.model_dump()
    out.pop("as_of")
    out.pop("fresh")
    return out


def test_an_own_case_of_fr_changes_fr_figures_only(db, world, session_factory):
    seed(session_factory, world, random_cases(40, seed_=3))
    before = {
        a: comparable(dash(db, world, a)) for a in ("fr_officer", "de_officer", "partner", "coordinator")
    }
    seed(
        session_factory,
        world,
        [
            C(
                org="FR-CUS",
                visibility=Visibility.OWN,
                channel="EXPRESS",
                origin="VN",
                detection="DETECTOR_DOG",
                seizures=[S(code="MED-ONCO", pieces=999, kg="9.999", brand="Secret brand")],
            )
        ],
    )
    after = {
        a: comparable(dash(db, world, a)) for a in ("fr_officer", "de_officer", "partner", "coordinator")
    }
    for actor in ("de_officer", "partner", "coordinator"):
        assert after[actor] == before[actor], actor  # not a trace of it, in any panel
    fr_before, fr_after = before["fr_officer"], after["fr_officer"]
    assert fr_after["key_figures"]["cases"] == fr_before["key_figures"]["cases"] + 1
    assert fr_after["key_figures"]["pieces"] == fr_before["key_figures"]["pieces"] + 999
    assert "Secret brand" in [b["brand"] for b in fr_after["brands"]["rows"]]


def test_filters_change_every_panel(db, world, session_factory):
    cases = random_cases(120, seed_=11)
    # KE (ESA) reports its own mix: other channels, routes, brands and goods
    cases += [
        C(
            org="KE-CUS",
            day=12 + i % 19,
            channel="PASSENGER",
            ecom=False,
            mode="ROAD",
            detection="DOCUMENT_CHECK",
            origin="AE",
            seizures=[S(code="MED-ANTIPAR", pieces=40 + i, brand="Malafake"), S(code="OTH-TOBAC", pieces=3)],
        )
        for i in range(30)
    ]
    seed(session_factory, world, cases)
    everything = dash(db, world, "coordinator")
    # (a filter on medicines would leave the medicines-only panel as it is: filter on other goods)
    for fs in (
        {"region": "ESA"},
        {"commodity_group": "ipr"},
        {"channel": "POSTAL", "is_ecommerce": True},
    ):
        filtered = dash(db, world, "coordinator", **fs)
        assert filtered.filters.active() == {k: v for k, v in fs.items()}
        for name in PANELS:
            attr = panel_attr(name)
            assert getattr(filtered, attr) != getattr(everything, attr), (fs, name)


def test_date_filter_limits_the_progression(db, world, session_factory):
    seed(session_factory, world, random_cases(60))
    d = dash(db, world, "coordinator", date_from="2025-05-15", date_to="2025-05-24")
    assert [p.day.isoformat() for p in d.progression.days] == [f"2025-05-{n}" for n in range(15, 25)]
    assert (d.trends.baseline_from, d.trends.recent_to) == (dt.date(2025, 5, 15), dt.date(2025, 5, 24))
    assert d.trends.total_before + d.trends.total_after == d.key_figures.seizures


def test_seizure_filter_counts_a_case_once(db, world, session_factory):
    seed(
        session_factory, world, [C(seizures=[S(code="MED-NERV"), S(code="MED-WEIGHT"), S(code="IPR-CLOTH")])]
    )
    d = dash(db, world, "coordinator", commodity_group="medicines")
    assert (d.key_figures.cases, d.key_figures.seizures) == (1, 2)
    assert d.regions.rows[0].cases == 1
    assert {r.code for r in d.therapeutic.rows} == {"MED-NERV", "MED-WEIGHT"}
    assert dash(db, world, "coordinator", commodity_group="other").key_figures.cases == 0


def test_key_figures_tiles_shape(db, world, session_factory):
    seed(
        session_factory,
        world,
        [
            C(org="FR-CUS", seizures=[S(code="MED-WEIGHT", pieces=1000, kg="2.5")]),
            C(
                org="KE-CUS",
                ecom=False,
                channel="AIR_CARGO",
                seizures=[S(code="IPR-FOOT", pieces=20, kg="10")],
            ),
            C(org="DE-CUS", seizures=[S(code="OTH-COSM", pieces=3, kg="0.25")]),
        ],
    )
    kf = dash(db, world, "coordinator").key_figures
    assert (kf.cases, kf.seizures, kf.reporting_administrations) == (3, 3, 3)
    assert {g.group: (g.pieces, g.weight_kg) for g in kf.groups} == {
        "medicines": (1000, 2.5),
        "ipr": (20, 10.0),
        "other": (3, 0.25),
    }
    assert kf.tonnes == 0.013  # 12.75 kg
    assert kf.ecommerce_share == pytest.approx(2 / 3, abs=1e-6)
    assert (kf.regions_reporting, kf.ecommerce_regions, kf.regions_total) == (2, 1, 6)
    assert (kf.first_day, kf.last_day) == (dt.date(2025, 5, 14), dt.date(2025, 5, 14))


def test_one_summary_serves_every_viewer_and_follows_new_reports(db, world, session_factory, monkeypatch):
    seed(session_factory, world, random_cases(30))
    builds = []
    real = service._build
    monkeypatch.setattr(service, "_build", lambda *a: builds.append(1) or real(*a))
    for actor in ("fr_officer", "de_officer", "partner", "coordinator", "fr_officer"):
        dash(db, world, actor)
    assert len(builds) == 1  # one scan of the tables for five viewers
    n = dash(db, world, "de_officer").key_figures.cases
    seed(session_factory, world, [C(org="KE-CUS")])
    assert dash(db, world, "de_officer").key_figures.cases == n + 1  # the new report is counted at once
    assert len(builds) == 2


def test_each_viewer_keeps_its_own_figures_across_rebuilds(db, world, session_factory, monkeypatch):
    """A rebuild with the same visibility keys reuses each viewer's allowed keys; one with a new key
    evaluates the clauses again. Either way a case kept to FR never counts for DE."""
    monkeypatch.setattr(service, "REBUILD_GAP_SECONDS", 0.0)  # every change is added up before answering
    seed(session_factory, world, [C(org="FR-CUS"), C(org="DE-CUS")])
    evaluations = []
    real = service._allowed_keys
    monkeypatch.setattr(service, "_allowed_keys", lambda *a: evaluations.append(1) or real(*a))

    def cases() -> tuple[int, int, int]:
        return tuple(dash(db, world, a).key_figures.cases for a in ("fr_officer", "de_officer", "ke_officer"))

    assert cases() == (2, 2, 2)
    assert len(evaluations) == 3  # one clause each
    seed(session_factory, world, [C(org="FR-CUS", visibility=Visibility.OWN)])  # a new visibility key
    assert cases() == (3, 2, 2)
    assert len(evaluations) == 6
    seed(session_factory, world, [C(org="FR-CUS", visibility=Visibility.OWN), C(org="DE-CUS")])
    assert cases() == (5, 3, 3)  # the same keys: nothing evaluated again, FR's own cases still FR's
    assert len(evaluations) == 6


def test_corrections_and_validation_move_the_figures(db, world, session_factory):
    (case_id,) = seed(session_factory, world, [C(org="FR-CUS", status=CaseStatus.SUBMITTED)])
    assert dash(db, world, "de_officer").key_figures.cases == 1
    with session_factory() as s:
        case = s.get_one(Case, case_id)
        case.visibility = Visibility.OWN  # as a correction would, through the ORM (updated_at moves)
        case.version += 1
        s.commit()
    assert dash(db, world, "de_officer").key_figures.cases == 0
    assert dash(db, world, "fr_officer").key_figures.cases == 1


def test_a_clause_outside_the_visibility_key_gets_its_own_summary(db, world, session_factory, monkeypatch):
    seed(session_factory, world, random_cases(60))
    real = policy.case_read_clause

    def narrower(session: Any, principal: Any, op_id: int) -> Any:
        return and_(real(session, principal, op_id), Case.channel == "POSTAL")

    monkeypatch.setattr(service.policy, "case_read_clause", narrower)
    d = dash(db, world, "coordinator")
    assert set(as_counts(d.channels)) == {"POSTAL"}
    want = direct(db, world, "coordinator", DashboardFilters())  # uses the patched clause too
    assert d.key_figures.seizures == want["seizures"]
    assert d.key_figures.cases == want["cases"]


def test_slow_summaries_are_refreshed_in_the_background(db, world, session_factory, monkeypatch):
    seed(session_factory, world, random_cases(20))
    first = dash(db, world, "coordinator")
    assert first.fresh
    monkeypatch.setattr(service, "SYNC_REBUILD_SECONDS", -1.0)  # every build counts as slow
    seed(session_factory, world, [C(org="KE-CUS", seizures=[S(pieces=1)])])
    stale = dash(db, world, "coordinator")
    assert not stale.fresh
    assert stale.key_figures.cases == first.key_figures.cases  # the previous figures answer at once
    deadline = time.monotonic() + 10
    while True:
        d = dash(db, world, "coordinator")
        if d.fresh:
            break
        assert time.monotonic() < deadline, "the background refresh did not finish"
        time.sleep(0.05)
    assert d.key_figures.cases == first.key_figures.cases + 1
    assert d.as_of >= stale.as_of


def test_empty_operation(db, world):
    d = dash(db, world, "coordinator")
    assert d.key_figures.cases == 0
    assert d.key_figures.ecommerce_share is None
    assert len(d.progression.days) == 19
    assert all(r.seizures == 0 for r in d.regions.rows)
    assert [r.code for r in d.regions.rows] == sorted(r.code for r in get_reference().regions)
    assert d.trends.rows == []


def test_token_without_read_scope_is_refused(db, world):
    from stopnet.core.errors import Forbidden

    token_principal = dataclasses.replace(
        world["coordinator"].principal, via="token", scopes=frozenset({"cases:write"})
    )
    with pytest.raises(Forbidden):
        service.dashboard(db, token_principal, op_of(db, world), DashboardFilters(), today=TODAY)


def test_csv_cells_cannot_be_formulas():
    for bad in ("=1+1", "+SUM(A1)", "-2+3", "@cmd", "\tx", "\rx", '=HYPERLINK("http://x")'):
        assert service.csv_cell(bad) == "'" + bad
    # full-width and small forms, and formula signs after spaces or invisible characters
    for bad in (
        "＝1+1",
        "＋SUM(A1)",
        "－2",
        "＠cmd",
        "﹦1",
        "\u200b=1+1",
        "\ufeff+1",
        "\u200d\u2060@x",
        " =1",
    ):
        assert service.csv_cell(bad) == "'" + bad, repr(bad)
    for fine in ("Brand X", "\u200bBrand", "１２", "50%", "a=b", "e-mail"):
        assert service.csv_cell(fine) == fine, repr(fine)
    assert service.csv_cell(-3) == -3  # numbers stay numbers


def test_an_old_summary_of_unchanged_data_is_still_up_to_date(db, world, session_factory, monkeypatch):
    seed(session_factory, world, random_cases(10))
    dash(db, world, "coordinator")
    monkeypatch.setattr(service, "CACHE_TTL_SECONDS", -1.0)  # every summary is old
    monkeypatch.setattr(service, "SYNC_REBUILD_SECONDS", -1.0)  # and refreshed in the background
    d = dash(db, world, "coordinator")
    assert d.fresh  # nothing changed: the figures are current, the refresh is only a precaution
