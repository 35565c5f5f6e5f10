"""Reference data: the shipped JSON files, their consistency, and the look-up API."""

from __future__ import annotations

import copy
import json
import pickle
import re
import subprocess
import sys
import tomllib
from importlib import resources
from pathlib import Path, PurePosixPath
from typing import Any

import pytest

from stopnet.reference import (
    KINDS,
    LIST_KINDS,
    Reference,
    ReferenceDataError,
    get_reference,
    load_reference,
)

ROOT = Path(__file__).resolve().parents[2]
DATA_FILES = {"regions", "countries", "commodities", "rilos", *LIST_KINDS}
MEMBER_RANGE = (183, 190)  # documented in docs/reference-data.md


@pytest.fixture(scope="module")
def ref() -> Reference:
    return get_reference()


def _data_dir() -> Any:
    return resources.files("stopnet.reference").joinpath("data")


def _raw(name: str) -> dict[str, Any]:
    return json.loads(_data_dir().joinpath(f"{name}.json").read_text(encoding="utf-8"))


# ---------------------------------------------------------------------------- regions and countries


def test_six_wco_regions(ref: Reference) -> None:
    assert [r.code for r in ref.regions] == ["AP", "EUR", "ESA", "WCA", "MENA", "AMS"]
    names = {r.code: r.name for r in ref.regions}
    assert names["AP"] == "Far East, South and South East Asia, Australasia and the Pacific Islands"
    assert names["MENA"] == "North of Africa, Near and Middle East"
    assert names["AMS"] == "South America, North America, Central America and the Caribbean"
    assert ref.region("WCA").name == "West and Central Africa"


def test_every_member_is_a_country(ref: Reference) -> None:
    for region in ref.regions:
        assert region.members, region.code
        assert list(region.members) == sorted(region.members)
        for iso2 in region.members:
            assert iso2 in ref.countries, f"{region.code}: {iso2} is not in countries"


def test_no_member_in_two_regions() -> None:
    # Read the file itself: the loader would refuse such data, so check the source too.
    seen: dict[str, str] = {}
    for region in _raw("regions")["regions"]:
        for iso2 in region["members"]:
            assert iso2 not in seen, f"{iso2} in {seen.get(iso2)} and {region['code']}"
            seen[iso2] = region["code"]
    assert len(seen) == _raw("regions")["member_count"]


def test_member_count_in_documented_range(ref: Reference) -> None:
    total = sum(len(r.members) for r in ref.regions)
    assert total == len(ref.wco_members)
    assert MEMBER_RANGE[0] <= total <= MEMBER_RANGE[1]
    counts = {r.code: len(r.members) for r in ref.regions}
    # the per-region counts given in the documentation
    assert counts == {"AP": 35, "EUR": 52, "ESA": 24, "WCA": 24, "MENA": 18, "AMS": 34}
    doc = ROOT / "docs" / "reference-data.md"
    if doc.is_file():
        assert f"**{total}**" in doc.read_text(encoding="utf-8"), "the docs must state the member count"


@pytest.mark.parametrize(
    ("iso2", "region"),
    [
        ("RU", "EUR"),
        ("IL", "EUR"),
        ("TR", "EUR"),
        ("KZ", "EUR"),
        ("UZ", "EUR"),
        ("AZ", "EUR"),
        ("XK", "EUR"),
        ("EG", "MENA"),
        ("MA", "MENA"),
        ("SA", "MENA"),
        ("IQ", "MENA"),
        ("SD", "MENA"),
        ("PS", "MENA"),
        ("IR", "AP"),
        ("HK", "AP"),
        ("MO", "AP"),
        ("PW", "AP"),
        ("CW", "AMS"),
        ("VC", "AMS"),
        ("US", "AMS"),
        ("KE", "ESA"),
        ("SS", "ESA"),
        ("MR", "WCA"),
        ("GQ", "WCA"),
    ],
)
def test_region_of_members(ref: Reference, iso2: str, region: str) -> None:
    assert ref.region_of(iso2) == region
    assert ref.countries[iso2].wco_member is True


@pytest.mark.parametrize("iso2", ["TW", "KP", "LI", "MC", "SM", "VA", "GL", "KI", "EU", "ZZ", "fr", ""])
def test_region_of_non_members(ref: Reference, iso2: str) -> None:
    assert ref.region_of(iso2) is None
    if iso2 in ref.countries:
        assert ref.countries[iso2].wco_member is False


