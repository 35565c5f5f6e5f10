"""Simulated e-commerce consignment streams with planted, drifting fraud patterns.

:func:`generate_consignments` produces a stream that follows :data:`~stopnet.risk.consignments.CONSIGNMENT_SCHEMA`:
most parcels come from CN / HK / TR / IN / US / GB / VN ..., mostly by post or express; values, weights
and descriptions depend on the kind of goods. A low rate of *background* counterfeits / falsified
medicines depends on learnable signals (origin, undervaluation, marketplace, a few rogue senders),
and :data:`DEFAULT_FRAUD_PATTERNS` plants three campaigns that change over time:

* ``weight_loss_pens`` (MED-WEIGHT): "beauty pens" posted from CN via TR, starting in week 2;
* ``misdescribed_sneakers`` (IPR-FOOT): sneakers via one express carrier (SwiftXpress), declared as
  sneakers at first and, from week 4, as "gift" / "textile sample" under other HS codes;
* ``undervalued_watches`` (IPR-WATCH): a cluster of ~40 HK senders declaring watches at 5-15 USD,
  growing over time.

Seizures carry the commodity codes of the stopnet taxonomy (:data:`COMMODITY_CODES`). Everything is
vectorised (numpy + polars) and reproducible for a seed: 10 million rows take a few seconds.

:func:`simulate_inspect_and_learn` replays a stream week by week: score with the current model,
select within capacity, reveal labels of inspected consignments only, retrain, and reports the weekly
precision of exploit-only, exploit-with-exploration and random selection.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import polars as pl

from stopnet.risk.consignments import CONSIGNMENT_SCHEMA, pseudonymise

__all__ = [
    "COMMODITY_CODES",
    "DEFAULT_FRAUD_PATTERNS",
    "FraudPattern",
    "generate_consignments",
    "simulate_inspect_and_learn",
]

#: stopnet taxonomy codes used for seizure labels.
COMMODITY_CODES: tuple[str, ...] = (
    "MED-NERV",
    "MED-ANTIINF",
    "MED-WEIGHT",
    "MED-GENURO",
    "MED-DEVICE",
    "IPR-CLOTH",
    "IPR-FOOT",
    "IPR-BAGS",
    "IPR-WATCH",
    "IPR-ELEC",
    "IPR-TOYS",
    "IPR-TRANSP",
    "OTH-COSM",
)


@dataclass(frozen=True)
class FraudPattern:
    """A planted fraud campaign.

    A consignment joins the campaign with probability ``share * intensity(day)``, where intensity is 0
    before ``start_day``, rises linearly to 1 over ``ramp_days`` and drops to 0 from ``end_day``. Its
    fields are then overwritten from the choices below (``None`` keeps the generated value) and it is
    fraudulent with probability ``fraud_rate``. From ``drift_day`` on, descriptions / HS codes switch to
    the ``drift_*`` choices (the same goods, declared differently).
    """

    name: str
    commodity_code: str
    share: float
    fraud_rate: float = 0.85
    start_day: int = 0
    ramp_days: int = 0
    end_day: int | None = None
    origin_country: tuple[str, ...] | None = None
    departure_country: tuple[str, ...] | None = None
    channel: tuple[str, ...] | None = None
    carrier: tuple[str, ...] | None = None
    descriptions: tuple[str, ...] | None = None
    hs_codes: tuple[str, ...] | None = None
    value_usd: tuple[float, float] | None = None
    weight_kg: tuple[float, float] | None = None
    marketplace: tuple[str, ...] | None = None
    sender_cluster: int | None = None
    drift_day: int | None = None
    drift_descriptions: tuple[str, ...] | None = None
    drift_hs_codes: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        if self.commodity_code not in COMMODITY_CODES:
            raise ValueError(f"unknown commodity code {self.commodity_code!r}")
        if not 0 <= self.share <= 1 or not 0 <= self.fraud_rate <= 1:
            raise ValueError("share and fraud_rate must be between 0 and 1")

    def intensity(self, day: np.ndarray) -> np.ndarray:
        d = day.astype(np.float64)
        if self.ramp_days > 0:
            out = np.clip((d - self.start_day + 1) / self.ramp_days, 0.0, 1.0)
        else:
            out = (d >= self.start_day).astype(np.float64)
        if self.end_day is not None:
            out = np.where(d >= self.end_day, 0.0, out)
        return out


DEFAULT_FRAUD_PATTERNS: tuple[FraudPattern, ...] = (
    FraudPattern(
        name="weight_loss_pens",
        commodity_code="MED-WEIGHT",
        share=0.004,
        fraud_rate=0.9,
        start_day=7,
        ramp_days=7,
        origin_country=("CN",),
        departure_country=("TR",),
        channel=("POSTAL",),
        descriptions=("Beauty pen", "Cosmetic pen", "Pen injector", "Plastic pen", "Skin care pen"),
        hs_codes=("330499", "960899"),
        value_usd=(8.0, 30.0),
        weight_kg=(0.08, 0.35),
    ),
    FraudPattern(
        name="misdescribed_sneakers",
        commodity_code="IPR-FOOT",
        share=0.004,
        fraud_rate=0.8,
        origin_country=("CN",),
        departure_country=("CN",),
        channel=("EXPRESS",),
        carrier=("SwiftXpress",),
        descriptions=("Sneakers", "Sport shoes", "Running shoes", "Basketball shoes"),
        hs_codes=("640411", "640419"),
        value_usd=(10.0, 35.0),
        weight_kg=(0.8, 1.6),
        drift_day=21,
        drift_descriptions=("Gift", "Textile sample", "Sample", "Clothing accessories"),
        drift_hs_codes=("630790", "621790"),
    ),
    FraudPattern(
        name="undervalued_watches",
        commodity_code="IPR-WATCH",
        share=0.003,
        fraud_rate=0.85,
        ramp_days=28,
        origin_country=("HK",),
        departure_country=("HK",),
        descriptions=("Watch", "Fashion watch", "Wrist watch", "Accessory"),
        hs_codes=("910211", "910219"),
        value_usd=(5.0, 15.0),
        weight_kg=(0.1, 0.3),
        sender_cluster=40,
    ),
)

# --------------------------------------------------------------------------------------------------
# Reference tables
# --------------------------------------------------------------------------------------------------

# origin country, weight, share of POSTAL / EXPRESS (rest AIR_CARGO), transit hubs (country, prob)
_ORIGINS: tuple[tuple[str, float, float, float, tuple[tuple[str, float], ...]], ...] = (
    ("CN", 0.55, 0.62, 0.34, (("HK", 0.08), ("AE", 0.03))),
    ("HK", 0.08, 0.45, 0.52, ()),
    ("TR", 0.05, 0.55, 0.42, ()),
    ("IN", 0.04, 0.60, 0.35, (("AE", 0.15),)),
    ("US", 0.06, 0.40, 0.57, ()),
    ("GB", 0.05, 0.55, 0.43, ()),
    ("VN", 0.03, 0.55, 0.40, (("SG", 0.10),)),
    ("KR", 0.03, 0.45, 0.52, ()),
    ("TH", 0.02, 0.60, 0.36, ()),
    ("PK", 0.02, 0.60, 0.35, (("AE", 0.20),)),
    ("AE", 0.02, 0.40, 0.55, ()),
    ("SG", 0.02, 0.45, 0.52, ()),
    ("JP", 0.015, 0.50, 0.48, ()),
    ("MY", 0.01, 0.60, 0.36, ()),
    ("ID", 0.005, 0.65, 0.30, ()),
)
_POSTAL = {
    "CN": "China Post", "HK": "Hongkong Post", "TR": "PTT", "IN": "India Post", "US": "USPS",
    "GB": "Royal Mail", "VN": "Vietnam Post", "KR": "Korea Post", "TH": "Thailand Post",
    "PK": "Pakistan Post", "AE": "Emirates Post", "SG": "SingPost", "JP": "Japan Post",
    "MY": "Pos Malaysia", "ID": "Pos Indonesia",
}  # fmt: skip
_EXPRESS = (("DHL", 0.26), ("FedEx", 0.15), ("UPS", 0.14), ("Cainiao", 0.17), ("SF Express", 0.09),
            ("YunExpress", 0.09), ("Aramex", 0.05), ("SwiftXpress", 0.05))  # fmt: skip
_AIR_CARGO = (("Lufthansa Cargo", 0.3), ("Emirates SkyCargo", 0.25), ("Qatar Airways Cargo", 0.25),
              ("Turkish Cargo", 0.2))  # fmt: skip
# destination country, weight, offices
_DESTINATIONS: tuple[tuple[str, float, tuple[str, ...]], ...] = (
    ("DE", 0.22, ("DEFRA01", "DELEJ01", "DECGN01")),
    ("FR", 0.18, ("FRCDG01", "FRROI01")),
    ("NL", 0.12, ("NLAMS01",)),
    ("BE", 0.10, ("BELGG01", "BEBRU01")),
    ("IT", 0.10, ("ITMXP01",)),
    ("ES", 0.09, ("ESMAD01",)),
    ("PL", 0.07, ("PLWAW01",)),
    ("SE", 0.04, ("SEARN01",)),
    ("AT", 0.04, ("ATVIE01",)),
    ("IE", 0.04, ("IEDUB01",)),
)
_MARKETPLACES = (
    ("AliExpress", 0.24),
    ("Temu", 0.2),
    ("Shein", 0.12),
    ("Amazon", 0.12),
    ("eBay", 0.07),
    ("Wish", 0.04),
    ("Joom", 0.03),
    ("Etsy", 0.03),
    ("Vinted", 0.02),
)  # None for the rest
_MARKET_RISK = {"Wish": 3.0, "Joom": 2.0, "AliExpress": 1.4, "Temu": 1.2, "eBay": 1.2, "Amazon": 0.6,
                "Etsy": 0.5, "Vinted": 1.5}  # fmt: skip
_CURRENCIES = (("USD", 0.62, 1.0), ("EUR", 0.22, 0.92), ("CNY", 0.08, 7.2), ("GBP", 0.05, 0.79),
               ("HKD", 0.03, 7.8))  # fmt: skip
_ORIGIN_RISK = {
    "CN": 1.5,
    "HK": 1.6,
    "TR": 1.4,
    "IN": 1.3,
    "VN": 1.0,
    "PK": 1.3,
    "TH": 0.9,
    "AE": 1.1,
    "US": 0.35,
    "GB": 0.35,
    "KR": 0.5,
    "JP": 0.3,
    "SG": 0.5,
    "MY": 0.8,
    "ID": 0.8,
}


@dataclass(frozen=True)
class _Category:
    name: str
    weight: float
    descriptions: tuple[str, ...]
    hs_codes: tuple[str, ...]
    value_mu: float  # log USD per item
    value_sigma: float
    weight_mu: float  # log kg per item
    weight_sigma: float
    fraud_base: float
    commodity_codes: tuple[tuple[str, float], ...] = field(default_factory=tuple)


_CATEGORIES: tuple[_Category, ...] = (
    _Category("apparel", 0.20, ("T-shirt", "Cotton shirt", "Women's dress", "Hoodie", "Jacket", "Jeans",
              "Sportswear", "Clothes"), ("610910", "611020", "620443", "620342"), 2.9, 0.6, -1.2, 0.5, 0.006,
              (("IPR-CLOTH", 1.0),)),
    _Category("footwear", 0.07, ("Running shoes", "Sneakers", "Sport shoes", "Leather boots", "Sandals",
              "Slippers"), ("640411", "640399", "640299"), 3.5, 0.6, -0.2, 0.35, 0.012, (("IPR-FOOT", 1.0),)),
    _Category("bags", 0.05, ("Handbag", "Leather wallet", "Backpack", "Shoulder bag", "Purse"),
              ("420221", "420222", "420231"), 3.2, 0.8, -0.9, 0.5, 0.012, (("IPR-BAGS", 1.0),)),
    _Category("watches", 0.03, ("Wrist watch", "Quartz watch", "Watch", "Smart watch strap"),
              ("910211", "910219", "911390"), 3.4, 0.9, -1.9, 0.4, 0.01, (("IPR-WATCH", 1.0),)),
    _Category("electronics", 0.16, ("Bluetooth earphones", "Phone charger", "Phone case", "USB cable",
              "Power bank", "Wireless earbuds", "Smart watch"), ("851830", "850440", "392690", "854442",
              "850760"), 2.8, 0.9, -1.6, 0.6, 0.006, (("IPR-ELEC", 1.0),)),
    _Category("toys", 0.06, ("Plastic toy", "Doll", "Building blocks", "Plush toy", "Toy car"),
              ("950300",), 2.6, 0.7, -0.9, 0.5, 0.004, (("IPR-TOYS", 1.0),)),
    _Category("auto_parts", 0.03, ("Car parts", "Brake pads", "Motorcycle parts", "Car light", "Filter"),
              ("870830", "870899", "851220"), 3.3, 0.9, 0.0, 0.7, 0.005, (("IPR-TRANSP", 1.0),)),
    _Category("cosmetics", 0.08, ("Lipstick", "Face cream", "Makeup set", "Eyeshadow palette", "Perfume",
              "Nail polish"), ("330499", "330410", "330300"), 2.5, 0.7, -1.6, 0.5, 0.008,
              (("OTH-COSM", 1.0),)),
    _Category("supplements", 0.04, ("Health supplement", "Vitamin capsules", "Herbal tea", "Tablets",
              "Herbal capsules", "Food supplement"), ("210690", "300490", "121190"), 3.0, 0.7, -1.3, 0.5,
              0.035, (("MED-GENURO", 0.45), ("MED-NERV", 0.25), ("MED-ANTIINF", 0.2), ("MED-WEIGHT", 0.1))),
    _Category("medical_devices", 0.02, ("Blood pressure monitor", "Thermometer", "Massage device",
              "Pulse oximeter", "Hearing aid"), ("901890", "902519", "901920", "902140"), 3.4, 0.8, -1.0, 0.5,
              0.01, (("MED-DEVICE", 1.0),)),
    _Category("home", 0.18, ("Kitchen tools", "Phone holder", "Home decoration", "Sticker set", "LED strip",
              "Storage box", "Garden tools"), ("392410", "392690", "442090", "940540", "732399"), 2.4, 0.8,
              -0.8, 0.7, 0.0, ()),
    _Category("books", 0.08, ("Book", "Documents", "Magazine", "Printed matter"), ("490199", "490290"),
              2.6, 0.6, -0.7, 0.5, 0.0, ()),
)  # fmt: skip


def _as_datetime(start: dt.date | dt.datetime | str) -> dt.datetime:
    if isinstance(start, str):
        start = dt.datetime.fromisoformat(start)
    if isinstance(start, dt.datetime):
        return start.replace(tzinfo=None)
    return dt.datetime(start.year, start.month, start.day)


def _pick(rng: np.random.Generator, n: int, weights: Sequence[float]) -> np.ndarray:
    cdf = np.cumsum(np.asarray(weights, dtype=np.float64))
    cdf /= cdf[-1]
    return np.minimum(np.searchsorted(cdf, rng.random(n), side="right"), len(cdf) - 1).astype(np.int32)


def _vocab_index(vocab: dict[str, int], values: Sequence[str]) -> np.ndarray:
    out = []
    for v in values:
        if v not in vocab:
            vocab[v] = len(vocab)
        out.append(vocab[v])
    return np.asarray(out, dtype=np.int32)


def generate_consignments(
    n: int,
    start: dt.date | dt.datetime | str = "2026-01-05",
    days: int = 28,
    seed: int = 0,
    fraud_patterns: Sequence[FraudPattern] = DEFAULT_FRAUD_PATTERNS,
    *,
    labels: Literal["historic", "full", "none"] = "historic",
    inspection_rate: float = 0.05,
    truth: bool = False,
    hmac_key: bytes | None = None,
    n_senders: int | None = None,
    n_consignees: int | None = None,
) -> pl.DataFrame:
    """Generate ``n`` consignments declared over ``days`` days from ``start``, in time order.

    ``labels``: ``"historic"`` marks a random ``inspection_rate`` of rows ``inspected`` and sets
    ``seized`` / ``commodity_code`` for the inspected fraudulent ones; ``"full"`` inspects everything
    (complete labels, for training benchmarks); ``"none"`` leaves the label columns out. ``truth`` adds
    ``truth_fraud``, ``truth_commodity_code`` and ``truth_pattern`` (``"background"`` or a pattern name).
    Parties are pseudonymised with HMAC-SHA256 under ``hmac_key`` (default: derived from ``seed``).
    """
    if n < 0 or days < 1:
        raise ValueError("n must be >= 0 and days >= 1")
    rng = np.random.default_rng(seed)
    key = hmac_key or f"stopnet-simulation-{seed}".encode()
    t0 = _as_datetime(start)

    # time: sorted arrival process over the period (cumulated exponential gaps -> sorted, O(n))
    gaps = rng.exponential(size=n + 1)
    csum = np.cumsum(gaps)
    span_us = days * 86_400 * 1_000_000
    offset_us = (csum[:n] / csum[-1] * (span_us - 1)).astype(np.int64) if n else np.zeros(0, np.int64)
    day = (offset_us // (86_400 * 1_000_000)).astype(np.int32)

    # goods category
    cat = _pick(rng, n, [c.weight for c in _CATEGORIES])

    # origin, channel, departure
    origin_codes = [o[0] for o in _ORIGINS]
    origin = _pick(rng, n, [o[1] for o in _ORIGINS])
    p_postal = np.array([o[2] for o in _ORIGINS])[origin]
    p_express = np.array([o[3] for o in _ORIGINS])[origin]
    u = rng.random(n)
    channel = np.where(u < p_postal, 0, np.where(u < p_postal + p_express, 1, 2)).astype(np.int32)
    channel_names = ["POSTAL", "EXPRESS", "AIR_CARGO"]

    country_vocab: dict[str, int] = {}
    origin_idx = _vocab_index(country_vocab, origin_codes)
    origin_c = origin_idx[origin]
    departure_c = origin_c.copy()
    u = rng.random(n)
    for k, (_, _, _, _, hubs) in enumerate(_ORIGINS):
        acc = 0.0
        for hub, prob in hubs:
            hub_idx = _vocab_index(country_vocab, [hub])[0]
            mask = (origin == k) & (u >= acc) & (u < acc + prob)
            departure_c[mask] = hub_idx
            acc += prob

    # carrier: postal operator of the departure country / express integrator / airline
    carrier_vocab: dict[str, int] = {}
    postal_of_country = np.full(64, -1, dtype=np.int32)
    for code, name in _POSTAL.items():
        postal_of_country[_vocab_index(country_vocab, [code])[0]] = _vocab_index(carrier_vocab, [name])[0]
    express_idx = _vocab_index(carrier_vocab, [c for c, _ in _EXPRESS])
    cargo_idx = _vocab_index(carrier_vocab, [c for c, _ in _AIR_CARGO])
    carrier = np.where(
        channel == 0,
        postal_of_country[departure_c],
        np.where(
            channel == 1,
            express_idx[_pick(rng, n, [w for _, w in _EXPRESS])],
            cargo_idx[_pick(rng, n, [w for _, w in _AIR_CARGO])],
        ),
    ).astype(np.int32)

    # destination and office
    dest = _pick(rng, n, [d[1] for d in _DESTINATIONS])
    dest_c = _vocab_index(country_vocab, [d[0] for d in _DESTINATIONS])[dest]
    office_names: list[str] = []
    office_start = np.zeros(len(_DESTINATIONS), dtype=np.int32)
    office_count = np.zeros(len(_DESTINATIONS), dtype=np.int32)
    for k, (_, _, offices) in enumerate(_DESTINATIONS):
        office_start[k] = len(office_names)
        office_count[k] = len(offices)
        office_names.extend(offices)
    office = office_start[dest] + np.floor(rng.random(n) * office_count[dest]).astype(np.int32)

    # description and HS code from the category
    desc_vocab: dict[str, int] = {}
    hs_vocab: dict[str, int] = {}
    desc_table = [_vocab_index(desc_vocab, c.descriptions) for c in _CATEGORIES]
    hs_table = [_vocab_index(hs_vocab, c.hs_codes) for c in _CATEGORIES]
    desc_flat, hs_flat = np.concatenate(desc_table), np.concatenate(hs_table)
    d_start = np.concatenate([[0], np.cumsum([len(t) for t in desc_table])[:-1]]).astype(np.int32)
    h_start = np.concatenate([[0], np.cumsum([len(t) for t in hs_table])[:-1]]).astype(np.int32)
    d_count = np.array([len(t) for t in desc_table], dtype=np.int32)
    h_count = np.array([len(t) for t in hs_table], dtype=np.int32)
    description = desc_flat[d_start[cat] + np.floor(rng.random(n) * d_count[cat]).astype(np.int32)]
    hs = hs_flat[h_start[cat] + np.floor(rng.random(n) * h_count[cat]).astype(np.int32)]

    # quantity, value (USD), weight
    quantity = np.minimum(rng.geometric(0.65, n), 20).astype(np.int64)
    vmu = np.array([c.value_mu for c in _CATEGORIES])[cat]
    vsd = np.array([c.value_sigma for c in _CATEGORIES])[cat]
    wmu = np.array([c.weight_mu for c in _CATEGORIES])[cat]
    wsd = np.array([c.weight_sigma for c in _CATEGORIES])[cat]
    z_value = rng.standard_normal(n)
    unit_value = np.exp(vmu + vsd * z_value)
    value_usd = unit_value * quantity**0.85
    weight = np.exp(wmu + wsd * rng.standard_normal(n)) * quantity**0.9 + 0.02

    # marketplace (None for direct web shops)
    mk_names = [m for m, _ in _MARKETPLACES]
    mk_weights = [w for _, w in _MARKETPLACES]
    marketplace = _pick(rng, n, [*mk_weights, max(1e-9, 1.0 - sum(mk_weights))])  # last = none

    # parties
    n_send = n_senders or int(min(max(n // 40, 1000), 250_000))
    n_cons = n_consignees or int(min(max(n // 4, 1000), 400_000))
    sender_origin_pool = np.floor(rng.random(n) ** 2.5 * n_send).astype(np.int64)  # skewed: big sellers
    # senders live in an origin country: offset the pool per origin
    sender = (sender_origin_pool + origin.astype(np.int64) * 7919) % n_send
    consignee = np.floor(rng.random(n) * n_cons).astype(np.int64)
    rogue = np.zeros(n_send, dtype=bool)
    rogue[rng.choice(n_send, size=max(1, n_send // 50), replace=False)] = True

    # background fraud
    base = np.array([c.fraud_base for c in _CATEGORIES])[cat]
    risk_origin = np.array([_ORIGIN_RISK[o] for o in origin_codes])[origin]
    risk_market = np.array([*[_MARKET_RISK.get(m, 1.0) for m in mk_names], 0.8])[marketplace]
    risk_value = np.where(z_value < -1.0, 3.0, np.where(z_value < 0.0, 1.3, 0.6))
    risk_sender = np.where(rogue[sender], 12.0, 1.0)
    p_fraud = np.clip(base * risk_origin * risk_market * risk_value * risk_sender, 0.0, 0.9)
    is_fraud = rng.random(n) < p_fraud
    pattern = np.where(is_fraud, 0, -1).astype(np.int32)  # 0 = background, k+1 = planted pattern k
    # commodity code of background fraud
    code_vocab = {c: i for i, c in enumerate(COMMODITY_CODES)}
    commodity = np.full(n, -1, dtype=np.int32)
    u = rng.random(n)
    for k, c in enumerate(_CATEGORIES):
        if not c.commodity_codes:
            continue
        mask = cat == k
        acc = 0.0
        for code, prob in c.commodity_codes:
            commodity[mask & (u >= acc) & (u < acc + prob)] = code_vocab[code]
            acc += prob
    is_fraud &= commodity >= 0
    pattern[~is_fraud] = -1

    # planted patterns
    for k, fp in enumerate(fraud_patterns):
        join = (rng.random(n) < fp.share * fp.intensity(day)) & (pattern < 1)
        m = int(join.sum())
        if not m:
            continue
        rows = np.flatnonzero(join)
        if fp.origin_country:
            origin_c[rows] = _vocab_index(country_vocab, fp.origin_country)[
                rng.integers(0, len(fp.origin_country), m)
            ]
        if fp.departure_country:
            departure_c[rows] = _vocab_index(country_vocab, fp.departure_country)[
                rng.integers(0, len(fp.departure_country), m)
            ]
        if fp.channel:
            channel[rows] = np.array(
                [channel_names.index(c) if c in channel_names else 2 for c in fp.channel]
            )[rng.integers(0, len(fp.channel), m)]
            if not fp.carrier:
                # carrier consistent with the channel
                post = channel[rows] == 0
                carrier[rows[post]] = postal_of_country[departure_c[rows[post]]]
        if fp.carrier:
            carrier[rows] = _vocab_index(carrier_vocab, fp.carrier)[rng.integers(0, len(fp.carrier), m)]
        if fp.descriptions:
            d_choice = _vocab_index(desc_vocab, fp.descriptions)[rng.integers(0, len(fp.descriptions), m)]
            if fp.drift_day is not None and fp.drift_descriptions:
                drifted = _vocab_index(desc_vocab, fp.drift_descriptions)[
                    rng.integers(0, len(fp.drift_descriptions), m)
                ]
                d_choice = np.where(day[rows] >= fp.drift_day, drifted, d_choice)
            description[rows] = d_choice
        if fp.hs_codes:
            h_choice = _vocab_index(hs_vocab, fp.hs_codes)[rng.integers(0, len(fp.hs_codes), m)]
            if fp.drift_day is not None and fp.drift_hs_codes:
                drifted = _vocab_index(hs_vocab, fp.drift_hs_codes)[
                    rng.integers(0, len(fp.drift_hs_codes), m)
                ]
                h_choice = np.where(day[rows] >= fp.drift_day, drifted, h_choice)
            hs[rows] = h_choice
        if fp.value_usd:
            lo, hi = fp.value_usd
            value_usd[rows] = rng.uniform(lo, hi, m)
            quantity[rows] = 1 + (rng.random(m) < 0.2)
        if fp.weight_kg:
            lo, hi = fp.weight_kg
            weight[rows] = rng.uniform(lo, hi, m)
        if fp.marketplace:
            marketplace[rows] = np.array([mk_names.index(x) for x in fp.marketplace])[
                rng.integers(0, len(fp.marketplace), m)
            ]
        if fp.sender_cluster:
            # the cluster is fixed for the pattern: draw it from a pattern-specific generator
            cluster = np.random.default_rng([seed, 7, k]).choice(
                n_send, size=min(fp.sender_cluster, n_send), replace=False
            )
            sender[rows] = cluster[rng.integers(0, cluster.shape[0], m)]
        fraud_rows = rng.random(m) < fp.fraud_rate
        is_fraud[rows] = fraud_rows
        pattern[rows] = np.where(fraud_rows, k + 1, -1)
        commodity[rows] = np.where(fraud_rows, code_vocab[fp.commodity_code], -1)
    commodity[~is_fraud] = -1

    # currency
    cur = _pick(rng, n, [c[1] for c in _CURRENCIES])
    rate = np.array([c[2] for c in _CURRENCIES])[cur]
    declared_value = np.round(value_usd * rate, 2)

    # ---- assemble with polars gathers (no per-row Python) ----
    def gather(vocab: dict[str, int] | Sequence[str | None], idx: np.ndarray) -> pl.Series:
        return pl.Series(list(vocab), dtype=pl.String).gather(idx)

    sender_names = pl.Series([pseudonymise(f"sender:{s}", key) for s in range(n_send)], dtype=pl.String)
    consignee_names = pl.Series([pseudonymise(f"consignee:{c}", key) for c in range(n_cons)], dtype=pl.String)
    declared_at = pl.Series(offset_us, dtype=pl.Int64).cast(pl.Duration("us")) + t0
    transit_days = np.where(channel == 0, rng.integers(3, 12, n), rng.integers(1, 5, n)).astype(np.int32)
    arrival = (
        (declared_at.cast(pl.Date).cast(pl.Int32) + pl.Series(transit_days, dtype=pl.Int32)).cast(pl.Date)
        if n
        else pl.Series([], dtype=pl.Date)
    )
    id_prefix = f"S{seed % 100000:05d}-"
    cols: dict[str, pl.Series] = {
        "consignment_id": pl.select(
            pl.concat_str(pl.lit(id_prefix), pl.int_range(0, n, dtype=pl.Int64).cast(pl.String).str.zfill(9))
        ).to_series(),
        "declared_at": declared_at,
        "arrival_date": arrival,
        "channel": gather(channel_names, channel),
        "carrier": gather(carrier_vocab, carrier),
        "sender_id": sender_names.gather(sender),
        "consignee_id": consignee_names.gather(consignee),
        "origin_country": gather(country_vocab, origin_c),
        "departure_country": gather(country_vocab, departure_c),
        "destination_country": gather(country_vocab, dest_c),
        "office": gather(office_names, office),
        "description": gather(desc_vocab, description),
        "hs_code": gather(hs_vocab, hs),
        "declared_value": pl.Series(declared_value, dtype=pl.Float64),
        "currency": gather([c[0] for c in _CURRENCIES], cur),
        "weight_kg": pl.Series(np.round(weight, 3), dtype=pl.Float64),
        "quantity": pl.Series(quantity, dtype=pl.Int64),
        "marketplace": gather([*mk_names, None], marketplace),
    }
    frame = pl.DataFrame([s.alias(name) for name, s in cols.items()])
    code_series = pl.Series([*COMMODITY_CODES, None], dtype=pl.String)
    true_code = code_series.gather(np.where(commodity >= 0, commodity, len(COMMODITY_CODES)))
    if labels != "none":
        if labels == "full":
            inspected = np.ones(n, dtype=bool)
        elif labels == "historic":
            inspected = rng.random(n) < inspection_rate
        else:
            raise ValueError(f"labels must be 'historic', 'full' or 'none', not {labels!r}")
        seized = inspected & is_fraud
        frame = frame.with_columns(
            pl.Series("inspected", inspected),
            pl.Series("seized", seized),
            true_code.zip_with(pl.Series(seized), pl.Series([None] * n, dtype=pl.String)).alias(
                "commodity_code"
            )
            if n
            else pl.Series("commodity_code", [], dtype=pl.String),
        )
    if truth:
        names = pl.Series([*["background"], *[fp.name for fp in fraud_patterns], None], dtype=pl.String)
        frame = frame.with_columns(
            pl.Series("truth_fraud", is_fraud),
            true_code.alias("truth_commodity_code"),
            names.gather(np.where(pattern >= 0, pattern, len(fraud_patterns) + 1)).alias("truth_pattern"),
        )
    assert list(frame.columns[: len(CONSIGNMENT_SCHEMA)]) == list(CONSIGNMENT_SCHEMA)
    return frame


# --------------------------------------------------------------------------------------------------
# Inspect-and-learn
# --------------------------------------------------------------------------------------------------

STRATEGIES = ("exploit", "explore", "random")


def _default_model_factory(frame: pl.DataFrame, seed: int) -> Any:
    from stopnet.risk.pipeline import train_consignment_model

    return train_consignment_model(frame, seed=seed, params={"num_threads": 1})


def simulate_inspect_and_learn(
    weeks: int = 8,
    capacity: float | int | str = 0.02,
    strategies: Sequence[str] = STRATEGIES,
    seed: int = 0,
    *,
    n_per_week: int = 20_000,
    exploration_share: float = 0.1,
    warmup_inspection_rate: float = 0.1,
    fraud_patterns: Sequence[FraudPattern] = DEFAULT_FRAUD_PATTERNS,
    model_factory: Callable[[pl.DataFrame, int], Any] | None = None,
    start: dt.date | dt.datetime | str = "2026-01-05",
) -> pl.DataFrame:
    """Replay ``weeks`` weeks of a simulated stream under each selection strategy.

    Week 0 is the warm-up: a random ``warmup_inspection_rate`` of it was inspected (historic controls)
    and every strategy starts from a model trained on it. Then, each week and for each strategy: score
    the week's consignments with the strategy's current model, select within ``capacity`` (a share of
    the week's rows, a count, or text like ``"2%"``), reveal ``seized`` only for the inspected ones,
    and retrain on everything learnt so far.

    Strategies: ``exploit`` (model ranking only), ``explore`` (``exploration_share`` of the capacity
    sampled where the model is unsure), ``random`` (uniform). Returns one row per (week, strategy):
    ``inspections``, ``seizures``, ``precision`` (seizures / inspections), ``frauds`` (in the week)
    and ``recall``.
    """
    from stopnet.risk.selection import select_for_inspection

    unknown = [s for s in strategies if s not in STRATEGIES]
    if unknown:
        raise ValueError(f"unknown strategy {unknown[0]!r}; choose from {STRATEGIES}")
    if weeks < 1:
        raise ValueError("weeks must be >= 1")
    factory = model_factory or _default_model_factory
    stream = generate_consignments(
        n_per_week * (weeks + 1),
        start=start,
        days=7 * (weeks + 1),
        seed=seed,
        fraud_patterns=fraud_patterns,
        labels="none",
        truth=True,
    )
    t0 = _as_datetime(start)
    week = ((pl.col("declared_at") - pl.lit(t0)).dt.total_days() // 7).cast(pl.Int32)
    stream = stream.with_columns(week.alias("__week"))
    truth = stream.get_column("truth_fraud").to_numpy()
    week_of = stream.get_column("__week").to_numpy()
    public = stream.drop("truth_fraud", "truth_commodity_code", "truth_pattern")

    rng = np.random.default_rng([seed, 1])
    warm = week_of == 0
    inspected0 = warm & (rng.random(stream.height) < warmup_inspection_rate)

    rows: list[dict[str, Any]] = []
    for strategy in strategies:
        inspected = inspected0.copy()
        for w in range(1, weeks + 1):
            past = week_of < w
            train = public.filter(pl.Series(past)).with_columns(
                pl.Series("inspected", inspected[past]),
                pl.Series("seized", inspected[past] & truth[past]),
            )
            model = factory(train, seed)
            idx = np.flatnonzero(week_of == w)
            current = public[idx]
            from stopnet.risk.pipeline import score_frame

            scores = score_frame(model, current)
            share = 1.0 if strategy == "random" else (exploration_share if strategy == "explore" else 0.0)
            cap: Any = capacity
            sel = select_for_inspection(
                scores if strategy != "random" else np.zeros(idx.shape[0]),
                cap,
                exploration_share=share,
                exploration="random" if strategy == "random" else "uncertainty",
                seed=seed * 1000 + w,
            )
            chosen = idx[sel.selected]
            inspected[chosen] = True
            n_insp = int(chosen.shape[0])
            n_seiz = int(truth[chosen].sum())
            n_fraud = int(truth[idx].sum())
            rows.append(
                {
                    "week": w,
                    "strategy": strategy,
                    "inspections": n_insp,
                    "seizures": n_seiz,
                    "precision": n_seiz / n_insp if n_insp else None,
                    "frauds": n_fraud,
                    "recall": n_seiz / n_fraud if n_fraud else None,
                }
            )
    return pl.DataFrame(
        rows,
        schema={
            "week": pl.Int32,
            "strategy": pl.String,
            "inspections": pl.Int64,
            "seizures": pl.Int64,
            "precision": pl.Float64,
            "frauds": pl.Int64,
            "recall": pl.Float64,
        },
    ).sort("week", "strategy")
