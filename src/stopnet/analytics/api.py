"""REST API of the operation dashboard (``/api/v1/operations/{code}/dashboard``).

One route returns every panel; one route per panel returns that panel, as JSON or, with ``?format=csv``,
as a CSV file (cells that a spreadsheet would read as a formula are quoted). Every route takes the same
filters, applied to every panel, and answers only with what the caller may read.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel, ValidationError
from starlette.datastructures import QueryParams

from stopnet.core.errors import FieldError, InvalidInput
from stopnet.core.validation import field_errors
from stopnet.operations.service import get_operation
from stopnet.web.deps import DB, READ, CurrentPrincipal

from . import service
from .schemas import (
    PANELS,
    Brands,
    Breakdown,
    Countries,
    Dashboard,
    DashboardFilters,
    KeyFigures,
    Progression,
    Routes,
    Trends,
)

router = APIRouter(prefix="/api/v1", tags=["dashboard"])

FILTER_FIELDS = tuple(DashboardFilters.model_fields)
_MAX_LEN = {"date_from": 10, "date_to": 10, "region": 8, "country": 2, "commodity_group": 16,
            "commodity_code": 24, "channel": 24, "origin": 2, "destination": 2, "is_ecommerce": 5, "last_days": 3}  # fmt: skip
_MAX_CODES = 300  # codes one multi-select filter may hold (there are fewer countries)


def parse_filters(values: Mapping[str, str]) -> tuple[DashboardFilters, list[FieldError]]:
    """Filters from query parameters (empty values ignored; a filter given several times, or with
    comma-separated codes, keeps them all); the errors, if any, name each field."""
    given: dict[str, str] = {}
    for k in FILTER_FIELDS:
        raw = values.getlist(k) if isinstance(values, QueryParams) else [values.get(k) or ""]
        parts = [p.strip() for v in raw for p in v.split(",") if p.strip()]
        if parts:
            given[k] = ",".join(parts)
    errors = [
        FieldError(
            k,
            f"at most {_MAX_CODES} {k} codes" if "," in v else f"at most {_MAX_LEN[k]} characters",
            value=v[:40],
        )
        for k, v in given.items()
        if len(v.split(",")) > _MAX_CODES or any(len(p) > _MAX_LEN[k] for p in v.split(","))
    ]
    if errors:
        return DashboardFilters(), errors
    try:
        return DashboardFilters.model_validate(given), []
    except ValidationError as e:
        return DashboardFilters(), field_errors(e)


def dashboard_filters(request: Request) -> DashboardFilters:
    """The dashboard's filters from the query string; 422 naming the field when one is invalid."""
    filters, errors = parse_filters(request.query_params)
    if errors:
        raise InvalidInput(errors, "invalid dashboard filter")
    return filters


Filters = Annotated[DashboardFilters, Depends(dashboard_filters)]
RecentDays = Annotated[
    int, Query(ge=2, le=14, description="Days in the recent window of the trend test (the last days).")
]
Format = Annotated[Literal["json", "csv"], Query(alias="format")]


def freshness_headers(as_of: dt.datetime, fresh: bool) -> dict[str, str]:
    return {"X-Data-As-Of": as_of.isoformat(), "X-Data-Fresh": "true" if fresh else "false"}


def json_response(model: BaseModel, headers: dict[str, str]) -> Response:
    """A panel or the dashboard as JSON (serialised by pydantic-core: no detour through dicts)."""
    return Response(model.model_dump_json(), media_type="application/json", headers=headers)


def csv_response(name: str, code: str, model: BaseModel, headers: dict[str, str]) -> Response:
    body = service.panel_csv(name, model)
    filename = f"stopnet-{code.lower()}-{name}.csv"
    return Response(
        body,
        media_type="text/csv; charset=utf-8",
        headers={**headers, "Content-Disposition": f'attachment; filename="{filename}"'},
    )


@router.get(
    "/operations/{code}/dashboard",
    response_model=Dashboard,
    summary="Every panel of an operation's dashboard",
    dependencies=[READ],
)
def get_dashboard(
    code: str,
    filters: Filters,
    db: DB,
    principal: CurrentPrincipal,
    recent_days: RecentDays = service.DEFAULT_RECENT_DAYS,
) -> Response:
    """Key figures, daily progression, breakdowns, routes, brands and emerging trends, over the submitted
    and validated cases the caller may read, with the filters applied to every panel."""
    op = get_operation(db, principal, code)
    d = service.dashboard(db, principal, op, filters, recent_days)
    return json_response(d, freshness_headers(d.as_of, d.fresh))


PANEL_MODELS: dict[str, type[BaseModel]] = {
    "key-figures": KeyFigures,
    "progression": Progression,
    "regions": Breakdown,
    "countries": Countries,
    "commodities": Breakdown,
    "therapeutic": Breakdown,
    "transport-modes": Breakdown,
    "channels": Breakdown,
    "detection-methods": Breakdown,
    "routes": Routes,
    "brands": Brands,
    "trends": Trends,
}
PANEL_TITLES: dict[str, str] = {
    "key-figures": "Key figures",
    "progression": "Daily and cumulative progression",
    "regions": "By WCO region",
    "countries": "By reporting country",
    "commodities": "By commodity category",
    "therapeutic": "Medicines by therapeutic group",
    "transport-modes": "By mode of transport",
    "channels": "By traffic channel",
    "detection-methods": "By detection method",
    "routes": "Top routes, origin → destination",
    "brands": "Top brands",
    "trends": "Emerging trends",
}
assert tuple(PANEL_MODELS) == PANELS


def _panel_route(name: str) -> Callable[..., Any]:
    def endpoint(
        code: str,
        filters: Filters,
        db: DB,
        principal: CurrentPrincipal,
        recent_days: RecentDays = service.DEFAULT_RECENT_DAYS,
        fmt: Format = "json",
    ) -> Response:
        op = get_operation(db, principal, code)
        model, as_of, fresh = service.panel(db, principal, op, filters, name, recent_days)
        headers = freshness_headers(as_of, fresh)
        if fmt == "csv":
            return csv_response(name, op.code, model, headers)
        return json_response(model, headers)

    endpoint.__name__ = "dashboard_" + name.replace("-", "_")
    endpoint.__doc__ = (
        f"{PANEL_TITLES[name]}: one panel of the dashboard, with the same filters. "
        "`?format=csv` downloads it as CSV."
    )
    return endpoint


for _name in PANELS:
    router.add_api_route(
        f"/operations/{{code}}/dashboard/{_name}",
        _panel_route(_name),
        methods=["GET"],
        response_model=PANEL_MODELS[_name],
        summary=PANEL_TITLES[_name],
        responses={200: {"content": {"text/csv": {}}}},
        dependencies=[READ],
    )
