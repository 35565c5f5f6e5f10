"""The published figures of WCO Operations STOP III and STOP IV, as typed constants.

Every figure a simulation is calibrated to lives here, once. Each :class:`OperationSpec` says which of
its fields were **published** by the WCO (:attr:`OperationSpec.published`) and, for every other field,
why the value was **assumed** (:attr:`OperationSpec.assumptions`). ``docs/simulation.md`` explains the
choices in prose.

Sources (kept in ``shared/seeds``):

* STOP IV — WCO news item on the 3rd Symposium "Removing Counterfeits from E-Commerce"
  (25 November 2025): 12–30 May 2025; 119 Customs administrations; 1,066 cases; 1,774 seizures;
  IPR 5.5 million pieces / 68 t; medicines 171.7 million pieces / 27 t; other 10.9 million pieces /
  106 t; RILO support; partners EU (DG TAXUD), Europol, Guardia di Finanza, INCB, INTERPOL, OLAF; an
  increasing trend of counterfeit health or beauty products, ongoing weight-loss products.
* STOP III — WCO operation leaflet: 4–15 December 2023; 111 Members confirmed support; 894 cases and
  1,488 seizures reported by 48 Members; 43.5 million medical pieces; 1.1 million IPR pieces; more than
  45 million pieces in all; e-commerce ≈ 63 % of seizures; all six WCO regions reported e-commerce
  cases; partners INTERPOL, IOC, OLAF; clothing then footwear the most reported e-commerce categories;
  nervous-system agents the most reported medicines; by quantity anti-infectives first and medicines
  the top three; among IPR goods, transportation and spare parts first by quantity.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from types import MappingProxyType
from typing import NamedTuple

__all__ = [
    "GROUPS",
    "SPECS",
    "STOP_III",
    "STOP_IV",
    "GroupTotals",
    "OperationSpec",
    "PartnerSpec",
    "PhaseSpec",
]

#: Commodity groups of the reference taxonomy, in reporting order.
GROUPS: tuple[str, ...] = ("ipr", "medicines", "other")


class GroupTotals(NamedTuple):
    """Totals of one commodity group: pieces (items) and weight in kilograms (3 decimals)."""

    pieces: int
    weight_kg: Decimal


@dataclass(frozen=True)
class PartnerSpec:
    """An international partner organisation supporting the operation (an ``OrgKind.PARTNER`` org)."""

    code: str
    name: str
    country_code: str | None = None


@dataclass(frozen=True)
class PhaseSpec:
    """One phase of the operation; only the operational phase accepts reports."""

    name: str
    starts_on: dt.date
    ends_on: dt.date
    description: str = ""
    accepts_reports: bool = False


@dataclass(frozen=True)
class OperationSpec:
    """The figures of one operation that a simulation reproduces exactly.

    ``participants`` is the number of customs administrations taking part (members of the operation);
    ``reporting_members`` how many of them reported at least one case. ``group_totals`` maps each
    commodity group (``ipr``, ``medicines``, ``other``) to its exact totals. ``ecommerce_share_of_seizures``
    is the share (0–1) of seizures that belong to e-commerce cases.
    """

    code: str
    name: str
    starts_on: dt.date
    ends_on: dt.date
    scope: str
    participants: int
    reporting_members: int
    cases: int
    seizures: int
    group_totals: Mapping[str, GroupTotals]
    ecommerce_share_of_seizures: float
    partners: tuple[PartnerSpec, ...]
    rilo_support: bool
    phases: tuple[PhaseSpec, ...]
    #: Commodity codes whose reports rise over the operation (planted when ``plant_trends`` is on).
    trend_commodities: tuple[str, ...] = ()
    #: Names of the fields above whose values were published by the WCO.
    published: frozenset[str] = frozenset()
    #: Field (or ``group_totals.<group>.<pieces|weight_kg>``) -> why the value was assumed.
    assumptions: Mapping[str, str] = field(default_factory=dict)
    sources: tuple[str, ...] = ()

    @property
    def days(self) -> int:
        """Number of days of the operational phase, both ends included."""
        return (self.ends_on - self.starts_on).days + 1

    @property
    def total_pieces(self) -> int:
        return sum(t.pieces for t in self.group_totals.values())

    @property
    def total_weight_kg(self) -> Decimal:
        return sum((t.weight_kg for t in self.group_totals.values()), Decimal(0))

    def is_published(self, name: str) -> bool:
        """Whether a field (e.g. ``"cases"`` or ``"group_totals.ipr.pieces"``) is a published figure."""
        return name in self.published

    def __post_init__(self) -> None:
        if set(self.group_totals) != set(GROUPS):
            raise ValueError(f"group_totals must cover exactly {GROUPS}")
        if self.seizures < self.cases:
            raise ValueError("every case holds at least one seizure")
        if self.reporting_members > self.participants:
            raise ValueError("reporting members are a subset of the participants")
        if not 0 <= self.ecommerce_share_of_seizures <= 1:
            raise ValueError("ecommerce_share_of_seizures is a share between 0 and 1")
        for g, t in self.group_totals.items():
            if t.weight_kg != t.weight_kg.quantize(Decimal("0.001")):
                raise ValueError(f"{g}: weight_kg has more than 3 decimals")
        if self.ends_on < self.starts_on:
            raise ValueError("ends_on is before starts_on")


def _kg(value: str) -> Decimal:
    return Decimal(value).quantize(Decimal("0.001"))


_SCOPE = (
    "Counterfeit and falsified medicines, medical devices and vaccines, and other products infringing "
    "intellectual property rights, in particular consumer products affecting citizens' health and "
    "safety, sold via e-commerce."
)

STOP_IV = OperationSpec(
    code="STOP-IV",
    name="Operation STOP IV",
    starts_on=dt.date(2025, 5, 12),
    ends_on=dt.date(2025, 5, 30),
    scope=_SCOPE,
    participants=119,
    reporting_members=52,
    cases=1066,
    seizures=1774,
    group_totals=MappingProxyType(
        {
            "ipr": GroupTotals(5_500_000, _kg("68000")),
            "medicines": GroupTotals(171_700_000, _kg("27000")),
            "other": GroupTotals(10_900_000, _kg("106000")),
        }
    ),
    ecommerce_share_of_seizures=0.63,
    partners=(
        PartnerSpec("EU-TAXUD", "European Commission, DG TAXUD", "BE"),
        PartnerSpec("EUROPOL", "Europol", "NL"),
        PartnerSpec("IT-GDF", "Guardia di Finanza", "IT"),
        PartnerSpec("INCB", "International Narcotics Control Board", "AT"),
        PartnerSpec("INTERPOL", "INTERPOL", "FR"),
        PartnerSpec("OLAF", "European Anti-Fraud Office (OLAF)", "BE"),
    ),
    rilo_support=True,
    phases=(
        PhaseSpec(
            "Pre-operational workshops",
            dt.date(2025, 4, 7),
            dt.date(2025, 5, 9),
            "Four regional online workshops (217 Customs officers) and a stakeholder session with "
            "international organisations, platform and logistics operators and rights holders.",
        ),
        PhaseSpec(
            "Operational phase",
            dt.date(2025, 5, 12),
            dt.date(2025, 5, 30),
            "Intensified inspections of high-risk consignments; seizures reported in real time.",
            accepts_reports=True,
        ),
        PhaseSpec(
            "Post-operational analysis",
            dt.date(2025, 6, 2),
            dt.date(2025, 11, 25),
            "Validation and analysis of the results, presented at the 3rd Symposium on 25 November 2025.",
        ),
    ),
    trend_commodities=("MED-WEIGHT", "OTH-COSM"),
    published=frozenset(
        {
            "code",
            "name",
            "starts_on",
            "ends_on",
            "scope",
            "participants",
            "cases",
            "seizures",
            "group_totals.ipr.pieces",
            "group_totals.ipr.weight_kg",
            "group_totals.medicines.pieces",
            "group_totals.medicines.weight_kg",
            "group_totals.other.pieces",
            "group_totals.other.weight_kg",
            "partners",
            "rilo_support",
            "trend_commodities",
        }
    ),
    assumptions=MappingProxyType(
        {
            "reporting_members": "Not published. STOP III had 48 reporting Members out of 111 (43 %); the "
            "same ratio on 119 administrations gives 51, rounded up to 52 for the larger caseload.",
            "ecommerce_share_of_seizures": "Not published for STOP IV; STOP III's ≈ 63 % is used.",
            "group_totals": "Published rounded (5.5 million pieces, 68 tonnes, ...); the simulation "
            "matches the rounded values exactly (5,500,000 pieces, 68,000.000 kg, ...).",
            "phases": "Only the operational phase's dates are published; the workshop and analysis "
            "phases' dates are assumed (the results were presented on 25 November 2025).",
        }
    ),
    sources=("WCO, 'The WCO 3rd Symposium on Removing Counterfeits from E-Commerce', 25 November 2025.",),
)

STOP_III = OperationSpec(
    code="STOP-III",
    name="Operation STOP III",
    starts_on=dt.date(2023, 12, 4),
    ends_on=dt.date(2023, 12, 15),
    scope=_SCOPE,
    participants=111,
    reporting_members=48,
    cases=894,
    seizures=1488,
    group_totals=MappingProxyType(
        {
            "ipr": GroupTotals(1_100_000, _kg("14200")),
            "medicines": GroupTotals(43_500_000, _kg("7350")),
            "other": GroupTotals(450_000, _kg("5600")),
        }
    ),
    ecommerce_share_of_seizures=0.63,
    partners=(
        PartnerSpec("INTERPOL", "INTERPOL", "FR"),
        PartnerSpec("IOC", "International Olympic Committee", "CH"),
        PartnerSpec("OLAF", "European Anti-Fraud Office (OLAF)", "BE"),
    ),
    rilo_support=True,
    phases=(
        PhaseSpec(
            "Pre-operational workshops",
            dt.date(2023, 10, 16),
            dt.date(2023, 11, 24),
            "Four two-day regional online workshops (some 230 participants) with the RILOs, INTERPOL and "
            "the IOC, and awareness sessions by nineteen rights holders and platform operators.",
        ),
        PhaseSpec(
            "Operational phase",
            dt.date(2023, 12, 4),
            dt.date(2023, 12, 15),
            "Interception of fake or substandard medicines, medical devices, vaccines and other "
            "consumer products sold via e-commerce; daily data visualisation on CENcomm.",
            accepts_reports=True,
        ),
        PhaseSpec(
            "Post-operational analysis",
            dt.date(2023, 12, 18),
            dt.date(2024, 3, 29),
            "Validation and analysis of the results.",
        ),
    ),
    trend_commodities=("MED-WEIGHT", "OTH-COSM"),
    published=frozenset(
        {
            "code",
            "name",
            "starts_on",
            "ends_on",
            "scope",
            "participants",
            "reporting_members",
            "cases",
            "seizures",
            "group_totals.ipr.pieces",
            "group_totals.medicines.pieces",
            "ecommerce_share_of_seizures",
            "partners",
            "rilo_support",
        }
    ),
    assumptions=MappingProxyType(
        {
            "group_totals.other.pieces": "Not published: 'more than 45 million pieces' in all, 43.5 M "
            "medical and 1.1 M IPR; 450,000 other pieces make the total 45,050,000, just over 45 M.",
            "group_totals.ipr.weight_kg": "Not published; 14.2 t assumes STOP IV's ≈ 12 g per IPR piece.",
            "group_totals.medicines.weight_kg": "Not published; 7.35 t assumes ≈ 0.17 g per medical "
            "piece (STOP IV: 0.16 g).",
            "group_totals.other.weight_kg": "Not published; 5.6 t assumes ≈ 12 g per other piece.",
            "trend_commodities": "The rising health and beauty products were reported for STOP IV; the "
            "same commodities are planted in STOP III.",
            "phases": "Only the operational phase's dates are published; the workshop and analysis "
            "phases' dates are assumed.",
        }
    ),
    sources=("WCO, 'Operation STOP III' results leaflet (2024).",),
)

#: Every spec by operation code.
SPECS: Mapping[str, OperationSpec] = MappingProxyType({s.code: s for s in (STOP_IV, STOP_III)})
