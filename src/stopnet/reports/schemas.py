"""Pydantic schemas of the reports (daily situation, end of operation) and of exports."""

from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import BaseModel, Field

from stopnet.analytics.schemas import Breakdown, BreakdownRow, DayPoint, KeyFigures, RouteRow, TrendRow

ExportKind = Literal["cases", "seizures"]
ExportFormat = Literal["csv", "xlsx", "json"]
EXPORT_KINDS: tuple[str, ...] = ("cases", "seizures")
EXPORT_FORMATS: tuple[str, ...] = ("csv", "xlsx", "json")


class DayChange(BaseModel):
    """The day's figure next to the previous day's."""

    figure: str
    label: str
    day: int
    previous_day: int
    change: int


class DailyReport(BaseModel):
    """The situation on one day of an operation: what was new that day and the running totals."""

    kind: Literal["daily"] = "daily"
    operation: str
    operation_name: str
    starts_on: dt.date
    ends_on: dt.date
    day: dt.date
    day_number: int = Field(description="Day of the operational phase (1 = its first day).")
    days_total: int
    generated_at: dt.datetime
    as_of: dt.datetime = Field(description="The figures include every case reported up to this time (UTC).")
    fresh: bool
    viewer: str = Field(description="The organisation whose view of the data the report shows.")
    new: KeyFigures = Field(description="Cases and seizures detected on the day.")
    running: KeyFigures = Field(description="Running totals from the first day of the operation to the day.")
    changes: list[DayChange] = Field(description="The day against the previous day.")
    progression: list[DayPoint] = Field(description="Every day from the start of the operation to the day.")
    new_categories: list[BreakdownRow] = Field(description="Commodity categories seized on the day.")
    new_regions: Breakdown
    running_categories: list[BreakdownRow] = Field(description="Top commodity categories to date.")
    running_regions: Breakdown
    running_channels: Breakdown
    trends: list[TrendRow] = Field(description="Items whose share of seizures rose in the last days.")
    trend_window: str
    audit_checkpoint: str | None = Field(
        default=None,
        description="The audit trail's signed head when the report was made (JSON; coordinators and "
        "administrators): keep it, and `stopnet audit verify --checkpoint` proves no entry before it was cut.",
    )


class ComparisonRow(BaseModel):
    figure: str
    label: str
    current: float | None
    previous: float | None
    change: float | None = Field(description="current - previous (percentage points for shares).")
    change_pct: float | None = Field(description="Relative change in percent (none for shares).")
    unit: Literal["count", "pieces", "tonnes", "share"]


class OperationFigures(BaseModel):
    """An operation's key figures as shown on its end-of-operation report."""

    operation: str
    operation_name: str
    starts_on: dt.date
    ends_on: dt.date
    administrations: int = Field(description="Customs administrations taking part (members).")
    participants: int
    key_figures: KeyFigures


class Comparison(BaseModel):
    current: OperationFigures
    previous: OperationFigures
    rows: list[ComparisonRow]


class FinalReport(BaseModel):
    """The end-of-operation report: key figures, breakdowns, findings and a comparison."""

    kind: Literal["final"] = "final"
    operation: str
    operation_name: str
    scope: str
    starts_on: dt.date
    ends_on: dt.date
    status: str
    generated_at: dt.datetime
    as_of: dt.datetime
    fresh: bool
    viewer: str
    figures: OperationFigures
    top_categories: list[BreakdownRow]
    therapeutic: list[BreakdownRow]
    regions: Breakdown
    channels: Breakdown
    transport_modes: Breakdown
    routes: list[RouteRow]
    progression: list[DayPoint]
    trends: list[TrendRow]
    trend_window: str
    findings: list[str]
    comparison: Comparison | None
    comparison_note: str = Field(default="", description="Why no comparison is shown, when there is none.")


class ExportInfo(BaseModel):
    """What an export holds (written to the audit trail, and the JSON export's header)."""

    operation: str
    export: ExportKind
    format: ExportFormat
    filters: dict[str, str]
    columns: list[str]
    rows: int
    generated_at: dt.datetime