def test_countries_are_iso_3166(ref: Reference) -> None:
    assert len(ref.countries) == 250  # 249 ISO 3166-1 entries + XK (Kosovo, user-assigned)
    assert list(ref.countries) == sorted(ref.countries)
    iso3 = set()
    for iso2, c in ref.countries.items():
        assert c.iso2 == iso2
        assert re.fullmatch(r"[A-Z]{2}", c.iso2) and re.fullmatch(r"[A-Z]{3}", c.iso3)
        assert c.name and c.name == c.name.strip()
        iso3.add(c.iso3)
        assert (c.region_code is not None) == c.wco_member
        if c.region_code is not None:
            assert iso2 in ref.region(c.region_code).members
    assert len(iso3) == len(ref.countries)
    assert ref.countries["FR"].iso3 == "FRA" and ref.countries["FR"].name == "France"
    assert ref.countries["CW"].iso3 == "CUW"
    assert ref.countries["XK"].iso3 == "XKX"


# ---------------------------------------------------------------------------- commodities

EXPECTED_COMMODITIES = {
    "medicines": [
        "MED-NERV", "MED-ANTIINF", "MED-VACC", "MED-CARDIO", "MED-ALIM", "MED-WEIGHT", "MED-GENURO",
        "MED-MUSC", "MED-RESP", "MED-ONCO", "MED-DERM", "MED-HORM", "MED-BLOOD", "MED-ANTIPAR",
        "MED-SENS", "MED-VAR", "MED-DEVICE", "MED-OTHER",
    ],
    "ipr": [
        "IPR-CLOTH", "IPR-FOOT", "IPR-BAGS", "IPR-WATCH", "IPR-ELEC", "IPR-PHONE", "IPR-TOYS",
        "IPR-TRANSP", "IPR-SPORT", "IPR-EYEW", "IPR-MEDIA", "IPR-PERF", "IPR-OTHER",
    ],
    "other": [
        "OTH-COSM", "OTH-FOOD", "OTH-ALCO", "OTH-TOBAC", "OTH-SUPPL", "OTH-HOUSE", "OTH-CHEM", "OTH-OTHER",
    ],
}  # fmt: skip


def test_groups(ref: Reference) -> None:
    assert ref.groups == {
        "medicines": "Counterfeit medicines",
        "ipr": "IPR-infringing goods",
        "other": "Other counterfeit goods",
    }


def test_commodity_codes_and_groups(ref: Reference) -> None:
    assert list(ref.commodities) == [c for codes in EXPECTED_COMMODITIES.values() for c in codes]
    prefix = {"medicines": "MED-", "ipr": "IPR-", "other": "OTH-"}
    for code, c in ref.commodities.items():
        assert c.code == code
        assert c.group in ref.groups
        assert code.startswith(prefix[c.group])
        assert c.name and c.description
        assert c.hs_prefixes
        for hs in c.hs_prefixes:
            assert re.fullmatch(r"\d{2}|\d{4}|\d{6}", hs), (code, hs)
        if c.group != "medicines":
            assert c.atc is None and c.atc_codes == ()


@pytest.mark.parametrize(
    ("code", "name_part", "atc"),
    [
        ("MED-NERV", "nervous system", "N"),
        ("MED-ANTIINF", "anti-infectives", "J"),
        ("MED-WEIGHT", "weight-loss", "A08"),
        ("MED-VACC", "vaccines", "J07"),
        ("MED-DEVICE", "medical devices", None),
        ("MED-CARDIO", "cardiovascular", "C"),
        ("MED-ONCO", "antineoplastic", "L"),
    ],
)
def test_medicines_therapeutic_groups(ref: Reference, code: str, name_part: str, atc: str | None) -> None:
    c = ref.commodities[code]
    assert c.group == "medicines"
    assert name_part in c.name.lower()
    assert c.atc == atc
    assert c.atc_codes[:1] == (() if atc is None else (atc,))


def test_weight_loss_covers_glp1(ref: Reference) -> None:
    assert "A10BJ" in ref.commodities["MED-WEIGHT"].atc_codes
    assert "GLP-1" in ref.commodities["MED-WEIGHT"].description


