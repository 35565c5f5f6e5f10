"""Simulate one operation's reports, calibrated exactly to its published figures (pure: no database).

:func:`simulate_operation` turns an :class:`~stopnet.simulate.specs.OperationSpec` and a seed into the
participating administrations and every case they report, each a
:class:`~stopnet.reporting.schemas.CaseCreate` ready for :func:`stopnet.reporting.service.create_case`.

What is exact (for any seed): the number of cases and of seizures; pieces and kilograms per commodity
group (integers and thousandths of a kilogram are apportioned with the largest-remainder method, so the
sums are the published values to the piece and the gram); the number of e-commerce seizures
(``round(share × seizures)``); every date within the operation; at least one e-commerce case in every
WCO region. Everything else is drawn (see ``docs/simulation.md``):

* **administrations**: ``spec.participants`` WCO Members spread over the six regions (Europe and
  Asia/Pacific the largest), the more active administrations more likely; ``spec.reporting_members`` of
  them report, with a heavy-tailed number of cases each;
* **cases**: e-commerce cases travel by post or express; the others by air, sea, road or rail cargo, or
  with passengers. A case holds one or more seizures, mostly of one commodity group;
* **commodities**: e-commerce seizures are mostly clothing, then footwear; nervous-system agents are the
  most reported medicines; by quantity, anti-infectives come first and medicines take the top three;
  among IPR goods, transport and spare parts lead by quantity;
* **quantities**: parcels and passengers' goods are small (lognormal); cargo seizures share the rest of
  each group's total with heavy-tailed (lognormal σ≈1.9) weights: a few huge medicine seizures, many
  small parcels;
* **dates**: cases arrive day by day with a ramp-up over the first days and fewer on weekends;
  ``plant_trends`` moves the cases of each of ``spec.trend_commodities`` (weight-loss and beauty
  products) towards the last days by stratified quantiles, so that each one's rise is the planted one
  for any seed, without changing any total;
* **visibility**: every case is reported to the operation (none is ``own``), so the coordinator reads
  them all and its figures are the published ones;
* **routes**: origins mostly CN, HK, IN, TR, AE, SG, ...; destination = reporting country; the departure
  is the origin or a hub, sometimes with transit hubs.

The same ``(spec, seed, plant_trends)`` always gives the same output (one :class:`random.Random` seeded
with a string, no hash-order dependence).
"""

from __future__ import annotations

import datetime as dt
import math
import random
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from stopnet.db.models import Visibility
from stopnet.reference import Reference, get_reference
from stopnet.reporting.schemas import CaseCreate, SeizureIn

from .specs import GROUPS, GroupTotals, OperationSpec

__all__ = ["RIGHTS_HOLDERS", "SimulatedCase", "SimulatedOperation", "apportion", "simulate_operation"]

_MILLI = Decimal("0.001")

# ------------------------------------------------------------------------------------------ calibration

#: Share of participating administrations per WCO region (Europe and Asia/Pacific the largest).
REGION_PARTICIPATION: Mapping[str, float] = {
    "EUR": 0.30,
    "AP": 0.20,
    "AMS": 0.16,
    "ESA": 0.12,
    "WCA": 0.11,
    "MENA": 0.11,
}
#: Share of reporting administrations per region (at least two per region).
REGION_REPORTING: Mapping[str, float] = {
    "EUR": 0.34,
    "AP": 0.22,
    "AMS": 0.12,
    "ESA": 0.11,
    "WCA": 0.11,
    "MENA": 0.10,
}
#: Administrations most active in e-commerce enforcement: more likely to take part, and more cases.
ACTIVE: Mapping[str, float] = {
    # EUR
    "FR": 12, "DE": 8, "IT": 8, "ES": 7, "NL": 7, "BE": 6, "GB": 7, "PL": 6, "PT": 6, "AT": 4, "CH": 4,
    "SE": 3, "IE": 4, "CZ": 3, "RO": 4, "GR": 4, "HU": 3, "DK": 3, "FI": 3, "UA": 4, "TR": 6, "BG": 3,
    "SK": 2, "SI": 2, "HR": 2, "LT": 2, "LV": 2, "EE": 2, "NO": 3, "GE": 2, "IL": 3, "KZ": 2,
    # AP
    "CN": 8, "JP": 8, "KR": 8, "IN": 5, "AU": 6, "NZ": 4, "SG": 5, "MY": 5, "TH": 5, "ID": 5, "PH": 4,
    "VN": 4, "HK": 8, "MO": 3, "LK": 3, "BD": 3, "PK": 3,
    # AMS
    "US": 9, "CA": 6, "BR": 6, "MX": 6, "AR": 5, "CL": 4, "CO": 4, "PE": 4, "UY": 3, "EC": 3, "DO": 3,
    "JM": 2, "CR": 2, "PA": 2, "GT": 2, "PY": 2,
    # ESA
    "KE": 6, "ZA": 6, "TZ": 4, "UG": 4, "MZ": 3, "ZM": 3, "ZW": 3, "RW": 3, "ET": 3, "MU": 3, "BW": 2,
    "NA": 2, "MW": 2, "MG": 2, "AO": 2,
    # WCA
    "NG": 6, "GH": 5, "CI": 5, "SN": 5, "CM": 4, "BJ": 4, "TG": 4, "BF": 3, "ML": 3, "NE": 2, "GA": 2,
    "CD": 2, "CG": 2, "GN": 2,
    # MENA
    "MA": 6, "EG": 5, "SA": 6, "AE": 6, "DZ": 4, "TN": 4, "JO": 4, "OM": 3, "QA": 4, "BH": 3, "KW": 3,
    "LB": 2, "IQ": 2,
}  # fmt: skip

#: Administrations that always take part and report: the demo's home administration (``FR-CUS``).
ANCHORS: tuple[str, ...] = ("FR",)

#: Where goods come from, by commodity group (weights).
ORIGINS: Mapping[str, Mapping[str, float]] = {
    "ipr": {
        "CN": 45, "HK": 15, "TR": 8, "VN": 4, "TH": 3, "IN": 3, "AE": 3, "MY": 2, "ID": 2, "PK": 2,
        "BD": 1, "KR": 1, "SG": 1, "US": 2, "GB": 1, "DE": 1,
    },
    "medicines": {
        "IN": 34, "CN": 26, "HK": 5, "TR": 5, "AE": 4, "SG": 3, "PK": 4, "BD": 3, "US": 3, "GB": 2,
        "NL": 2, "DE": 1, "TH": 2, "VN": 1, "MY": 1, "EG": 1,
    },
    "other": {
        "CN": 40, "HK": 8, "TR": 8, "AE": 5, "KR": 6, "TH": 3, "VN": 3, "IN": 4, "US": 3, "GB": 2,
        "FR": 2, "IT": 2, "MY": 2, "ID": 2, "PL": 1,
    },
}  # fmt: skip
#: Transhipment, consolidation and express hubs.
HUBS: Mapping[str, float] = {
    "HK": 10, "SG": 8, "AE": 9, "TR": 6, "NL": 6, "BE": 5, "DE": 5, "GB": 4, "QA": 4, "KR": 2, "MY": 2,
    "PA": 2, "FR": 2,
}  # fmt: skip

