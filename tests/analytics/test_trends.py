"""Emerging trends: the statistics, and planted rises found by the dashboard."""

from __future__ import annotations

import datetime as dt
import math
import random

import pytest

from stopnet.analytics import service
from stopnet.analytics.schemas import DashboardFilters
from stopnet.core.trends import benjamini_hochberg, betainc, binom_sf, detect_trends, rate_ratio
from stopnet.db.models import Operation
from tests.analytics.factories import C, S, seed

TODAY = dt.date(2025, 6, 30)


def exact_binom_sf(k: int, n: int, p: float) -> float:
    return sum(math.comb(n, i) * p**i * (1 - p) ** (n - i) for i in range(k, n + 1))


@pytest.mark.parametrize(
    ("k", "n", "p"),
    [(0, 5, 0.3), (1, 1, 0.5), (3, 10, 0.2), (7, 10, 0.2), (10, 10, 0.9), (11, 10, 0.5), (25, 60, 0.3)],
)
def test_binomial_tail_is_exact(k, n, p):
    assert binom_sf(k, n, p) == pytest.approx(exact_binom_sf(k, n, p), rel=1e-10, abs=1e-300)


def test_binomial_tail_matches_scipy_on_large_counts():
    scipy_stats = pytest.importorskip("scipy.stats")
    rng = random.Random(5)
    for _ in range(300):
        n = rng.choice([50, 500, 5000, 100_000])
        p, k = rng.random(), rng.randint(0, n)
        want = float(scipy_stats.binom.sf(k - 1, n, p))
        assert binom_sf(k, n, p) == pytest.approx(want, rel=1e-7, abs=1e-300)


def test_incomplete_beta_edges():
    assert betainc(2, 3, 0.0) == 0.0
    assert betainc(2, 3, 1.0) == 1.0
    assert betainc(1, 1, 0.37) == pytest.approx(0.37)
    with pytest.raises(ValueError):
        betainc(0, 1, 0.5)


def test_benjamini_hochberg():
    assert benjamini_hochberg([]) == []
    q = benjamini_hochberg([0.01, 0.04, 0.03, 0.5])
    assert q == pytest.approx([0.04, 0.04 * 4 / 3, 0.04 * 4 / 3, 0.5])  # monotone step-up
    assert all(0 <= v <= 1 for v in benjamini_hochberg([0.9, 0.95, 1.0]))


def test_rate_ratio():
    assert rate_ratio(20, 10, 100, 100) == 2.0
    assert rate_ratio(5, 0, 100, 100) == pytest.approx(11.0)  # 0.5 added to both
    assert math.isnan(rate_ratio(1, 1, 0, 10))


def test_detect_trends_flat_and_rising():
    rng = random.Random(1)
    flat = {("commodity", f"C{i}"): (rng.randint(40, 60), rng.randint(15, 25)) for i in range(20)}
    before, after = sum(v[0] for v in flat.values()), sum(v[1] for v in flat.values())
    assert not any(r.flagged for r in detect_trends(flat, before, after))
    rising = dict(flat)
    rising[("brand", "Hot")] = (10, 40)
    results = detect_trends(rising, before + 10, after + 40)
    assert results[0].code == "Hot" and results[0].flagged
    assert results[0].rate_ratio > 5
    assert [r for r in results if r.flagged] == results[:1]
    assert detect_trends(flat, 0, 10) == []


def trend_world(session_factory, world, *, planted: bool) -> None:
    """19 days; steady reports of many kinds; with ``planted``, weight-loss pens and cosmetics take off
    over the last 5 days (while the total activity rises too, as administrations join in)."""
    rng = random.Random(42)
    steady = [
        "IPR-CLOTH",
        "IPR-FOOT",
        "IPR-WATCH",
        "MED-NERV",
        "MED-ANTIINF",
        "OTH-FOOD",
        "IPR-PHONE",
        "MED-GENURO",
    ]
    cases = []
    for day in range(12, 31):
        volume = 12 + (day - 12)  # activity ramps up
        for _ in range(volume):
            cases.append(
                C(
                    org=rng.choice(["FR-CUS", "DE-CUS", "KE-CUS"]),
                    day=day,
                    channel=rng.choice(["POSTAL", "EXPRESS"]),
                    origin=rng.choice(["CN", "HK", "IN"]),
                    seizures=[S(code=rng.choice(steady), brand=rng.choice(["", "Brand X", "Runfast"]))],
                )
            )
        weight, cosm = (1, 1)
        if planted and day >= 26:
            weight, cosm = 9, 7
        cases += [
            C(org="FR-CUS", day=day, seizures=[S(code="MED-WEIGHT", brand="Slimfast")]) for _ in range(weight)
        ]
        cases += [C(org="DE-CUS", day=day, seizures=[S(code="OTH-COSM")]) for _ in range(cosm)]
    seed(session_factory, world, cases)


def test_planted_rises_are_detected_and_ranked_first(db, world, session_factory):
    trend_world(session_factory, world, planted=True)
    op = db.get_one(Operation, world.op.id)
    t = service.dashboard(db, world["coordinator"].principal, op, DashboardFilters(), today=TODAY).trends
    assert (t.recent_from, t.recent_to) == (dt.date(2025, 5, 26), dt.date(2025, 5, 30))
    assert (t.baseline_from, t.baseline_to) == (dt.date(2025, 5, 12), dt.date(2025, 5, 25))
    flagged = [r for r in t.rows if r.flagged]
    commodity_flags = [(r.dimension, r.code) for r in flagged if r.dimension == "commodity"]
    assert commodity_flags[:2] == [("commodity", "MED-WEIGHT"), ("commodity", "OTH-COSM")] or set(
        commodity_flags[:2]
    ) == {("commodity", "MED-WEIGHT"), ("commodity", "OTH-COSM")}
    top_two = {(r.dimension, r.code) for r in t.rows[:2]}
    assert top_two <= {("commodity", "MED-WEIGHT"), ("commodity", "OTH-COSM"), ("brand", "Slimfast")}
    weight = next(r for r in t.rows if r.code == "MED-WEIGHT")
    assert weight.after == 45 and weight.before == 14
    assert weight.rate_ratio > 3 and weight.q_value < 0.001
    assert weight.label == "Weight-loss products"
    # nothing else rises: every flag is one of the planted items (the brand of the pens rises with them)
    assert {(r.dimension, r.code) for r in flagged} <= {
        ("commodity", "MED-WEIGHT"),
        ("commodity", "OTH-COSM"),
        ("brand", "Slimfast"),
    }


def test_flat_data_flags_nothing(db, world, session_factory):
    trend_world(session_factory, world, planted=False)
    op = db.get_one(Operation, world.op.id)
    t = service.dashboard(db, world["coordinator"].principal, op, DashboardFilters(), today=TODAY).trends
    assert t.tested > 10
    assert not [r for r in t.rows if r.flagged]


def test_trend_window_needs_a_baseline(db, world, session_factory):
    trend_world(session_factory, world, planted=True)
    op = db.get_one(Operation, world.op.id)
    f = DashboardFilters(date_from="2025-05-27")
    t = service.dashboard(db, world["coordinator"].principal, op, f, today=TODAY).trends
    assert t.rows == [] and t.recent_from is None