@pytest.mark.parametrize(
    ("atc", "expected"),
    [
        ("A10BJ06", "MED-WEIGHT"),  # semaglutide
        ("A08AB01", "MED-WEIGHT"),  # orlistat
        ("A10AB01", "MED-ALIM"),  # insulin (human)
        ("J07BX03", "MED-VACC"),  # covid-19 vaccines
        ("J01CA04", "MED-ANTIINF"),  # amoxicillin
        ("N02AX02", "MED-NERV"),  # tramadol
        ("G04BE03", "MED-GENURO"),  # sildenafil
        ("p01bf01", "MED-ANTIPAR"),  # artemether, lower case accepted here
        ("Z99", None),
        ("", None),
    ],
)
def test_commodity_for_atc(ref: Reference, atc: str, expected: str | None) -> None:
    found = ref.commodity_for_atc(atc)
    assert (found.code if found else None) == expected


# ---------------------------------------------------------------------------- simple lists


@pytest.mark.parametrize(
    ("kind", "codes"),
    [
        ("transport_modes", ["AIR", "SEA", "ROAD", "RAIL", "MULTIMODAL", "UNKNOWN"]),
        ("channels", ["POSTAL", "EXPRESS", "AIR_CARGO", "SEA_CARGO", "ROAD_CARGO", "RAIL_CARGO", "PASSENGER", "OTHER"]),
        (
            "detection_methods",
            [
                "RISK_PROFILE", "XRAY", "INTELLIGENCE", "RANDOM", "RIGHTS_HOLDER_ALERT", "PLATFORM_NOTICE",
                "DOCUMENT_CHECK", "PHYSICAL_INSPECTION", "DETECTOR_DOG", "OTHER",
            ],
        ),
        (
            "infringement_types",
            ["TRADEMARK", "COPYRIGHT", "DESIGN", "PATENT", "GEOGRAPHICAL_INDICATION", "HEALTH_REGULATION", "OTHER"],
        ),
        ("natures", ["COUNTERFEIT", "FALSIFIED", "SUBSTANDARD", "UNLICENSED"]),
        (
            "concealments",
            [
                "NONE", "MISDECLARED", "UNDERVALUED", "HIDDEN_IN_GOODS", "SPLIT_CONSIGNMENT",
                "DECOY_PACKAGING", "PERSONAL_EFFECTS", "OTHER",
            ],
        ),
        ("units", ["PCS", "KG", "L", "PACK", "TABLET"]),
        ("org_kinds", ["CUSTOMS", "COORDINATOR", "RILO", "PARTNER", "RIGHTS_HOLDER", "PLATFORM"]),
        ("platform_types", ["MARKETPLACE", "SOCIAL_MEDIA", "WEBSITE", "MESSAGING", "UNKNOWN"]),
    ],
)  # fmt: skip
def test_code_lists(ref: Reference, kind: str, codes: list[str]) -> None:
    table = getattr(ref, kind)
    assert list(table) == codes  # exact codes, in file order
    assert all(isinstance(v, str) and v.strip() for v in table.values())
    assert ref.codes(kind) == tuple(codes)


def test_list_labels(ref: Reference) -> None:
    assert ref.channels["POSTAL"] == "Postal"
    assert ref.channels["EXPRESS"] == "Express courier"
    assert ref.channels["PASSENGER"] == "Passenger / traveller"
    assert ref.org_kinds["CUSTOMS"] == "Customs administration"
    assert ref.org_kinds["RILO"] == "Regional Intelligence Liaison Office"
    assert ref.units["L"] == "Litres"
    assert "medical product" in (ref.description("infringement_types", "HEALTH_REGULATION") or "")


def test_currencies(ref: Reference) -> None:
    assert len(ref.currencies) >= 40
    required = {"EUR", "USD", "GBP", "CNY", "JPY", "KRW", "INR", "BRL", "ZAR", "NGN", "KES", "AED", "SAR"}
    assert required | {"CHF"} <= set(ref.currencies)
    assert all(re.fullmatch(r"[A-Z]{3}", c) for c in ref.currencies)
    # funds, precious metals, testing and withdrawn codes are not currencies to report values in
    for code in ["XAU", "XTS", "XXX", "USN", "HRK", "SLL"]:
        assert code not in ref.currencies, code
    assert ref.currencies["EUR"] == "Euro"