ECOMMERCE_CHANNELS: Mapping[str, float] = {"POSTAL": 58, "EXPRESS": 42}
OTHER_CHANNELS: Mapping[str, float] = {
    "AIR_CARGO": 28,
    "SEA_CARGO": 24,
    "ROAD_CARGO": 18,
    "RAIL_CARGO": 4,
    "PASSENGER": 20,
    "OTHER": 6,
}
#: Channels whose seizures carry the bulk of the quantities.
CARGO_CHANNELS = frozenset({"AIR_CARGO", "SEA_CARGO", "ROAD_CARGO", "RAIL_CARGO"})

#: How many seizures of each commodity a pool holds (weights), per kind of case.
COUNT_WEIGHTS: Mapping[str, Mapping[str, float]] = {
    "ecommerce": {
        "IPR-CLOTH": 22, "IPR-FOOT": 15, "IPR-BAGS": 7, "IPR-WATCH": 6, "IPR-ELEC": 5, "IPR-PHONE": 4,
        "IPR-TOYS": 3, "IPR-SPORT": 3, "IPR-EYEW": 3, "IPR-PERF": 3, "IPR-MEDIA": 1, "IPR-TRANSP": 1.5,
        "IPR-OTHER": 1,
        "MED-NERV": 9, "MED-GENURO": 6, "MED-WEIGHT": 4.5, "MED-ANTIINF": 3, "MED-MUSC": 2,
        "MED-DERM": 2, "MED-HORM": 2, "MED-RESP": 1, "MED-CARDIO": 1, "MED-ALIM": 1, "MED-SENS": 1,
        "MED-VAR": 1, "MED-DEVICE": 2, "MED-OTHER": 1,
        "OTH-COSM": 5.5, "OTH-SUPPL": 3, "OTH-HOUSE": 1, "OTH-FOOD": 1, "OTH-TOBAC": 1, "OTH-OTHER": 1,
    },
    "small": {  # passengers and other non-cargo channels
        "IPR-CLOTH": 6, "IPR-FOOT": 4, "IPR-BAGS": 5, "IPR-WATCH": 5, "IPR-PERF": 2, "IPR-ELEC": 2,
        "IPR-EYEW": 2,
        "MED-NERV": 5, "MED-GENURO": 4, "MED-HORM": 2, "MED-WEIGHT": 1.5, "MED-ANTIINF": 2,
        "OTH-TOBAC": 3, "OTH-ALCO": 2, "OTH-COSM": 2, "OTH-FOOD": 1,
    },
    "cargo": {
        "IPR-TRANSP": 6, "IPR-CLOTH": 8, "IPR-FOOT": 6, "IPR-ELEC": 5, "IPR-TOYS": 4, "IPR-BAGS": 3,
        "IPR-PHONE": 3, "IPR-SPORT": 2, "IPR-OTHER": 2,
        "MED-ANTIINF": 6, "MED-NERV": 6, "MED-GENURO": 3, "MED-CARDIO": 2, "MED-ALIM": 2,
        "MED-ANTIPAR": 2, "MED-VACC": 1, "MED-ONCO": 1, "MED-BLOOD": 1, "MED-RESP": 1, "MED-DEVICE": 2,
        "MED-OTHER": 1, "MED-WEIGHT": 1,
        "OTH-COSM": 4, "OTH-FOOD": 4, "OTH-ALCO": 3, "OTH-TOBAC": 4, "OTH-HOUSE": 4, "OTH-CHEM": 2,
        "OTH-SUPPL": 2, "OTH-OTHER": 1,
    },
}  # fmt: skip
#: Commodities that get at least one cargo seizure (they lead the quantity rankings).
CARGO_REQUIRED = ("MED-ANTIINF", "MED-NERV", "MED-GENURO", "IPR-TRANSP", "OTH-FOOD", "OTH-TOBAC")

#: Share of each group's cargo quantity (pieces) per commodity. Anti-infectives first, medicines the top
#: three of all commodities; transport and spare parts first among IPR goods.
QUANTITY_SHARES: Mapping[str, float] = {
    "MED-ANTIINF": 30, "MED-NERV": 17, "MED-GENURO": 12, "MED-CARDIO": 7, "MED-ALIM": 6, "MED-ANTIPAR": 6,
    "MED-WEIGHT": 3, "MED-VACC": 2, "MED-ONCO": 2, "MED-BLOOD": 2, "MED-RESP": 3, "MED-DEVICE": 5,
    "MED-OTHER": 5,
    "IPR-TRANSP": 24, "IPR-OTHER": 16, "IPR-PHONE": 12, "IPR-CLOTH": 11, "IPR-FOOT": 8, "IPR-ELEC": 8,
    "IPR-TOYS": 9, "IPR-BAGS": 4, "IPR-SPORT": 4, "IPR-WATCH": 2, "IPR-EYEW": 2,
    "OTH-TOBAC": 30, "OTH-FOOD": 18, "OTH-COSM": 14, "OTH-HOUSE": 14, "OTH-ALCO": 8, "OTH-CHEM": 6,
    "OTH-SUPPL": 7, "OTH-OTHER": 3,
}  # fmt: skip
#: Published quantity rankings that the noise on :data:`QUANTITY_SHARES` must keep, per group.
QUANTITY_RANKED: tuple[tuple[str, ...], ...] = (("MED-ANTIINF", "MED-NERV", "MED-GENURO"), ("IPR-TRANSP",))


@dataclass(frozen=True)
class _Goods:
    """How one commodity is seized: typical parcel size, unit weight and value, labels."""

    median: float  # pieces in a parcel or a passenger's luggage (lognormal median)
    sigma: float
    unit_g: float  # grams per piece, packaging included
    unit_usd: float  # declared value per piece
    descriptions: tuple[str, ...]
    brands: tuple[tuple[str, str], ...] = ()  # (brand, rights holder); empty: unbranded/generic


#: The demo's two rights-holder organisations: code -> (name, country); seizures name them as rights holder.
RIGHTS_HOLDERS: Mapping[str, tuple[str, str]] = {
    "RH-NOVAFIT": ("Novafit Sports Group", "CH"),
    "RH-HALCYON": ("Halcyon Pharmaceuticals plc", "GB"),
}

