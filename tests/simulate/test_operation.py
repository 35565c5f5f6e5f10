"""The pure simulation: exact totals, shapes, determinism and the planted trend (no database)."""

from __future__ import annotations

import statistics
from collections import Counter
from decimal import Decimal

import pytest

from stopnet.reference import get_reference
from stopnet.simulate import (
    GROUPS,
    SPECS,
    STOP_III,
    STOP_IV,
    OperationSpec,
    SimulatedOperation,
    apportion,
    simulate_operation,
)

REGIONS = {"AP", "EUR", "ESA", "WCA", "MENA", "AMS"}
_CACHE: dict[tuple[str, int, bool], SimulatedOperation] = {}


def sim_of(spec: OperationSpec, seed: int = 42, plant_trends: bool = True) -> SimulatedOperation:
    key = (spec.code, seed, plant_trends)
    if key not in _CACHE:
        _CACHE[key] = simulate_operation(spec, seed, plant_trends=plant_trends)
    return _CACHE[key]


def group_of(code: str) -> str:
    return get_reference().commodities[code].group


# ---------------------------------------------------------------------------------------------- specs


def test_specs_hold_the_published_figures() -> None:
    assert set(SPECS) == {"STOP-IV", "STOP-III"}
    iv = STOP_IV
    assert (iv.starts_on.isoformat(), iv.ends_on.isoformat()) == ("2025-05-12", "2025-05-30")
    assert (iv.participants, iv.cases, iv.seizures) == (119, 1066, 1774)
    assert iv.group_totals["ipr"] == (5_500_000, Decimal("68000.000"))
    assert iv.group_totals["medicines"] == (171_700_000, Decimal("27000.000"))
    assert iv.group_totals["other"] == (10_900_000, Decimal("106000.000"))
    assert {p.code for p in iv.partners} == {"EU-TAXUD", "EUROPOL", "IT-GDF", "INCB", "INTERPOL", "OLAF"}
    iii = STOP_III
    assert (iii.starts_on.isoformat(), iii.ends_on.isoformat()) == ("2023-12-04", "2023-12-15")
    assert (iii.participants, iii.reporting_members, iii.cases, iii.seizures) == (111, 48, 894, 1488)
    assert iii.group_totals["medicines"].pieces == 43_500_000
    assert iii.group_totals["ipr"].pieces == 1_100_000
    assert 45_000_000 < iii.total_pieces < 45_500_000  # "more than 45 million pieces"
    assert {p.code for p in iii.partners} == {"INTERPOL", "IOC", "OLAF"}


@pytest.mark.parametrize("spec", [STOP_IV, STOP_III], ids=lambda s: s.code)
def test_every_figure_is_published_or_a_documented_assumption(spec: OperationSpec) -> None:
    fields = [
        "participants",
        "reporting_members",
        "cases",
        "seizures",
        "ecommerce_share_of_seizures",
        "partners",
    ]
    fields += [f"group_totals.{g}.{k}" for g in GROUPS for k in ("pieces", "weight_kg")]
    for name in fields:
        assert spec.is_published(name) or name in spec.assumptions, name
    assert not spec.is_published("reporting_members") or spec.code == "STOP-III"
    assert "reporting_members" in STOP_IV.assumptions


# ---------------------------------------------------------------------------------------------- apportion


def test_apportion_is_exact_and_proportional() -> None:
    assert apportion(10, [1, 1, 1]) == [4, 3, 3]
    assert apportion(0, [1, 2]) == [0, 0]
    assert apportion(7, [0, 1], minimum=2) == [2, 5]
    shares = apportion(171_700_000, [0.1 * i + 1e-9 for i in range(500)])
    assert sum(shares) == 171_700_000
    with pytest.raises(ValueError):
        apportion(3, [1, 1], minimum=2)


# ---------------------------------------------------------------------------------------------- totals