# ---------------------------------------------------------------------------- RILOs


def test_rilos(ref: Reference) -> None:
    assert 11 <= len(ref.rilos) <= 12
    codes = [r.code for r in ref.rilos]
    assert len(set(codes)) == len(codes)
    assert {r.region_code for r in ref.rilos} == {r.code for r in ref.regions}  # every region has one
    for r in ref.rilos:
        assert r.code.startswith("RILO-")
        assert ref.region_of(r.country) == r.region_code, r
    we = ref.rilo("RILO-WE")
    assert (we.city, we.country, we.region_code) == ("Cologne", "DE", "EUR")
    ap = ref.rilo("RILO-AP")
    assert (ap.city, ap.country, ap.region_code) == ("Seoul", "KR", "AP")
    assert ref.rilo("RILO-ESA").country == "KE"


# ---------------------------------------------------------------------------- has / label


@pytest.mark.parametrize(
    ("kind", "code"),
    [
        ("channels", "POSTAL"),
        ("currencies", "EUR"),
        ("countries", "FR"),
        ("countries", "XK"),
        ("regions", "MENA"),
        ("commodities", "MED-WEIGHT"),
        ("groups", "medicines"),
        ("rilos", "RILO-WE"),
        ("natures", "FALSIFIED"),
    ],
)
def test_has_known(ref: Reference, kind: str, code: str) -> None:
    assert ref.has(kind, code)
    assert ref.label(kind, code)


@pytest.mark.parametrize(
    ("kind", "code"),
    [
        ("channels", "postal"),  # codes are upper case, compared exactly
        ("channels", "TELEPORT"),
        ("channels", ""),
        ("channels", None),
        ("currencies", "EURO"),
        ("currencies", "XAU"),
        ("countries", "EU"),
        ("countries", "FRA"),
        ("regions", "EUROPE"),
        ("commodities", "MED-XYZ"),
        ("commodities", "medicines"),
        ("groups", "MEDICINES"),
        ("rilos", "RILO-XX"),
        ("units", "TONNE"),
    ],
)
def test_has_rejects_unknown(ref: Reference, kind: str, code: str | None) -> None:
    assert ref.has(kind, code) is False
    if code is not None:
        with pytest.raises(KeyError):
            ref.label(kind, code)


def test_label_values(ref: Reference) -> None:
    assert ref.label("channels", "POSTAL") == "Postal"
    assert ref.label("countries", "DE") == "Germany"
    assert ref.label("regions", "EUR") == "Europe"
    assert ref.label("commodities", "IPR-FOOT") == "Footwear"
    assert ref.label("groups", "ipr") == "IPR-infringing goods"
    assert ref.label("rilos", "RILO-WE") == "RILO Western Europe"
    assert ref.label("channels", None) == ""


def test_unknown_kind(ref: Reference) -> None:
    with pytest.raises(ValueError, match="unknown reference kind"):
        ref.has("channel", "POSTAL")
    with pytest.raises(ValueError):
        ref.label("colours", "RED")
    for kind in KINDS:
        assert ref.codes(kind), kind


# ---------------------------------------------------------------------------- packaging, caching, immutability


def test_data_files_ship_in_the_package() -> None:
    data = _data_dir()
    assert data.is_dir()
    names = {PurePosixPath(e.name).stem for e in data.iterdir() if e.name.endswith(".json")}
    assert names == DATA_FILES  # every file is loaded, none is forgotten
    # pyproject's package-data must carry them into wheels
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    patterns = pyproject["tool"]["setuptools"]["package-data"]["stopnet"]
    for name in names:
        path = PurePosixPath(f"reference/data/{name}.json")
        assert any(path.match(p.replace("**/", "")) or path.match(p) for p in patterns), name


def test_loads_from_package_resources(ref: Reference) -> None:
    fresh = load_reference()
    assert fresh is not ref
    assert fresh.countries == ref.countries and fresh.regions == ref.regions
    assert load_reference(_data_dir()).channels == ref.channels


def test_get_reference_is_cached() -> None:
    assert get_reference() is get_reference()