_NOVAFIT = ("Novafit", RIGHTS_HOLDERS["RH-NOVAFIT"][0])
_KORVANE = ("Korvane", "Korvane Apparel Ltd")
_VIRELLE = ("Maison Virelle", "Virelle Luxe SA")
_TESSARO = ("Tessaro", "Tessaro Milano SpA")
_HALVORSEN = ("Halvorsen", "Halvorsen Horlogerie AG")
_QUBITRON = ("Qubitron", "Qubitron Electronics Corp.")
_PLIMBO = ("Plimbo", "Plimbo Toys A/S")
_DRIVANTA = ("Drivanta", "Drivanta Automotive GmbH")
_HALCYON = RIGHTS_HOLDERS["RH-HALCYON"][0]
_VALE = ("Lumière Vale", "Vale Beauté SAS")

GOODS: Mapping[str, _Goods] = {
    "IPR-CLOTH": _Goods(3, 0.9, 250, 8, ("T-shirts", "Hoodies", "Jerseys", "Jeans", "Caps"), (_NOVAFIT, _KORVANE, _VIRELLE, _TESSARO)),
    "IPR-FOOT": _Goods(2, 0.7, 900, 15, ("Sports shoes", "Sneakers", "Sandals"), (_NOVAFIT, _KORVANE, _TESSARO)),
    "IPR-BAGS": _Goods(2, 0.7, 700, 20, ("Handbags", "Wallets", "Backpacks", "Belts"), (_VIRELLE, _TESSARO)),
    "IPR-WATCH": _Goods(2, 0.9, 150, 25, ("Wrist watches", "Jewellery"), (_HALVORSEN, _VIRELLE)),
    "IPR-ELEC": _Goods(3, 0.9, 250, 12, ("Earphones", "Chargers", "Smart watches", "Power banks"), (_QUBITRON,)),
    "IPR-PHONE": _Goods(4, 1.0, 60, 5, ("Phone cases", "Phone batteries", "Charging cables"), (_QUBITRON,)),
    "IPR-TOYS": _Goods(4, 1.0, 150, 4, ("Plush toys", "Action figures", "Trading cards"), (_PLIMBO,)),
    "IPR-TRANSP": _Goods(4, 1.0, 120, 6, ("Brake pads", "Spark plugs", "Oil filters", "Airbag covers"), (_DRIVANTA,)),
    "IPR-SPORT": _Goods(2, 0.8, 300, 10, ("Football shirts", "Balls", "Golf clubs"), (_NOVAFIT,)),
    "IPR-EYEW": _Goods(3, 1.0, 60, 10, ("Sunglasses", "Spectacle frames"), (_VIRELLE, _TESSARO)),
    "IPR-MEDIA": _Goods(3, 1.0, 100, 3, ("DVDs", "Books", "Game cartridges"), (("Corvane Press", "Corvane Media Ltd"),)),
    "IPR-PERF": _Goods(3, 0.9, 250, 12, ("Perfume bottles", "Eau de toilette"), (_VIRELLE, _VALE)),
    "IPR-OTHER": _Goods(20, 1.2, 5, 0.2, ("Labels and tags", "Packaging", "Stickers"), (_NOVAFIT, _VIRELLE)),
    "MED-NERV": _Goods(60, 1.1, 0.6, 0.8, ("Tramadol tablets", "Pregabalin capsules", "Benzodiazepine tablets")),
    "MED-ANTIINF": _Goods(40, 1.0, 0.8, 0.5, ("Antibiotic tablets", "Antimalarial tablets", "Antiviral capsules")),
    "MED-VACC": _Goods(10, 0.8, 15, 20, ("Vaccine vials",)),
    "MED-CARDIO": _Goods(60, 0.9, 0.5, 0.3, ("Antihypertensive tablets", "Statin tablets")),
    "MED-ALIM": _Goods(30, 0.9, 3, 2, ("Insulin pens", "Antidiabetic tablets")),
    "MED-WEIGHT": _Goods(6, 1.0, 40, 35, ("Weight-loss pens (GLP-1 labelled)", "Slimming capsules"), (("Slimora", _HALCYON),)),
    "MED-GENURO": _Goods(50, 1.1, 0.6, 1.5, ("Erectile dysfunction tablets", "Hormonal contraceptives"), (("Vigorem", _HALCYON),)),
    "MED-MUSC": _Goods(40, 1.0, 0.6, 0.4, ("Anti-inflammatory tablets", "Muscle relaxants")),
    "MED-RESP": _Goods(10, 0.9, 20, 4, ("Inhalers", "Cough syrup")),
    "MED-ONCO": _Goods(10, 0.8, 5, 60, ("Oncology injectables", "Cancer tablets")),
    "MED-DERM": _Goods(8, 0.9, 40, 4, ("Skin-whitening creams", "Corticosteroid ointments")),
    "MED-HORM": _Goods(20, 1.0, 5, 3, ("Anabolic steroid vials", "Growth hormone kits")),
    "MED-BLOOD": _Goods(10, 0.8, 10, 10, ("Anticoagulant tablets", "Blood-product vials")),
    "MED-ANTIPAR": _Goods(40, 0.9, 0.7, 0.4, ("Ivermectin tablets", "Antiparasitic tablets")),
    "MED-SENS": _Goods(8, 0.9, 15, 5, ("Eye drops", "Ear drops")),
    "MED-VAR": _Goods(10, 0.9, 20, 3, ("Diagnostic reagents", "Contrast media")),
    "MED-DEVICE": _Goods(10, 1.1, 30, 3, ("Test kits", "Syringes", "Face masks", "Contact lenses")),
    "MED-OTHER": _Goods(30, 1.0, 1, 0.5, ("Unidentified tablets", "Herbal medicine capsules")),
    "OTH-COSM": _Goods(6, 1.0, 80, 6, ("Face creams", "Lipsticks", "Serums", "Hair products"), (_VALE,)),
    "OTH-FOOD": _Goods(8, 1.0, 300, 3, ("Confectionery", "Coffee", "Olive oil"), (("Dolcara", "Dolcara Alimentari SpA"),)),
    "OTH-ALCO": _Goods(4, 0.8, 1300, 15, ("Spirits", "Wine bottles"), (("Château Brevant", "Brevant Vignobles"),)),
    "OTH-TOBAC": _Goods(200, 1.0, 1.2, 0.1, ("Cigarettes", "E-cigarette cartridges", "Hookah tobacco"), (("Brennick", "Brennick Tobacco Company"),)),
    "OTH-SUPPL": _Goods(4, 0.9, 200, 8, ("Food supplements", "Protein powder", "Vitamin capsules")),
    "OTH-HOUSE": _Goods(5, 1.0, 150, 3, ("Batteries", "Detergents", "Razor blades", "Toothpaste")),
    "OTH-CHEM": _Goods(5, 1.0, 1000, 10, ("Pesticides", "Industrial chemicals")),
    "OTH-OTHER": _Goods(5, 1.0, 200, 3, ("Household items", "Lamps", "Plastic goods")),
}  # fmt: skip

