"""Pydantic schemas of the operation dashboard: its filters and one model per panel."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, model_validator

from stopnet.core.validation import rule_error
from stopnet.reference import COMMODITY_GROUPS, get_reference

#: Every panel of the dashboard, in page order (the ``{panel}`` of ``/api/v1/operations/{code}/dashboard/{panel}``).
PANELS: tuple[str, ...] = (
    "key-figures",
    "progression",
    "regions",
    "countries",
    "commodities",
    "therapeutic",
    "transport-modes",
    "channels",
    "detection-methods",
    "routes",
    "brands",
    "trends",
)
PanelName = Literal[
    "key-figures",
    "progression",
    "regions",
    "countries",
    "commodities",
    "therapeutic",
    "transport-modes",
    "channels",
    "detection-methods",
    "routes",
    "brands",
    "trends",
]


def _blank_to_none(value: Any) -> Any:
    if isinstance(value, str) and not value.strip():
        return None
    return value


def _code(kind: str, label: str) -> AfterValidator:
    """One code or several, comma-separated ("EUR,ESA"): each checked, kept sorted and unique."""

    def check(value: str | None) -> str | None:
        if value is None:
            return None
        codes = sorted({v.strip().upper() for v in value.split(",") if v.strip()})
        unknown = [c for c in codes if not get_reference().has(kind, c)]
        if unknown:
            raise ValueError(f"unknown {label} code {', '.join(repr(c) for c in unknown)}")
        return ",".join(codes) or None

    return AfterValidator(check)


def _group(value: str | None) -> str | None:
    if value is None:
        return None
    groups = sorted({v.strip().lower() for v in value.split(",") if v.strip()})
    unknown = [g for g in groups if g not in COMMODITY_GROUPS]
    if unknown:
        raise ValueError(
            f"unknown commodity group {', '.join(repr(g) for g in unknown)} (one of {', '.join(COMMODITY_GROUPS)})"
        )
    return ",".join(groups) or None


Blank = BeforeValidator(_blank_to_none)


class DashboardFilters(BaseModel):
    """Filters of every panel (empty values are ignored). Seizure filters (commodity group or category)
    keep the seizures of that kind, and count a case when it holds at least one of them."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    date_from: Annotated[dt.date | None, Blank] = None
    date_to: Annotated[dt.date | None, Blank] = None
    region: Annotated[str | None, Blank, _code("regions", "WCO region")] = None
    country: Annotated[str | None, Blank, _code("countries", "country")] = Field(
        default=None, description="Reporting country (ISO 3166 alpha-2)."
    )
    commodity_group: Annotated[str | None, Blank, AfterValidator(_group)] = None
    commodity_code: Annotated[str | None, Blank, _code("commodities", "commodity")] = None
    channel: Annotated[str | None, Blank, _code("channels", "channel")] = None
    origin: Annotated[str | None, Blank, _code("countries", "origin country")] = Field(
        default=None,
        description="Country of origin of the goods (ISO 3166 alpha-2); with destination, a route.",
    )
    destination: Annotated[str | None, Blank, _code("countries", "destination country")] = None
    is_ecommerce: Annotated[bool | None, Blank] = None
    last_days: Annotated[int | None, Blank, Field(ge=1, le=366)] = Field(
        default=None,
        description="The last N days of the operation to date (its last N days once it is over); instead "
        "of date_from and date_to.",
    )

    @model_validator(mode="after")
    def _dates_in_order(self) -> DashboardFilters:
        if self.date_from and self.date_to and self.date_from > self.date_to:
            raise rule_error("DashboardFilters", "date_from", "dates_reversed", "after the end date (To)")
        if self.last_days and (self.date_from or self.date_to):
            raise rule_error(
                "DashboardFilters",
                "last_days",
                "period_and_dates",
                "give a period or dates (From, To), not both",
            )
        return self

    def codes(self, name: str) -> list[str]:
        """The codes of a filter that takes several (region, country, commodity_group, commodity_code,
        channel); empty when it is not set."""
        value = getattr(self, name)
        return value.split(",") if value else []

    def for_period(self, op_starts: dt.date, op_ends: dt.date, today: dt.date) -> DashboardFilters:
        """``last_days`` as dates: the last N days up to today, or to the operation's last day once it is
        over (never before its first day)."""
        if not self.last_days:
            return self
        end = max(min(today, op_ends), op_starts)
        start = max(op_starts, end - dt.timedelta(days=self.last_days - 1))
        return self.model_copy(update={"date_from": start, "date_to": end, "last_days": None})

    def active(self) -> dict[str, Any]:
        """The filters that are set, as query parameters."""
        return {k: v for k, v in self.model_dump(mode="json").items() if v is not None}