def test_import_reads_nothing() -> None:
    code = "import stopnet.reference as r; print(r.get_reference.cache_info().currsize)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "0"


def test_read_only(ref: Reference) -> None:
    with pytest.raises(TypeError):
        ref.channels["NEW"] = "New"
    with pytest.raises(TypeError):
        ref.countries.pop("FR")
    with pytest.raises(TypeError):
        ref.groups.update({"x": "y"})
    with pytest.raises(AttributeError):
        ref.regions = ()
    assert "NEW" not in ref.channels
    # still a plain dict to serialisers, pickle and copy
    assert json.loads(json.dumps(ref.channels)) == dict(ref.channels)
    assert pickle.loads(pickle.dumps(ref.units)) == ref.units  # noqa: S301 (our own bytes)
    copied = copy.deepcopy(ref.units)
    assert copied == ref.units
    mutable = ref.units.copy()
    mutable["T"] = "Tonnes"
    assert "T" not in ref.units


# ---------------------------------------------------------------------------- validation of broken data


def _copy_data(target: Path) -> Path:
    target.mkdir()
    for entry in _data_dir().iterdir():  # a Traversable: works from a wheel or a zip as well
        (target / entry.name).write_bytes(entry.read_bytes())
    return target


def _broken_copy(tmp_path: Path, name: str, change: Any) -> Path:
    target = _copy_data(tmp_path / "data")
    path = target / f"{name}.json"
    data = json.loads(path.read_text(encoding="utf-8"))
    change(data)
    path.write_text(json.dumps(data), encoding="utf-8")
    return target


def _region(data: dict[str, Any], code: str) -> dict[str, Any]:
    return next(r for r in data["regions"] if r["code"] == code)


BREAKAGES = [
    ("regions", lambda d: _region(d, "EUR")["members"].append("EG"), "member of both"),
    ("regions", lambda d: _region(d, "AMS")["members"].append("QQ"), "not a country code"),
    ("regions", lambda d: d.update(member_count=1), "member_count"),
    ("regions", lambda d: d["regions"].append(dict(d["regions"][0], members=["AQ"])), "duplicate region"),
    ("commodities", lambda d: d["commodities"][0].update(group="drugs"), "not in groups"),
    ("commodities", lambda d: d["commodities"][0].update(hs_prefixes=["300"]), "2, 4 or 6 digits"),
    ("commodities", lambda d: d["commodities"][0].update(atc="N2"), "ATC"),
    ("commodities", lambda d: d["commodities"].append(d["commodities"][0]), "duplicate commodity"),
    ("commodities", lambda d: d["commodities"][0].update(colour="red"), "unknown field"),
    ("countries", lambda d: d["countries"].append(d["countries"][0]), "duplicate iso2"),
    ("countries", lambda d: d["countries"][0].update(iso2="ad"), "not a valid code"),
    ("rilos", lambda d: d["rilos"][0].update(region_code="EUR"), "not a member of region"),
    ("channels", lambda d: d["items"].append({"code": "POSTAL", "label": "Again"}), "duplicate code"),
    ("channels", lambda d: d["items"].append({"code": "bad code", "label": "x"}), "not a valid code"),
    ("currencies", lambda d: d["items"].append({"code": "EURO", "label": "x"}), "not a valid code"),
    ("units", lambda d: d.update(items=[]), "non-empty list"),
]


@pytest.mark.parametrize(("name", "change", "message"), BREAKAGES)
def test_broken_data_is_rejected(tmp_path: Path, name: str, change: Any, message: str) -> None:
    root = _broken_copy(tmp_path, name, change)
    with pytest.raises(ReferenceDataError, match=message) as info:
        load_reference(root)
    assert f"{name}.json" in str(info.value)


def test_missing_or_invalid_file(tmp_path: Path) -> None:
    root = _broken_copy(tmp_path, "units", lambda d: None)
    (root / "units.json").unlink()
    with pytest.raises(ReferenceDataError, match=r"units\.json is missing"):
        load_reference(root)
    (root / "units.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(ReferenceDataError, match="not valid UTF-8 JSON"):
        load_reference(root)
    # the unbroken copy loads
    (root / "units.json").write_bytes(_data_dir().joinpath("units.json").read_bytes())
    assert load_reference(root).units == get_reference().units
