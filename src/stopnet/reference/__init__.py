"""Reference data shipped with stopnet: WCO regions and Members, countries, the commodity taxonomy,
RILOs and the small code lists (channels, detection methods, currencies, ...).

>>> from stopnet.reference import get_reference
>>> ref = get_reference()
>>> ref.region_of("KE"), ref.label("channels", "POSTAL"), ref.has("commodities", "MED-WEIGHT")
('ESA', 'Postal', True)

The data lives in ``stopnet/reference/data/*.json`` and is described in ``docs/reference-data.md``.
"""

from __future__ import annotations

from .loader import (
    COMMODITY_GROUPS,
    KINDS,
    LIST_KINDS,
    Commodity,
    Country,
    FrozenDict,
    Reference,
    ReferenceDataError,
    Region,
    Rilo,
    get_reference,
    load_reference,
)

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
