"""Typed loader for the reference data shipped in ``stopnet/reference/data/*.json``.

The files are read with :mod:`importlib.resources`, so they load the same way from a source checkout, an
editable install or a wheel. Everything is validated when it is loaded (codes, duplicates, and the links
between files: region members are countries, every commodity's group exists, every RILO sits in a region);
a broken file raises :class:`ReferenceDataError` naming the file and the record. Nothing here touches the
network or the configuration, and nothing is read at import time: :func:`get_reference` loads on first use
and keeps the result.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any, Literal, NoReturn, TypeVar, cast

__all__ = [
    "COMMODITY_GROUPS",
    "KINDS",
    "LIST_KINDS",
    "Commodity",
    "Country",
    "FrozenDict",
    "Reference",
    "ReferenceDataError",
    "Region",
    "Rilo",
    "get_reference",
    "load_reference",
]

CommodityGroup = Literal["medicines", "ipr", "other"]
COMMODITY_GROUPS: tuple[str, ...] = ("medicines", "ipr", "other")

#: The simple code lists: attribute name == file name (without ``.json``); each is ``code -> label``.
LIST_KINDS: tuple[str, ...] = (
    "transport_modes",
    "channels",
    "detection_methods",
    "infringement_types",
    "natures",
    "concealments",
    "units",
    "currencies",
    "org_kinds",
    "platform_types",
)
#: Every ``kind`` that :meth:`Reference.has` and :meth:`Reference.label` accept.
KINDS: tuple[str, ...] = (*LIST_KINDS, "countries", "regions", "commodities", "groups", "rilos")

_CODE = re.compile(r"[A-Z0-9][A-Z0-9_]*(-[A-Z0-9_]+)*")
_ISO2 = re.compile(r"[A-Z]{2}")
_ISO3 = re.compile(r"[A-Z]{3}")
_CURRENCY = re.compile(r"[A-Z]{3}")
_GROUP = re.compile(r"[a-z][a-z0-9_]*")
# WHO ATC: anatomical group (A), therapeutic (A10), pharmacological (A10B), chemical (A10BJ), substance (A10BJ06)
_ATC = re.compile(r"[A-Z](\d{2}([A-Z]([A-Z](\d{2})?)?)?)?")
_HS = re.compile(r"\d{2}|\d{4}|\d{6}")

_PACKAGE = "stopnet.reference"
_DATA_DIR = "data"


class ReferenceDataError(ValueError):
    """A reference data file is missing, malformed or inconsistent with the others."""


K = TypeVar("K")
V = TypeVar("V")


class FrozenDict(dict[K, V]):
    """A ``dict`` that refuses changes.

    The reference data is one shared, cached object: a consumer that mutated ``ref.channels`` would
    change it for everybody. This stays a real ``dict`` (``isinstance``, ``json.dumps``, pydantic and
    FastAPI all treat it as one, and order is kept) but every mutating method raises ``TypeError``.
    ``copy()`` returns an ordinary, mutable ``dict``.
    """

    __slots__ = ()

    def _readonly(self, *args: object, **kwargs: object) -> NoReturn:
        raise TypeError("reference data is read-only; copy it with dict(...) to change it")

    __setitem__ = _readonly
    __delitem__ = _readonly
    __ior__ = _readonly
    clear = _readonly
    pop = _readonly
    popitem = _readonly
    setdefault = _readonly
    update = _readonly

    def copy(self) -> dict[K, V]:
        return dict(self)

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (dict(self),))


@dataclass(frozen=True, slots=True)
class Region:
    """A WCO region: ``members`` are the ISO 3166 alpha-2 codes of its WCO Members, sorted."""

    code: str
    name: str
    members: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Country:
    """An ISO 3166-1 country or territory; ``region_code`` and ``wco_member`` come from the regions."""

    iso2: str
    iso3: str
    name: str
    region_code: str | None = None
    wco_member: bool = False


@dataclass(frozen=True, slots=True)
class Commodity:
    """A commodity category for seizures.

    ``atc`` is the main WHO ATC code of a medicines category (``None`` for devices and non-medicines);
    ``atc_codes`` is every ATC prefix that belongs to it (``atc`` first), used by
    :meth:`Reference.commodity_for_atc`. ``hs_prefixes`` are indicative HS 2022 headings (2, 4 or 6 digits).
    """

    code: str
    name: str
    group: CommodityGroup
    atc: str | None
    hs_prefixes: tuple[str, ...]
    description: str
    atc_codes: tuple[str, ...] = field(default=())


@dataclass(frozen=True, slots=True)
class Rilo:
    """A WCO Regional Intelligence Liaison Office."""

    code: str
    name: str
    city: str
    country: str
    region_code: str


@dataclass(frozen=True, slots=True, eq=False, repr=False)
class Reference:
    """All reference data. Get the shared instance with :func:`get_reference`; treat it as read-only."""

    regions: tuple[Region, ...]
    countries: dict[str, Country]
    commodities: dict[str, Commodity]
    groups: dict[str, str]
    rilos: tuple[Rilo, ...]
    transport_modes: dict[str, str]
    channels: dict[str, str]
    detection_methods: dict[str, str]
    infringement_types: dict[str, str]
    natures: dict[str, str]
    concealments: dict[str, str]
    units: dict[str, str]
    currencies: dict[str, str]
    org_kinds: dict[str, str]
    platform_types: dict[str, str]
    #: ``kind -> code -> description`` for the simple lists, where the file gives one.
    descriptions: dict[str, dict[str, str]] = field(repr=False, default_factory=dict)
    _region_by_code: dict[str, Region] = field(repr=False, default_factory=dict)
    _rilo_by_code: dict[str, Rilo] = field(repr=False, default_factory=dict)

    def __repr__(self) -> str:
        return (
            f"<Reference: {len(self.wco_members)} WCO Members in {len(self.regions)} regions, "
            f"{len(self.countries)} countries, {len(self.commodities)} commodities, {len(self.rilos)} RILOs>"
        )

    # ------------------------------------------------------------------ look-ups

    def region_of(self, iso2: str) -> str | None:
        """The WCO region code of a country, or ``None`` if it is not a WCO Member (or not a country)."""
        country = self.countries.get(iso2)
        return country.region_code if country is not None else None

    def region(self, code: str) -> Region:
        """The region with this code (``KeyError`` if there is none)."""
        return self._region_by_code[code]

    def rilo(self, code: str) -> Rilo:
        """The RILO with this code (``KeyError`` if there is none)."""
        return self._rilo_by_code[code]

    @property
    def commodity_labels(self) -> dict[str, str]:
        """``code -> "Group: name"`` for pick lists, in taxonomy order."""
        return {c.code: f"{self.groups[c.group]}: {c.name}" for c in self.commodities.values()}

    @property
    def wco_members(self) -> frozenset[str]:
        """ISO codes of every WCO Member (all regions together)."""
        return frozenset(code for r in self.regions for code in r.members)

    def codes(self, kind: str) -> tuple[str, ...]:
        """Every code of a kind, in file order (``ValueError`` for an unknown kind)."""
        return tuple(self._table(kind))

    def has(self, kind: str, code: str | None) -> bool:
        """Whether ``code`` is a valid code of ``kind``.

        Codes are compared exactly (upper case, as stored); ``None`` is never valid. ``kind`` is one of
        :data:`KINDS`, e.g. ``ref.has("channels", "POSTAL")``; an unknown kind raises ``ValueError``.
        """
        table = self._table(kind)
        return isinstance(code, str) and code in table

    def label(self, kind: str, code: str | None) -> str:
        """The human label of a code: the list label, or the name of a country, region, commodity or RILO.

        ``None`` gives ``""`` (an optional field left blank); an unknown code raises ``KeyError``.
        """
        table = self._table(kind)
        if code is None:
            return ""
        try:
            entry = table[code]
        except KeyError:
            raise KeyError(f"unknown {kind} code {code!r}") from None
        if isinstance(entry, str):
            return entry
        return str(entry.name)

    def description(self, kind: str, code: str) -> str | None:
        """The longer description of a code where the data gives one (lists and commodities), else ``None``."""
        table = self._table(kind)
        if code not in table:
            raise KeyError(f"unknown {kind} code {code!r}")
        if kind == "commodities":
            return self.commodities[code].description
        return self.descriptions.get(kind, {}).get(code)

    def commodity_for_atc(self, atc: str) -> Commodity | None:
        """The medicines category of a WHO ATC code, by longest matching prefix.

        ``"A10BJ06"`` (semaglutide) gives ``MED-WEIGHT``, ``"A10AB01"`` (insulin) ``MED-ALIM``,
        ``"J07BX03"`` ``MED-VACC`` and ``"J01CA04"`` ``MED-ANTIINF``; an unknown code gives ``None``.
        """
        atc = atc.strip().upper()
        best: tuple[int, Commodity] | None = None
        for commodity in self.commodities.values():
            for prefix in commodity.atc_codes:
                if atc.startswith(prefix) and (best is None or len(prefix) > best[0]):
                    best = (len(prefix), commodity)
        return best[1] if best is not None else None

    def _table(self, kind: str) -> Mapping[str, Any]:
        if kind in LIST_KINDS or kind in ("countries", "commodities", "groups"):
            table: Mapping[str, Any] = getattr(self, kind)
            return table
        if kind == "regions":
            return self._region_by_code
        if kind == "rilos":
            return self._rilo_by_code
        raise ValueError(f"unknown reference kind {kind!r}; expected one of {', '.join(KINDS)}")


# ---------------------------------------------------------------------- loading


def _data_root() -> Traversable:
    return resources.files(_PACKAGE).joinpath(_DATA_DIR)


class _File:
    """One JSON file being read, so that every error names the file and the record."""

    def __init__(self, root: Traversable | Path, name: str) -> None:
        self.name = f"{name}.json"
        entry = root.joinpath(self.name)
        if not entry.is_file():
            raise ReferenceDataError(f"reference data file {self.name} is missing")
        try:
            self.data = json.loads(entry.read_text(encoding="utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ReferenceDataError(f"{self.name}: not valid UTF-8 JSON: {exc}") from exc
        if not isinstance(self.data, dict):
            self.fail("top level must be an object")

    def fail(self, message: str) -> NoReturn:
        raise ReferenceDataError(f"{self.name}: {message}")

    def records(
        self, key: str, required: Iterable[str], optional: Iterable[str] = ()
    ) -> list[dict[str, Any]]:
        rows = self.data.get(key)
        if not isinstance(rows, list) or not rows:
            self.fail(f"{key!r} must be a non-empty list")
        required = tuple(required)
        allowed = {*required, *optional, "note"}
        out = []
        for i, row in enumerate(rows):
            if not isinstance(row, dict):
                self.fail(f"{key}[{i}] must be an object")
            missing = [k for k in required if k not in row]
            if missing:
                self.fail(f"{key}[{i}] lacks {', '.join(missing)}")
            unknown = sorted(set(row) - allowed)
            if unknown:
                self.fail(f"{key}[{i}] has unknown field(s) {', '.join(unknown)}")
            out.append(row)
        return out

    def text(self, row: dict[str, Any], key: str, where: str) -> str:
        value = row.get(key)
        if not isinstance(value, str) or not value.strip() or value != value.strip():
            self.fail(f"{where}: {key} must be a non-empty string without outer spaces")
        return value

    def code(self, row: dict[str, Any], key: str, where: str, pattern: re.Pattern[str] = _CODE) -> str:
        value = self.text(row, key, where)
        if not pattern.fullmatch(value) or not value.isascii():
            self.fail(f"{where}: {key} {value!r} is not a valid code")
        return value


def _unique(file: _File, what: str, codes: list[str]) -> None:
    seen: set[str] = set()
    for code in codes:
        if code in seen:
            file.fail(f"duplicate {what} {code!r}")
        seen.add(code)


def _load_list(root: Traversable | Path, kind: str) -> tuple[dict[str, str], dict[str, str]]:
    f = _File(root, kind)
    pattern = _CURRENCY if kind == "currencies" else _CODE
    labels: dict[str, str] = {}
    descriptions: dict[str, str] = {}
    for i, row in enumerate(f.records("items", ("code", "label"), ("description",))):
        code = f.code(row, "code", f"items[{i}]", pattern)
        if code in labels:
            f.fail(f"duplicate code {code!r}")
        labels[code] = f.text(row, "label", code)
        if "description" in row:
            descriptions[code] = f.text(row, "description", code)
    return labels, descriptions


def _load_countries(root: Traversable | Path) -> list[tuple[str, str, str]]:
    f = _File(root, "countries")
    out = []
    for i, row in enumerate(f.records("countries", ("iso2", "iso3", "name"))):
        iso2 = f.code(row, "iso2", f"countries[{i}]", _ISO2)
        out.append((iso2, f.code(row, "iso3", iso2, _ISO3), f.text(row, "name", iso2)))
    _unique(f, "iso2", [c[0] for c in out])
    _unique(f, "iso3", [c[1] for c in out])
    return out


def _load_regions(root: Traversable | Path, iso2: set[str]) -> tuple[Region, ...]:
    f = _File(root, "regions")
    regions = []
    region_of: dict[str, str] = {}
    for i, row in enumerate(f.records("regions", ("code", "name", "members"))):
        code = f.code(row, "code", f"regions[{i}]")
        members = row["members"]
        if not isinstance(members, list) or not members:
            f.fail(f"region {code}: members must be a non-empty list")
        for m in members:
            if not isinstance(m, str) or m not in iso2:
                f.fail(f"region {code}: member {m!r} is not a country code in countries.json")
            if m in region_of:
                f.fail(f"{m} is a member of both {region_of[m]} and {code}")
            region_of[m] = code
        regions.append(Region(code, f.text(row, "name", code), tuple(sorted(members))))
    _unique(f, "region code", [r.code for r in regions])
    declared = f.data.get("member_count")
    if declared is not None and declared != len(region_of):
        f.fail(f"member_count says {declared} but the regions list {len(region_of)} members")
    return tuple(regions)


def _load_commodities(root: Traversable | Path) -> tuple[dict[str, Commodity], dict[str, str]]:
    f = _File(root, "commodities")
    groups: dict[str, str] = {}
    for i, row in enumerate(f.records("groups", ("code", "label"))):
        code = f.code(row, "code", f"groups[{i}]", _GROUP)
        if code not in COMMODITY_GROUPS:
            f.fail(f"group {code!r} is not one of {', '.join(COMMODITY_GROUPS)}")
        if code in groups:
            f.fail(f"duplicate group {code!r}")
        groups[code] = f.text(row, "label", code)
    commodities: dict[str, Commodity] = {}
    rows = f.records(
        "commodities", ("code", "name", "group", "atc", "hs_prefixes", "description"), ("atc_also",)
    )
    for i, row in enumerate(rows):
        code = f.code(row, "code", f"commodities[{i}]")
        if code in commodities:
            f.fail(f"duplicate commodity {code!r}")
        group = f.text(row, "group", code)
        if group not in groups:
            f.fail(f"{code}: group {group!r} is not in groups")
        atc = row["atc"]
        also = row.get("atc_also", [])
        if atc is None and also:
            f.fail(f"{code}: atc_also without atc")
        if not isinstance(also, list):
            f.fail(f"{code}: atc_also must be a list")
        atc_codes = [] if atc is None else [atc, *also]
        for a in atc_codes:
            if not isinstance(a, str) or not _ATC.fullmatch(a):
                f.fail(f"{code}: {a!r} is not a WHO ATC code")
        if atc_codes and group != "medicines":
            f.fail(f"{code}: only medicines categories carry ATC codes")
        hs = row["hs_prefixes"]
        if not isinstance(hs, list) or not hs:
            f.fail(f"{code}: hs_prefixes must be a non-empty list")
        for h in hs:
            if not isinstance(h, str) or not _HS.fullmatch(h):
                f.fail(f"{code}: HS prefix {h!r} must be 2, 4 or 6 digits")
        _unique(f, f"HS prefix in {code}", hs)
        commodities[code] = Commodity(
            code=code,
            name=f.text(row, "name", code),
            group=cast(CommodityGroup, group),
            atc=atc,
            hs_prefixes=tuple(hs),
            description=f.text(row, "description", code),
            atc_codes=tuple(atc_codes),
        )
    all_atc = [a for c in commodities.values() for a in c.atc_codes]
    _unique(f, "ATC code", all_atc)
    return commodities, groups


def _load_rilos(
    root: Traversable | Path, countries: Mapping[str, Country], regions: set[str]
) -> tuple[Rilo, ...]:
    f = _File(root, "rilos")
    rilos = []
    for i, row in enumerate(f.records("rilos", ("code", "name", "city", "country", "region_code"))):
        code = f.code(row, "code", f"rilos[{i}]")
        country = f.code(row, "country", code, _ISO2)
        region = f.code(row, "region_code", code)
        if country not in countries:
            f.fail(f"{code}: country {country!r} is not in countries.json")
        if region not in regions:
            f.fail(f"{code}: region {region!r} is not in regions.json")
        if countries[country].region_code != region:
            f.fail(f"{code}: {country} is not a member of region {region}")
        rilos.append(Rilo(code, f.text(row, "name", code), f.text(row, "city", code), country, region))
    _unique(f, "RILO code", [r.code for r in rilos])
    return tuple(rilos)


def load_reference(root: Traversable | Path | None = None) -> Reference:
    """Read and validate every reference file (uncached).

    ``root`` is the folder holding the JSON files; by default the package's own ``data`` folder, read
    through :mod:`importlib.resources`. Raises :class:`ReferenceDataError` on any problem.
    """
    root = _data_root() if root is None else root
    country_rows = _load_countries(root)
    regions = _load_regions(root, {c[0] for c in country_rows})
    region_of = {m: r.code for r in regions for m in r.members}
    countries = FrozenDict(
        (iso2, Country(iso2, iso3, name, region_of.get(iso2), iso2 in region_of))
        for iso2, iso3, name in country_rows
    )
    commodities, groups = _load_commodities(root)
    rilos = _load_rilos(root, countries, {r.code for r in regions})
    lists: dict[str, dict[str, str]] = {}
    descriptions: dict[str, dict[str, str]] = {}
    for kind in LIST_KINDS:
        labels, descs = _load_list(root, kind)
        lists[kind] = FrozenDict(labels)
        descriptions[kind] = FrozenDict(descs)
    return Reference(
        regions=regions,
        countries=countries,
        commodities=FrozenDict(commodities),
        groups=FrozenDict(groups),
        rilos=rilos,
        descriptions=FrozenDict(descriptions),
        _region_by_code=FrozenDict((r.code, r) for r in regions),
        _rilo_by_code=FrozenDict((r.code, r) for r in rilos),
        **lists,
    )


@lru_cache(maxsize=1)
def get_reference() -> Reference:
    """The package's reference data, loaded and validated on first call, then shared (cached)."""
    return load_reference()