DETECTION: Mapping[str, Mapping[str, float]] = {
    "ecommerce": {
        "RISK_PROFILE": 35, "XRAY": 24, "PHYSICAL_INSPECTION": 12, "RANDOM": 8, "INTELLIGENCE": 6,
        "RIGHTS_HOLDER_ALERT": 5, "PLATFORM_NOTICE": 4, "DOCUMENT_CHECK": 3, "DETECTOR_DOG": 2, "OTHER": 1,
    },
    "cargo": {
        "RISK_PROFILE": 35, "DOCUMENT_CHECK": 18, "INTELLIGENCE": 15, "XRAY": 15, "PHYSICAL_INSPECTION": 10,
        "RIGHTS_HOLDER_ALERT": 5, "RANDOM": 2,
    },
    "small": {
        "PHYSICAL_INSPECTION": 35, "XRAY": 25, "RISK_PROFILE": 15, "DETECTOR_DOG": 10, "RANDOM": 10,
        "INTELLIGENCE": 5,
    },
}  # fmt: skip
CONCEALMENT: Mapping[str, Mapping[str, float]] = {
    "ecommerce": {
        "MISDECLARED": 30, "NONE": 25, "UNDERVALUED": 20, "SPLIT_CONSIGNMENT": 8, "DECOY_PACKAGING": 7,
        "HIDDEN_IN_GOODS": 6, "OTHER": 4,
    },
    "cargo": {"MISDECLARED": 30, "NONE": 30, "HIDDEN_IN_GOODS": 20, "UNDERVALUED": 15, "OTHER": 5},
    "small": {"PERSONAL_EFFECTS": 55, "NONE": 30, "HIDDEN_IN_GOODS": 15},
}  # fmt: skip
PLATFORMS: Mapping[str, tuple[float, tuple[str, ...]]] = {
    "MARKETPLACE": (45, ("ShopSphere", "BazaarHub", "MegaMart Online")),
    "SOCIAL_MEDIA": (25, ("Glowgram", "FaceLink", "ClipTok")),
    "WEBSITE": (18, ("pharma-direct.example", "cheap-sneakers.example", "slim-pens.example")),
    "MESSAGING": (5, ("ChatWave",)),
    "UNKNOWN": (7, ("",)),
}
OFFICES: Mapping[str, str] = {
    "POSTAL": "International mail centre",
    "EXPRESS": "Express courier hub",
    "AIR_CARGO": "Airport cargo terminal",
    "SEA_CARGO": "Seaport container terminal",
    "ROAD_CARGO": "Road border crossing",
    "RAIL_CARGO": "Rail freight terminal",
    "PASSENGER": "International airport, passenger hall",
    "PASSENGER/ROAD": "Road border crossing, travellers",
    "PASSENGER/SEA": "Ferry terminal, passengers",
    "POSTAL/ROAD": "Mail exchange office",
    "OTHER": "Inland clearance office",
}
#: Who may read a case. Every simulated case is reported to the operation, so none is ``own`` (the
#: reporter's only): the coordinating unit reads them all and its figures are the published ones.
VISIBILITY: Mapping[Visibility, float] = {
    Visibility.PARTICIPANTS: 72,
    Visibility.PARTNERS: 20,
    Visibility.COORDINATOR: 8,
}
#: Weekday factors of daily arrivals (Monday first): fewer inspections and postal sorting at weekends.
WEEKDAY: tuple[float, ...] = (1.15, 1.10, 1.05, 1.0, 0.9, 0.45, 0.3)
#: Exponent applied to the arrival quantile of cases of trend commodities (< 1: later; 1: no trend).
#: 0.4: their share of seizures in the last five days is about 2.4 times the earlier days' (STOP IV).
TREND_SKEW = 0.4
#: Cargo seizures' share of their commodity's quantity, before rescaling: lognormal sigma (heavy tail).
CARGO_SIGMA = 1.9
CARGO_MIN_PIECES = 20
CARGO_MIN_GRAMS = 1_000
EURO_ZONE = frozenset(
    {"AT", "BE", "CY", "DE", "EE", "ES", "FI", "FR", "GR", "HR", "IE", "IT", "LT", "LU", "LV", "MT", "NL", "PT", "SI", "SK"}
)  # fmt: skip


# ------------------------------------------------------------------------------------------ results


@dataclass(frozen=True)
class SimulatedCase:
    """One case as its administration reports it."""

    reporting_country: str
    region_code: str
    detected_on: dt.date
    data: CaseCreate

    @property
    def org_code(self) -> str:
        """The code of the reporting customs organisation in the demo (``FR-CUS``)."""
        return f"{self.reporting_country}-CUS"


@dataclass(frozen=True)
class SimulatedOperation:
    """A whole simulated operation: who takes part, who reports, and every case."""

    spec: OperationSpec
    seed: int
    plant_trends: bool
    #: ISO-2 codes of the participating administrations (sorted).
    administrations: tuple[str, ...]
    #: ISO-2 codes of the administrations that report at least one case (sorted).
    reporting: tuple[str, ...]
    #: ISO-2 -> WCO region code, for every participating administration.
    regions: Mapping[str, str]
    cases: tuple[SimulatedCase, ...]
    meta: Mapping[str, Any] = field(default_factory=dict)

    def seizures(self) -> Iterator[tuple[SimulatedCase, SeizureIn]]:
        for case in self.cases:
            for s in case.data.seizures:
                yield case, s

    @property
    def seizure_count(self) -> int:
        return sum(len(c.data.seizures) for c in self.cases)

    @property
    def ecommerce_share(self) -> float:
        """Share of seizures belonging to e-commerce cases."""
        ecom = sum(len(c.data.seizures) for c in self.cases if c.data.is_ecommerce)
        return ecom / max(1, self.seizure_count)

    def group_totals(self) -> dict[str, GroupTotals]:
        """Pieces and kilograms per commodity group, summed from the cases."""
        ref = get_reference()
        pieces: Counter[str] = Counter()
        grams: Counter[str] = Counter()
        for _, s in self.seizures():
            g = ref.commodities[s.commodity_code].group
            pieces[g] += s.pieces
            grams[g] += int(s.weight_kg * 1000)
        return {g: GroupTotals(pieces[g], Decimal(grams[g]).scaleb(-3)) for g in GROUPS}

    def summary(self) -> dict[str, Any]:
        """The headline figures, as the operation's final report would show them."""
        totals = self.group_totals()
        return {
            "operation": self.spec.code,
            "seed": self.seed,
            "participants": len(self.administrations),
            "reporting_members": len(self.reporting),
            "regions_reporting": sorted({self.regions[c] for c in self.reporting}),
            "cases": len(self.cases),
            "seizures": self.seizure_count,
            "ecommerce_share_of_seizures": round(self.ecommerce_share, 4),
            "groups": {g: {"pieces": t.pieces, "weight_kg": str(t.weight_kg)} for g, t in totals.items()},
            "total_pieces": sum(t.pieces for t in totals.values()),
        }


