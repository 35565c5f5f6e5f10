"""The operation dashboard page (``/operations/{code}/dashboard``) and its panels as page fragments.

Filters live in the URL (a GET form). ``?format=json`` returns the page's data (every panel); each
panel's fragment, ``/operations/{code}/dashboard/{panel}``, answers with HTML (for htmx), JSON
(``?format=json``) or CSV (``?format=csv``). Charts are drawn in the browser by ``/static/dashboard.js``
with the vendored plotly.js, from the JSON data blocks of the page (no inline script: CSP ``script-src
'self'``).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Annotated, Literal
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from stopnet.core.errors import InvalidInput, NotFound
from stopnet.db.models import Operation
from stopnet.operations.service import get_operation
from stopnet.reference import get_reference
from stopnet.reporting.schemas import CaseFilters
from stopnet.sharing import service as sharing_service
from stopnet.web.deps import DB, READ, CurrentPrincipal
from stopnet.web.pages import render, wants_json
from stopnet.web.templating import templates

from . import service
from .api import PANEL_TITLES, RecentDays, csv_response, freshness_headers, json_response, parse_filters
from .schemas import PANELS, DashboardFilters, panel_attr

router = APIRouter(include_in_schema=False)

PLOTLY_JS = "vendor/plotly-4.1.1-stopnet.min.js"  # static files, given their hashed URL by the page
PLOTLY_CSS = "vendor/plotly-4.1.1.css"
TOPOJSON_URL = "/static/vendor/plotly-topojson/"
#: Panels drawn as a chart (key figures are tiles).
CHART_PANELS = tuple(p for p in PANELS if p != "key-figures")


def _query_without(request: Request, *drop: str) -> str:
    return urlencode([(k, v) for k, v in request.query_params.multi_items() if k not in drop and v != ""])


#: The filters that take several values, with the label the form gives them.
MULTI_FILTERS = {
    "region": "Region",
    "country": "Country",
    "commodity_group": "Goods",
    "commodity_code": "Category",
    "channel": "Channel",
}


#: The route filters, set by clicking a route (hidden fields of the form, shown as chips).
ROUTE_FILTERS = {"origin": "From (origin)", "destination": "To (destination)"}


def filter_options() -> dict[str, list[tuple[str, str]]]:
    """(code, name) of each multi-select filter's choices, as a person reads them: sorted by name."""
    ref = get_reference()

    def by_name(pairs: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
        return sorted(pairs, key=lambda p: p[1].casefold())

    return {
        "region": by_name((r.code, r.name) for r in ref.regions),
        "country": by_name((c.iso2, c.name) for c in ref.countries.values() if c.wco_member),
        "commodity_group": list(ref.groups.items()),
        "commodity_code": [
            (c.code, f"{ref.groups[c.group]}: {c.name}")
            for g in ref.groups
            for c in sorted(ref.commodities.values(), key=lambda c: c.name.casefold())
            if c.group == g
        ],
        "channel": by_name(ref.channels.items()),
    }


def filter_chips(filters: DashboardFilters) -> list[tuple[str, str]]:
    """The active filters in words ("Region: Europe, East and Southern Africa"), never in codes."""
    ref = get_reference()
    kinds = {"region": "regions", "country": "countries", "commodity_group": "groups",
             "commodity_code": "commodities", "channel": "channels"}  # fmt: skip
    chips: list[tuple[str, str]] = []
    if filters.last_days:
        chips.append(("Period", f"last {filters.last_days} day{'s' if filters.last_days > 1 else ''}"))
    if filters.date_from:
        chips.append(("From", str(filters.date_from)))
    if filters.date_to:
        chips.append(("To", str(filters.date_to)))
    for name, label in MULTI_FILTERS.items():
        codes = filters.codes(name)
        if codes:
            chips.append((label, ", ".join(ref.label(kinds[name], c) for c in codes)))
    for name, label in ROUTE_FILTERS.items():
        codes = filters.codes(name)
        if codes:
            chips.append((label, ", ".join(ref.label("countries", c) for c in codes)))
    if filters.is_ecommerce is not None:
        chips.append(("E-commerce", "e-commerce only" if filters.is_ecommerce else "other than e-commerce"))
    return chips


def cases_behind(op: Operation, filters: DashboardFilters) -> str:
    """The case list of the dashboard's filters (a relative period as its dates)."""
    f = filters.for_period(op.starts_on, op.ends_on, dt.datetime.now(dt.UTC).date())
    params = {k: v for k, v in f.active().items() if k in CASE_LIST_FILTERS}
    if "is_ecommerce" in params:
        params["is_ecommerce"] = "true" if f.is_ecommerce else "false"
    return f"/operations/{op.code}/cases" + (f"?{urlencode(params)}" if params else "")


#: The dashboard's filters that the case list takes too (the same names, the same codes).
CASE_LIST_FILTERS = frozenset(CaseFilters.model_fields) & frozenset(DashboardFilters.model_fields)


@router.get("/operations/{code}/dashboard", dependencies=[READ])
def dashboard_page(
    code: str,
    request: Request,
    db: DB,
    principal: CurrentPrincipal,
    recent_days: Annotated[int, Query(ge=2, le=14)] = service.DEFAULT_RECENT_DAYS,
) -> Response:
    op = get_operation(db, principal, code)
    filters, errors = parse_filters(request.query_params)
    cursor = sharing_service.feed_cursor(db)  # before the figures: the live feed replays what follows
    d = service.dashboard(db, principal, op, filters, recent_days)
    if wants_json(request):
        return json_response(d, freshness_headers(d.as_of, d.fresh))
    query = _query_without(request, "format")
    return render(
        request,
        "dashboard/page.html",
        {
            "op": op,
            "feed_cursor": cursor,
            "d": d,
            "data": d.model_dump(mode="json"),
            "errors": errors,
            "values": {k: v for k, v in request.query_params.items()},
            "chosen": {name: set(filters.codes(name)) for name in MULTI_FILTERS},
            "options": filter_options(),
            "filter_labels": MULTI_FILTERS,
            "chips": filter_chips(filters),
            "cases_behind": cases_behind(op, filters),
            "route_filters": {k: filters.codes(k) for k in ROUTE_FILTERS},
            "drill": True,
            "ref": get_reference(),
            "panels": CHART_PANELS,
            "titles": PANEL_TITLES,
            "query": query,
            "route_query": _query_without(request, "format", *ROUTE_FILTERS),
            "plotly_js": PLOTLY_JS,
            "plotly_css": PLOTLY_CSS,
            "topojson_url": TOPOJSON_URL,
        },
        principal=principal,
    )


@router.get("/operations/{code}/dashboard/{panel}", dependencies=[READ])
def panel_fragment(
    code: str,
    panel: str,
    request: Request,
    db: DB,
    principal: CurrentPrincipal,
    recent_days: RecentDays = service.DEFAULT_RECENT_DAYS,
    fmt: Annotated[Literal["html", "json", "csv"] | None, Query(alias="format")] = None,
) -> Response:
    """One panel: an HTML fragment (htmx swaps it in), or its JSON or CSV."""
    if panel not in PANELS:
        raise NotFound(f"no dashboard panel {panel!r}")
    op = get_operation(db, principal, code)
    filters, errors = parse_filters(request.query_params)
    if errors:
        raise InvalidInput(errors, "invalid dashboard filter")
    model, as_of, fresh = service.panel(db, principal, op, filters, panel, recent_days)
    headers = freshness_headers(as_of, fresh)
    if fmt == "csv":
        return csv_response(panel, op.code, model, headers)
    if fmt == "json" or (fmt is None and wants_json(request)):
        return json_response(model, headers)
    return render(
        request,
        "dashboard/_panel_fragment.html",
        {
            "op": op,
            "name": panel,
            "title": PANEL_TITLES[panel],
            "model": model,
            "data": model.model_dump(mode="json"),
            "query": _query_without(request, "format"),
            "route_query": _query_without(request, "format", *ROUTE_FILTERS),
            "attr": panel_attr(panel),
        },
        principal=principal,
    )


templates.env.globals["panel_attr"] = panel_attr
