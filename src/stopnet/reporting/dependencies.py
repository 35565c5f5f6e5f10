"""Typed request dependencies of reporting, for its routes and the routes of other domains that list
cases (exports): the case filters of a query string."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from fastapi import Depends, Query

from stopnet.db.models import CaseStatus

from .schemas import CaseFilters


def case_filters(
    status: CaseStatus | None = None,
    reporting_org: Annotated[str | None, Query(max_length=32)] = None,
    country: Annotated[str | None, Query(max_length=600, description="ISO code(s), comma-separated.")] = None,
    region: Annotated[
        str | None, Query(max_length=100, description="WCO region code(s), comma-separated.")
    ] = None,
    commodity_code: Annotated[
        str | None, Query(max_length=1000, description="Commodity code(s), comma-separated.")
    ] = None,
    commodity_group: Annotated[
        str | None, Query(max_length=40, description="medicines, ipr, other; comma-separated.")
    ] = None,
    channel: Annotated[
        str | None, Query(max_length=200, description="Channel code(s), comma-separated.")
    ] = None,
    origin: Annotated[
        str | None, Query(max_length=600, description="Origin country code(s), comma-separated.")
    ] = None,
    destination: Annotated[
        str | None, Query(max_length=600, description="Destination country code(s), comma-separated.")
    ] = None,
    is_ecommerce: bool | None = None,
    date_from: dt.date | None = None,
    date_to: dt.date | None = None,
    q: Annotated[str | None, Query(max_length=100)] = None,
) -> CaseFilters:
    """Filters shared by the case list, its page and exports (empty values are ignored)."""
    values = {k: v for k, v in locals().items() if v is not None and v != ""}
    return CaseFilters.model_validate(values)


Filters = Annotated[CaseFilters, Depends(case_filters)]