# ------------------------------------------------------------------------------------------ helpers


def apportion(total: int, weights: Sequence[float], minimum: int = 0) -> list[int]:
    """Split the integer ``total`` in proportion to ``weights`` (largest-remainder method), exactly.

    Every share gets at least ``minimum``; the shares always sum to ``total``. ``ValueError`` when
    ``total < minimum × len(weights)`` or when no weight is positive while something is left to share.
    """
    n = len(weights)
    if n == 0:
        if total:
            raise ValueError("nothing to apportion the total to")
        return []
    rest = total - minimum * n
    if rest < 0:
        raise ValueError(f"cannot give {n} shares at least {minimum} out of {total}")
    wsum = math.fsum(max(0.0, w) for w in weights)
    if rest == 0:
        return [minimum] * n
    if wsum <= 0:
        raise ValueError("weights must have a positive sum")
    quotas = [rest * max(0.0, w) / wsum for w in weights]
    shares = [math.floor(q) for q in quotas]
    left = rest - sum(shares)
    # float rounding can, in theory, leave the floors one off either way: correct deterministically
    order = sorted(range(n), key=lambda i: (-(quotas[i] - shares[i]), i))
    k = 0
    while left > 0:
        shares[order[k % n]] += 1
        left -= 1
        k += 1
    while left < 0:
        i = max(range(n), key=lambda j: (shares[j], -j))
        shares[i] -= 1
        left += 1
    return [s + minimum for s in shares]


def _pick(rng: random.Random, weights: Mapping[str, float]) -> str:
    keys = list(weights)
    return rng.choices(keys, weights=[weights[k] for k in keys], k=1)[0]


def _lognormal(rng: random.Random, median: float, sigma: float) -> float:
    return median * math.exp(rng.gauss(0.0, sigma))


def _weighted_sample(rng: random.Random, items: Sequence[str], weights: Sequence[float], k: int) -> list[str]:
    """``k`` distinct items, drawn without replacement with probability proportional to weight."""
    # Efraimidis–Spirakis: key u^(1/w); the k largest keys win.
    keyed = sorted(
        ((rng.random() ** (1.0 / w), it) for it, w in zip(items, weights, strict=True)), reverse=True
    )
    return [it for _, it in keyed[:k]]


def _region_counts(
    total: int, shares: Mapping[str, float], available: Mapping[str, int], minimum: int
) -> dict[str, int]:
    """Apportion ``total`` over regions by ``shares``, at least ``minimum`` each, at most what is available."""
    regions = [r for r in shares if available.get(r, 0) > 0]
    floor = min(minimum, *(available[r] for r in regions)) if regions else 0
    if total < floor * len(regions):
        floor = 0
    counts = dict(zip(regions, apportion(total, [shares[r] for r in regions], floor), strict=True))
    # move any excess over a region's availability to the others, largest share first
    excess = 0
    for r in regions:
        if counts[r] > available[r]:
            excess += counts[r] - available[r]
            counts[r] = available[r]
    while excess > 0:
        room = [r for r in sorted(regions, key=lambda r: -shares[r]) if counts[r] < available[r]]
        if not room:
            raise ValueError(f"only {sum(available.values())} WCO Members available, {total} asked")
        counts[room[0]] += 1
        excess -= 1
    return counts


# ------------------------------------------------------------------------------------------ simulation


def simulate_operation(
    spec: OperationSpec, seed: int = 42, *, plant_trends: bool = True
) -> SimulatedOperation:
    """Simulate every case of ``spec``'s operation; same arguments, same result."""
    return _Simulation(spec, seed, plant_trends).run()