# ---------------------------------------------------------------------------------------------- panels


class GroupFigures(BaseModel):
    group: str
    label: str
    seizures: int
    pieces: int
    weight_kg: float
    tonnes: float


class KeyFigures(BaseModel):
    """The headline figures, as in the WCO's published key-figures pages."""

    cases: int
    seizures: int
    reporting_administrations: int = Field(description="Administrations that reported at least one case.")
    regions_reporting: int
    regions_total: int
    pieces: int
    weight_kg: float
    tonnes: float
    groups: list[GroupFigures]
    ecommerce_cases: int
    ecommerce_seizures: int
    ecommerce_share: float | None = Field(description="E-commerce seizures / all seizures (0–1).")
    ecommerce_regions: int = Field(description="Regions that reported at least one e-commerce case.")
    first_day: dt.date | None
    last_day: dt.date | None


class DayPoint(BaseModel):
    day: dt.date
    cases: int
    seizures: int
    pieces: int
    ecommerce_seizures: int
    cumulative_cases: int
    cumulative_seizures: int
    cumulative_pieces: int


class Progression(BaseModel):
    days: list[DayPoint]


class BreakdownRow(BaseModel):
    code: str
    label: str
    cases: int | None = Field(default=None, description="Cases (case-level breakdowns only).")
    seizures: int
    pieces: int
    weight_kg: float
    ecommerce_seizures: int | None = None
    share: float = Field(description="Share of the panel's seizures (0–1).")


class Breakdown(BaseModel):
    dimension: str
    total_seizures: int
    rows: list[BreakdownRow]


class CountryRow(BreakdownRow):
    iso3: str
    region_code: str | None


class Countries(BaseModel):
    dimension: Literal["reporting_country"] = "reporting_country"
    total_seizures: int
    rows: list[CountryRow]


class RouteRow(BaseModel):
    origin: str | None
    origin_label: str
    destination: str | None
    destination_label: str
    cases: int
    seizures: int
    pieces: int
    weight_kg: float


class Routes(BaseModel):
    total_routes: int
    rows: list[RouteRow] = Field(description="The top routes origin → destination, by seizures.")


class BrandRow(BaseModel):
    brand: str
    seizures: int
    pieces: int
    weight_kg: float


class Brands(BaseModel):
    total_brands: int
    rows: list[BrandRow]


class TrendRow(BaseModel):
    dimension: Literal["commodity", "route", "brand", "channel"]
    code: str
    label: str
    before: int = Field(description="Seizures in the baseline window.")
    after: int = Field(description="Seizures in the recent window.")
    share_before: float
    share_after: float
    rate_ratio: float = Field(description="Share after / share before (0.5 added to empty counts).")
    p_value: float = Field(description="One-sided exact conditional binomial test of a rise.")
    q_value: float = Field(description="Benjamini–Hochberg adjusted p-value over every item tested.")
    flagged: bool


class Trends(BaseModel):
    test: str
    baseline_from: dt.date | None
    baseline_to: dt.date | None
    recent_from: dt.date | None
    recent_to: dt.date | None
    total_before: int
    total_after: int
    tested: int
    alpha: float
    min_ratio: float
    rows: list[TrendRow] = Field(description="Flagged items first (by q-value), then the closest others.")


class Dashboard(BaseModel):
    """Every panel of one operation's dashboard, for one viewer and one set of filters."""

    operation: str
    operation_name: str
    starts_on: dt.date
    ends_on: dt.date
    filters: DashboardFilters
    recent_days: int = Field(description="Days in the recent window of the trend test.")
    as_of: dt.datetime = Field(description="The figures include every case reported up to this time (UTC).")
    fresh: bool = Field(description="False while newer reports are being added up (figures of as_of shown).")
    key_figures: KeyFigures
    progression: Progression
    regions: Breakdown
    countries: Countries
    commodities: Breakdown
    therapeutic: Breakdown
    transport_modes: Breakdown
    channels: Breakdown
    detection_methods: Breakdown
    routes: Routes
    brands: Brands
    trends: Trends


def panel_attr(panel: str) -> str:
    """The :class:`Dashboard` attribute of a panel name (``key-figures`` -> ``key_figures``)."""
    return panel.replace("-", "_")