@pytest.mark.parametrize("spec", [STOP_IV, STOP_III], ids=lambda s: s.code)
@pytest.mark.parametrize("seed", [42, 7, 2025])
def test_totals_match_the_spec_exactly(spec: OperationSpec, seed: int) -> None:
    sim = sim_of(spec, seed)
    assert len(sim.cases) == spec.cases
    assert sim.seizure_count == spec.seizures
    assert sim.group_totals() == dict(spec.group_totals)
    for _, s in sim.seizures():
        assert s.pieces > 0 or s.weight_kg > 0
        assert s.weight_kg == s.weight_kg.quantize(Decimal("0.001"))
    assert abs(sim.ecommerce_share - spec.ecommerce_share_of_seizures) <= 0.01
    assert len(sim.administrations) == spec.participants
    assert len(sim.reporting) == spec.reporting_members
    assert set(sim.reporting) <= set(sim.administrations)
    assert {c.reporting_country for c in sim.cases} == set(sim.reporting)


def test_kilograms_sum_to_the_gram() -> None:
    sim = sim_of(STOP_IV)
    kg = sum((s.weight_kg for _, s in sim.seizures() if group_of(s.commodity_code) == "ipr"), Decimal(0))
    assert str(kg) == "68000.000"


# ---------------------------------------------------------------------------------------------- shape


@pytest.mark.parametrize("spec", [STOP_IV, STOP_III], ids=lambda s: s.code)
def test_all_six_regions_take_part_and_report_ecommerce(spec: OperationSpec) -> None:
    sim = sim_of(spec)
    ref = get_reference()
    assert {ref.region_of(c) for c in sim.administrations} == REGIONS
    assert {sim.regions[c] for c in sim.reporting} == REGIONS
    assert {c.region_code for c in sim.cases if c.data.is_ecommerce} == REGIONS
    per_region = Counter(sim.regions[c] for c in sim.administrations)
    largest_two = {r for r, _ in per_region.most_common(2)}
    assert largest_two == {"EUR", "AP"}
    for c in sim.administrations:
        assert ref.countries[c].wco_member


@pytest.mark.parametrize("spec", [STOP_IV, STOP_III], ids=lambda s: s.code)
def test_cases_are_plausible(spec: OperationSpec) -> None:
    sim = sim_of(spec)
    for c in sim.cases:
        d = c.data
        assert spec.starts_on <= c.detected_on == d.detected_on <= spec.ends_on
        assert d.destination_country == c.reporting_country
        assert d.origin_country != d.destination_country
        assert c.reporting_country not in d.transit_countries
        assert d.submit is True
        assert d.reference.startswith(f"{c.reporting_country}-{spec.code}-")
        if d.is_ecommerce:
            assert d.channel in ("POSTAL", "EXPRESS")
            assert d.platform_type is not None
        else:
            assert d.channel not in ("POSTAL", "EXPRESS")
            assert d.platform_type is None
    refs = [(c.reporting_country, c.data.reference) for c in sim.cases]
    assert len(set(refs)) == len(refs)
    origins = Counter(c.data.origin_country for c in sim.cases)
    assert origins.most_common(1)[0][0] == "CN"
    assert {"CN", "HK", "IN", "TR"} <= {o for o, _ in origins.most_common(8)}
    assert len({c.detected_on for c in sim.cases}) == spec.days  # reports every day
    assert Counter(c.data.visibility for c in sim.cases).most_common(1)[0][0] == "participants"


@pytest.mark.parametrize("seed", [42, 1, 99])
def test_commodity_rankings_follow_the_seeds(seed: int) -> None:
    sim = sim_of(STOP_IV, seed)
    ecom = Counter(s.commodity_code for c, s in sim.seizures() if c.data.is_ecommerce)
    assert [code for code, _ in ecom.most_common(2)] == ["IPR-CLOTH", "IPR-FOOT"]
    reports = Counter(s.commodity_code for _, s in sim.seizures())
    medicines = [(n, code) for code, n in reports.items() if code.startswith("MED-")]
    assert max(medicines)[1] == "MED-NERV"
    pieces: Counter[str] = Counter()
    for _, s in sim.seizures():
        pieces[s.commodity_code] += s.pieces
    top3 = [code for code, _ in pieces.most_common(3)]
    assert top3[0] == "MED-ANTIINF"
    assert all(code.startswith("MED-") for code in top3)
    ipr = [(n, code) for code, n in pieces.items() if code.startswith("IPR-")]
    assert max(ipr)[1] == "IPR-TRANSP"