class _Simulation:
    def __init__(self, spec: OperationSpec, seed: int, plant_trends: bool) -> None:
        self.spec = spec
        self.seed = seed
        self.plant_trends = plant_trends
        self.rng = random.Random(f"stopnet.simulate:{spec.code}:{seed}")
        self.ref: Reference = get_reference()
        commodities = self.ref.commodities
        self.group_of = {code: c.group for code, c in commodities.items()}
        self.qshares = self._quantity_shares()
        self.pools = {
            pool: {c: w for c, w in weights.items() if c in commodities}
            for pool, weights in COUNT_WEIGHTS.items()
        }

    def _quantity_shares(self) -> dict[str, float]:
        """:data:`QUANTITY_SHARES` with some noise, the published rankings kept (:data:`QUANTITY_RANKED`)."""
        shares = {c: w * self.rng.lognormvariate(0.0, 0.25) for c, w in QUANTITY_SHARES.items()}
        for ranked in QUANTITY_RANKED:
            group = self.group_of.get(ranked[0])
            members = [c for c in shares if self.group_of.get(c) == group]
            values = sorted((shares[c] for c in members), reverse=True)
            for code, value in zip(ranked, values, strict=False):
                holder = next(c for c in members if shares[c] == value)
                shares[holder], shares[code] = shares[code], value
            # a clear margin, so that small parcels can never reorder the published ranking
            prev = max((shares[c] for c in members if c not in ranked), default=0.0)
            for code in reversed(ranked):
                shares[code] = max(shares[code], prev * 1.15)
                prev = shares[code]
        return shares

    # ---------------------------------------------------------------- administrations

    def administrations(self) -> tuple[list[str], list[str], dict[str, str]]:
        spec, ref = self.spec, self.ref
        members = {
            r.code: [m for m in r.members if m in ref.countries and ref.countries[m].wco_member]
            for r in ref.regions
        }
        region_of = {m: r for r, ms in members.items() for m in ms}
        counts = _region_counts(
            spec.participants, REGION_PARTICIPATION, {r: len(ms) for r, ms in members.items()}, 3
        )
        participants: list[str] = []
        for region in sorted(counts):
            participants += self._sample(members[region], 1.0, counts[region])
        by_region: dict[str, list[str]] = {}
        for m in sorted(participants):
            by_region.setdefault(region_of[m], []).append(m)
        rcounts = _region_counts(
            spec.reporting_members, REGION_REPORTING, {r: len(ms) for r, ms in by_region.items()}, 2
        )
        reporting: list[str] = []
        for region in sorted(rcounts):
            reporting += self._sample(by_region[region], 1.5, rcounts[region])
        return sorted(participants), sorted(reporting), {m: region_of[m] for m in participants}

    def _sample(self, pool: list[str], power: float, k: int) -> list[str]:
        """``k`` administrations of ``pool``: the :data:`ANCHORS` first, then weighted by activity."""
        anchors = [m for m in ANCHORS if m in pool][:k]
        rest = [m for m in pool if m not in anchors]
        return anchors + _weighted_sample(
            self.rng, rest, [ACTIVE.get(m, 1.0) ** power for m in rest], k - len(anchors)
        )

    # ---------------------------------------------------------------- structure of cases

    def case_frames(self, reporting: list[str], region_of: Mapping[str, str]) -> list[dict[str, Any]]:
        """Cases with reporter, e-commerce flag, channel and number of seizure lines."""
        spec, rng = self.spec, self.rng
        n_cases, n_seiz = spec.cases, spec.seizures
        ecom_seiz = round(spec.ecommerce_share_of_seizures * n_seiz)
        # e-commerce parcels hold slightly fewer lines than cargo: a somewhat higher share of cases
        ecom_cases = round(n_cases * min(1.0, spec.ecommerce_share_of_seizures + 0.03))
        ecom_cases = max(0, min(ecom_cases, ecom_seiz, n_cases))
        ecom_cases = max(ecom_cases, n_cases - (n_seiz - ecom_seiz))  # every non-e-com case needs a line
        if ecom_seiz and not ecom_cases:
            ecom_cases = 1
        other_cases = n_cases - ecom_cases
        frames: list[dict[str, Any]] = []
        for i in range(n_cases):
            ecom = i < ecom_cases
            channel = _pick(rng, ECOMMERCE_CHANNELS if ecom else OTHER_CHANNELS)
            frames.append({"ecommerce": ecom, "channel": channel})
        others = frames[ecom_cases:]
        if others and not any(f["channel"] in CARGO_CHANNELS for f in others):
            others[0]["channel"] = "SEA_CARGO"
        # enough cargo cases for the commodities that lead the quantity rankings
        cargo = [f for f in others if f["channel"] in CARGO_CHANNELS]
        need = min(len(others), len(CARGO_REQUIRED) + 3)
        for f in others:
            if len(cargo) >= need:
                break
            if f["channel"] not in CARGO_CHANNELS:
                f["channel"] = "AIR_CARGO"
                cargo.append(f)
        for f in frames:
            f["pool"] = (
                "ecommerce" if f["ecommerce"] else ("cargo" if f["channel"] in CARGO_CHANNELS else "small")
            )
        # seizure lines per case: 1 + a skewed share of the extra lines
        for subset, lines in ((frames[:ecom_cases], ecom_seiz), (others, n_seiz - ecom_seiz)):
            if not subset:
                continue
            weights = [rng.expovariate(1.0) ** 1.6 * (1.4 if f["pool"] == "cargo" else 1.0) for f in subset]
            for f, n in zip(subset, apportion(lines, weights, 1), strict=True):
                f["lines"] = n
        assert other_cases == len(others)
        # reporters: each at least one case, heavy-tailed beyond (the active administrations report more)
        rweights = [ACTIVE.get(c, 1.0) * rng.lognormvariate(0.0, 0.7) for c in reporting]
        slots = [c for c, n in zip(reporting, apportion(n_cases, rweights, 1), strict=True) for _ in range(n)]
        rng.shuffle(slots)
        rng.shuffle(frames)
        for f, c in zip(frames, slots, strict=True):
            f["country"] = c
            f["region"] = region_of[c]
        self._every_region_ecommerce(frames)
        return frames

    def _every_region_ecommerce(self, frames: list[dict[str, Any]]) -> None:
        """All six regions report e-commerce cases: swap reporters where a region has none."""
        regions = sorted({f["region"] for f in frames})
        for region in regions:
            if any(f["ecommerce"] and f["region"] == region for f in frames):
                continue
            mine = [f for f in frames if f["region"] == region and not f["ecommerce"]]
            counts = Counter(f["region"] for f in frames if f["ecommerce"])
            donor_region = max(sorted(counts), key=lambda r: counts[r])
            donors = [f for f in frames if f["ecommerce"] and f["region"] == donor_region]
            if not mine or counts[donor_region] < 2:
                continue
            a, b = self.rng.choice(mine), self.rng.choice(donors)
            a["country"], b["country"] = b["country"], a["country"]
            a["region"], b["region"] = b["region"], a["region"]

    # ---------------------------------------------------------------- commodities

    def assign_commodities(self, frames: list[dict[str, Any]]) -> None:
        rng = self.rng
        for pool_name in ("ecommerce", "small", "cargo"):
            cases = [f for f in frames if f["pool"] == pool_name]
            n = sum(f["lines"] for f in cases)
            if not n:
                continue
            weights = self.pools[pool_name]
            codes = list(weights)
            required = [c for c in CARGO_REQUIRED if c in weights] if pool_name == "cargo" else []
            base = {c: 0 for c in codes}
            for c in required[:n]:
                base[c] = 1
            counts = apportion(n - sum(base.values()), [weights[c] for c in codes])
            lines = [c for c, k in zip(codes, counts, strict=True) for _ in range(k + base[c])]
            rng.shuffle(lines)
            # mostly one group per case: sort by group, with some lines left in random places
            order = {g: i for i, g in enumerate(rng.sample(GROUPS, len(GROUPS)))}
            keyed = [
                (order[self.group_of[c]] if rng.random() > 0.12 else rng.uniform(0, len(GROUPS)), i, c)
                for i, c in enumerate(lines)
            ]
            lines = [c for _, _, c in sorted(keyed)]
            it = iter(lines)
            for f in cases:
                f["codes"] = [next(it) for _ in range(f["lines"])]

    # ---------------------------------------------------------------- quantities

    def quantities(self, frames: list[dict[str, Any]]) -> None:
        """Pieces and grams of every seizure, summing exactly to the spec's group totals."""
        rng = self.rng
        lines: list[dict[str, Any]] = []
        for f in frames:
            f["lines_data"] = []
            for code in f["codes"]:
                line = {"code": code, "group": self.group_of[code], "cargo": f["pool"] == "cargo"}
                f["lines_data"].append(line)
                lines.append(line)
        for line in lines:  # draw every line's raw figures, in a fixed order
            goods = GOODS[line["code"]]
            if line["cargo"]:
                line["w_pieces"] = rng.lognormvariate(0.0, CARGO_SIGMA)
                line["w_unit"] = rng.lognormvariate(0.0, 0.3)
            else:
                pieces = max(1, round(_lognormal(rng, goods.median, goods.sigma)))
                pack = rng.uniform(40, 300)
                line["pieces"] = pieces
                line["grams"] = max(1, round(pieces * goods.unit_g * rng.lognormvariate(0.0, 0.25) + pack))
        for group in GROUPS:
            target = self.spec.group_totals[group]
            glines = [ln for ln in lines if ln["group"] == group]
            self._fill_group(glines, target.pieces, int(target.weight_kg * 1000))

    def _fill_group(self, glines: list[dict[str, Any]], pieces: int, grams: int) -> None:
        if not glines:
            if pieces or grams:
                raise ValueError("a commodity group with a total has no seizure to carry it")
            return
        small = [ln for ln in glines if not ln["cargo"]]
        cargo = [ln for ln in glines if ln["cargo"]]
        if not cargo:  # no cargo seizure: every line shares the total
            cargo, small = glines, []
            for ln in cargo:
                ln.setdefault("w_pieces", self.rng.lognormvariate(0.0, CARGO_SIGMA))
                ln.setdefault("w_unit", self.rng.lognormvariate(0.0, 0.3))
        # small seizures keep their drawn figures, unless they would take over half of a total
        for key, total in (("pieces", pieces), ("grams", grams)):
            drawn = sum(ln[key] for ln in small)
            if drawn > total // 2 and drawn:
                scaled = apportion(
                    total // 2, [ln[key] for ln in small], 1 if total // 2 >= len(small) else 0
                )
                for ln, v in zip(small, scaled, strict=True):
                    ln[key] = v
        rest_pieces = pieces - sum(ln["pieces"] for ln in small)
        rest_grams = grams - sum(ln["grams"] for ln in small)
        # cargo pieces: first per commodity (by quantity share), then per seizure (heavy-tailed)
        by_code: dict[str, list[dict[str, Any]]] = {}
        for ln in cargo:
            by_code.setdefault(ln["code"], []).append(ln)
        codes = sorted(by_code, key=lambda c: (-self.qshares.get(c, 1.0), c))
        min_p = CARGO_MIN_PIECES if rest_pieces >= CARGO_MIN_PIECES * len(cargo) * 4 else 0
        floors = [min_p * len(by_code[c]) for c in codes]
        per_code = apportion(rest_pieces - sum(floors), [self.qshares.get(c, 1.0) for c in codes])
        for c, extra, floor in zip(codes, per_code, floors, strict=True):
            code_lines = by_code[c]
            shares = apportion(extra + floor, [ln["w_pieces"] for ln in code_lines], min_p)
            for ln, s in zip(code_lines, shares, strict=True):
                ln["pieces"] = s
        # cargo grams: proportional to pieces × unit weight × noise
        min_g = CARGO_MIN_GRAMS if rest_grams >= CARGO_MIN_GRAMS * len(cargo) * 4 else 1
        if rest_grams < min_g * len(cargo):
            min_g = 0
        weights = [max(ln["pieces"], 1) * GOODS[ln["code"]].unit_g * ln["w_unit"] for ln in cargo]
        for ln, g in zip(cargo, apportion(rest_grams, weights, min_g), strict=True):
            ln["grams"] = g
        for ln in glines:  # a seizure needs pieces or weight
            if ln["pieces"] == 0 and ln["grams"] == 0:
                raise ValueError("a simulated seizure ended up empty; the totals are too small")

    # ---------------------------------------------------------------- dates

    def dates(self, frames: list[dict[str, Any]]) -> None:
        spec, rng = self.spec, self.rng
        days = spec.days
        weights = []
        for d in range(days):
            day = spec.starts_on + dt.timedelta(days=d)
            ramp = min(1.0, 0.45 + 0.18 * d)  # officers and risk profiles get going over the first days
            wind_down = 0.9 if d == days - 1 and days > 3 else 1.0
            weights.append(ramp * WEEKDAY[day.weekday()] * wind_down)
        drawn = sorted(rng.choices(range(days), weights=weights, k=len(frames)))
        keys = [(rng.random(), i) for i in range(len(frames))]
        placed: set[int] = set()
        for code in spec.trend_commodities if self.plant_trends else ():
            self._plant_trend(frames, keys, code, placed)
        for (_, i), d in zip(sorted(keys), drawn, strict=True):
            frames[i]["detected_on"] = spec.starts_on + dt.timedelta(days=d)

    def _plant_trend(
        self, frames: list[dict[str, Any]], keys: list[tuple[float, int]], code: str, placed: set[int]
    ) -> None:
        """Move the cases holding ``code`` later in the arrival order: their density rises over it.

        The cases are placed by stratified quantiles of their seizures of ``code`` (a case with three
        such seizures takes three strata), each quantile raised to :data:`TREND_SKEW`: the share of
        ``code`` among the seizures of the last days is the planted one for any seed, not a lucky draw.
        A case already placed for another trend commodity (in ``placed``) stays where it is.
        """
        rng = self.rng
        holders = [i for i, f in enumerate(frames) if code in f["codes"] and i not in placed]
        rng.shuffle(holders)
        total = sum(frames[i]["codes"].count(code) for i in holders)
        done = 0
        for i in holders:
            n = frames[i]["codes"].count(code)
            u = (done + rng.random() * n) / total
            keys[i] = (u**TREND_SKEW, i)
            placed.add(i)
            done += n

    # ---------------------------------------------------------------- routes and the rest

    def _country(self, weights: Mapping[str, float], exclude: set[str]) -> str | None:
        pool = {c: w for c, w in weights.items() if c not in exclude and c in self.ref.countries}
        return _pick(self.rng, pool) if pool else None

    def route(self, f: dict[str, Any], group: str, members: Mapping[str, list[str]]) -> dict[str, Any]:
        rng, dest = self.rng, f["country"]
        origin = self._country(ORIGINS[group], {dest})
        channel = f["channel"]
        departure = origin
        transit: list[str] = []
        if channel in ("ROAD_CARGO", "RAIL_CARGO"):
            neighbours = [m for m in members[f["region"]] if m not in (dest, origin)]
            if neighbours and rng.random() < 0.75:
                departure = rng.choice(neighbours)
        elif rng.random() < (0.35 if f["ecommerce"] else 0.25):
            departure = self._country(HUBS, {dest, origin or ""}) or origin
        if channel not in ("ROAD_CARGO", "RAIL_CARGO", "PASSENGER"):
            r = rng.random()
            n_transit = 2 if r < 0.08 else (1 if r < 0.40 else 0)
            for _ in range(n_transit):
                hub = self._country(HUBS, {dest, origin or "", departure or "", *transit})
                if hub:
                    transit.append(hub)
        if channel == "PASSENGER" and rng.random() < 0.4:
            hub = self._country(HUBS, {dest, origin or "", departure or ""})
            if hub:
                transit.append(hub)
        mode = {
            "POSTAL": _pick(rng, {"AIR": 85, "ROAD": 10, "MULTIMODAL": 5}),
            "EXPRESS": _pick(rng, {"AIR": 92, "ROAD": 8}),
            "AIR_CARGO": "AIR",
            "SEA_CARGO": _pick(rng, {"SEA": 90, "MULTIMODAL": 10}),
            "ROAD_CARGO": "ROAD",
            "RAIL_CARGO": "RAIL",
            "PASSENGER": _pick(rng, {"AIR": 85, "ROAD": 10, "SEA": 5}),
            "OTHER": _pick(rng, {"UNKNOWN": 60, "ROAD": 40}),
        }[channel]
        return {
            "origin_country": origin,
            "departure_country": departure,
            "destination_country": dest,
            "transit_countries": transit,
            "transport_mode": mode,
        }

    def seizure(self, line: dict[str, Any], country: str) -> SeizureIn:
        rng = self.rng
        code, group = line["code"], line["group"]
        goods = GOODS[code]
        brand, holder = ("", "")
        if goods.brands and rng.random() < (0.9 if group != "medicines" else 0.5):
            brand, holder = rng.choice(goods.brands)
        if group == "ipr":
            infringement = _pick(rng, {"TRADEMARK": 85, "DESIGN": 6, "COPYRIGHT": 5, "PATENT": 4})
            if code == "IPR-MEDIA":
                infringement = "COPYRIGHT"
            nature = "COUNTERFEIT"
        elif group == "medicines":
            infringement = _pick(
                rng, {"HEALTH_REGULATION": 60, "TRADEMARK": 40} if brand else {"HEALTH_REGULATION": 1}
            )
            nature = _pick(rng, {"FALSIFIED": 55, "UNLICENSED": 25, "SUBSTANDARD": 10, "COUNTERFEIT": 10})
        else:
            infringement = "TRADEMARK"
            if code in ("OTH-ALCO", "OTH-FOOD") and rng.random() < 0.3:
                infringement = "GEOGRAPHICAL_INDICATION"
            elif code in ("OTH-CHEM", "OTH-SUPPL") and rng.random() < 0.6:
                infringement = "HEALTH_REGULATION"
            nature = (
                "COUNTERFEIT"
                if infringement != "HEALTH_REGULATION"
                else _pick(rng, {"SUBSTANDARD": 1, "UNLICENSED": 1})
            )
        hs_options = [h for h in self.ref.commodities[code].hs_prefixes if len(h) >= 4]
        hs = rng.choice(hs_options) if hs_options and rng.random() < 0.75 else ""
        value = currency = None
        if rng.random() < 0.7:
            usd = (
                line["pieces"] * goods.unit_usd * rng.lognormvariate(0.0, 0.5)
                if line["pieces"]
                else line["grams"] / 100
            )
            currency = "EUR" if country in EURO_ZONE else "USD"
            value = Decimal(str(round(max(1.0, usd) * (0.92 if currency == "EUR" else 1.0), 2))).quantize(
                Decimal("0.01")
            )
            value = min(value, Decimal("1e12"))
        return SeizureIn(
            commodity_code=code,
            description=rng.choice(goods.descriptions),
            brand=brand,
            rights_holder=holder,
            hs_code=hs,
            pieces=line["pieces"],
            weight_kg=Decimal(line["grams"]).scaleb(-3).quantize(_MILLI),
            value_amount=value,
            currency=currency,
            infringement_type=infringement,
            nature=nature,
        )

    def build(self, frames: list[dict[str, Any]], members: Mapping[str, list[str]]) -> list[SimulatedCase]:
        rng, spec = self.rng, self.spec
        frames.sort(key=lambda f: (f["detected_on"], f["country"]))
        numbers: Counter[str] = Counter()
        out = []
        for f in frames:
            country = f["country"]
            numbers[country] += 1
            groups = Counter(ln["group"] for ln in f["lines_data"])
            main_group = max(sorted(groups), key=lambda g: groups[g])
            route = self.route(f, main_group, members)
            pool = f["pool"]
            platform_type = platform_name = None
            if f["ecommerce"]:
                platform_type = _pick(rng, {k: v[0] for k, v in PLATFORMS.items()})
                platform_name = rng.choice(PLATFORMS[platform_type][1])
            seizures = [self.seizure(ln, country) for ln in f["lines_data"]]
            data = CaseCreate(
                reference=f"{country}-{spec.code}-{numbers[country]:04d}",
                detected_on=f["detected_on"],
                office=OFFICES.get(f"{f['channel']}/{route['transport_mode']}", OFFICES[f["channel"]]),
                place="",
                is_ecommerce=f["ecommerce"],
                channel=f["channel"],
                detection_method=_pick(rng, DETECTION[pool]),
                concealment=_pick(rng, CONCEALMENT[pool]),
                platform_type=platform_type,
                platform_name=platform_name or "",
                consignee_name=f"Consignee {country}-{rng.randrange(100_000):05d} (synthetic)",
                notes=f"Synthetic case (stopnet.simulate, {spec.code}, seed {self.seed}).",
                visibility=Visibility(_pick(rng, {v.value: w for v, w in VISIBILITY.items()})),
                seizures=seizures,
                submit=True,
                **route,
            )
            out.append(SimulatedCase(country, f["region"], f["detected_on"], data))
        return out

    def run(self) -> SimulatedOperation:
        participants, reporting, region_of = self.administrations()
        members: dict[str, list[str]] = {}
        for r in self.ref.regions:
            members[r.code] = [m for m in r.members if m in self.ref.countries]
        frames = self.case_frames(reporting, region_of)
        self.assign_commodities(frames)
        self.quantities(frames)
        self.dates(frames)
        cases = self.build(frames, members)
        return SimulatedOperation(
            spec=self.spec,
            seed=self.seed,
            plant_trends=self.plant_trends,
            administrations=tuple(participants),
            reporting=tuple(reporting),
            regions=dict(region_of),
            cases=tuple(cases),
            meta={"generator": "stopnet.simulate.operation", "version": 1},
        )
