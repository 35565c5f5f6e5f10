"""Reference data over the API (codes and labels used by forms, imports and national systems)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from stopnet.web.deps import PUBLIC

from . import get_reference

router = APIRouter(prefix="/api/v1/reference", tags=["reference"])

LISTS = (
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


@router.get("", dependencies=[PUBLIC])
def reference() -> dict[str, Any]:
    """Every code list: regions with their members, countries, the commodity taxonomy and the small lists."""
    ref = get_reference()
    return {
        "regions": [{"code": r.code, "name": r.name, "members": list(r.members)} for r in ref.regions],
        "countries": [
            {
                "iso2": c.iso2,
                "iso3": c.iso3,
                "name": c.name,
                "region": c.region_code,
                "wco_member": c.wco_member,
            }
            for c in ref.countries.values()
        ],
        "groups": ref.groups,
        "commodities": [
            {
                "code": c.code,
                "name": c.name,
                "group": c.group,
                "atc": c.atc,
                "hs_prefixes": list(c.hs_prefixes),
            }
            for c in ref.commodities.values()
        ],
        **{name: getattr(ref, name) for name in LISTS},
    }