def test_quantities_are_heavy_tailed() -> None:
    sim = sim_of(STOP_IV)
    med = sorted(
        (s.pieces for _, s in sim.seizures() if group_of(s.commodity_code) == "medicines"), reverse=True
    )
    assert sum(med[:5]) > 0.2 * sum(med)  # a few huge seizures
    assert med[0] > 1_000_000
    assert statistics.median(med) < 1_000  # many small parcels
    parcels = [
        s.pieces for c, s in sim.seizures() if c.data.is_ecommerce and group_of(s.commodity_code) == "ipr"
    ]
    assert statistics.median(parcels) <= 10


def test_daily_arrivals_ramp_up_and_dip_at_weekends() -> None:
    sim = sim_of(STOP_IV)
    per_day = Counter(c.detected_on for c in sim.cases)
    days = sorted(per_day)
    first_two = per_day[days[0]] + per_day[days[1]]
    weekdays = [per_day[d] for d in days if d.weekday() < 5]
    weekends = [per_day[d] for d in days if d.weekday() >= 5]
    assert first_two / 2 < statistics.mean(weekdays)
    assert statistics.mean(weekends) < statistics.mean(weekdays)


# ---------------------------------------------------------------------------------------------- determinism, trend


def test_same_seed_same_output_other_seed_other_output() -> None:
    a = simulate_operation(STOP_IV, 42)
    b = simulate_operation(STOP_IV, 42)
    assert a.administrations == b.administrations
    assert [c.data.model_dump() for c in a.cases] == [c.data.model_dump() for c in b.cases]
    c = sim_of(STOP_IV, 7)
    assert [x.data.model_dump() for x in a.cases] != [x.data.model_dump() for x in c.cases]


def _trend_shares(sim: SimulatedOperation) -> list[float]:
    spec = sim.spec
    trend = set(spec.trend_commodities)
    counts = [[0, 0] for _ in range(3)]
    for c, s in sim.seizures():
        third = min(2, 3 * (c.detected_on - spec.starts_on).days // spec.days)
        counts[third][0] += 1
        counts[third][1] += s.commodity_code in trend
    return [t / n for n, t in counts]


@pytest.mark.parametrize("spec", [STOP_IV, STOP_III], ids=lambda s: s.code)
def test_rising_weight_loss_and_beauty_products_are_planted(spec: OperationSpec) -> None:
    first, _, last = _trend_shares(sim_of(spec))
    assert last > first * 1.5
    flat = sim_of(spec, plant_trends=False)
    assert flat.group_totals() == dict(spec.group_totals)  # the trend moves dates only
    f_first, _, f_last = _trend_shares(flat)
    assert (f_last - f_first) < (last - first)


@pytest.mark.parametrize("spec", [STOP_IV, STOP_III], ids=lambda s: s.code)
@pytest.mark.parametrize("seed", [42, 7, 2025])
def test_each_planted_commodity_rises_in_the_last_five_days(spec: OperationSpec, seed: int) -> None:
    """Each trend commodity on its own (not only together): its share of seizures in the last five days
    is at least twice the earlier days' (the dashboard's default trend window), for every seed."""
    sim = sim_of(spec, seed)
    recent_from = spec.ends_on.toordinal() - 4
    seizures = [(c.detected_on.toordinal() >= recent_from, s.commodity_code) for c, s in sim.seizures()]
    total_after = sum(after for after, _ in seizures)
    total_before = len(seizures) - total_after
    for code in spec.trend_commodities:
        after = sum(1 for late, c in seizures if late and c == code)
        before = sum(1 for late, c in seizures if not late and c == code)
        assert before > 0, code  # reported before the last days too
        assert (after / total_after) / (before / total_before) >= 2.0, code


@pytest.mark.parametrize("spec", [STOP_IV, STOP_III], ids=lambda s: s.code)
def test_every_case_is_reported_to_the_operation(spec: OperationSpec) -> None:
    """No simulated case is kept ``own`` (read by its reporter only): the coordinator reads every one, so
    its figures are the published ones; restricted cases are ``coordinator`` cases."""
    visibilities = Counter(c.data.visibility.value for c in sim_of(spec).cases)
    assert set(visibilities) == {"participants", "partners", "coordinator"}
