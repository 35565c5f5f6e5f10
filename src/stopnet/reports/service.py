"""Daily situation reports and end-of-operation reports.

Every figure comes from the dashboard (:func:`stopnet.analytics.service.dashboard`) for the acting
principal: a report shows exactly what that principal's dashboard shows for the same days (only submitted
and validated cases, only those ``policy.case_read_clause`` lets it read). Nothing is counted here.
"""

from __future__ import annotations

import datetime as dt
from typing import Literal

from sqlalchemy.orm import Session

from stopnet.access import policy
from stopnet.access.principal import Principal
from stopnet.analytics import service as analytics
from stopnet.analytics.schemas import Dashboard, DashboardFilters, TrendRow, Trends
from stopnet.audit import service as audit
from stopnet.core.errors import FieldError, InvalidInput, NotFound
from stopnet.db.models import Operation
from stopnet.operations import service as operations

from .schemas import (
    Comparison,
    ComparisonRow,
    DailyReport,
    DayChange,
    FinalReport,
    OperationFigures,
)

Unit = Literal["count", "pieces", "tonnes", "share"]
TOP_CATEGORIES = 10
TOP_ROUTES = 10


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(microsecond=0)


def _flagged(t: Trends) -> list[TrendRow]:
    return [r for r in t.rows if r.flagged]


def _trend_window(t: Trends) -> str:
    if t.recent_from is None or t.baseline_from is None:
        return "not enough days yet for a trend test"
    return (
        f"seizures of {t.recent_from:%d %b} – {t.recent_to:%d %b %Y} against {t.baseline_from:%d %b} – "
        f"{t.baseline_to:%d %b %Y}"
    )


def default_day(op: Operation, today: dt.date | None = None) -> dt.date:
    """The latest day of the operational phase that has begun (today, clamped to the operation's dates)."""
    today = today or dt.datetime.now(dt.UTC).date()
    return max(op.starts_on, min(op.ends_on, today))


# ---------------------------------------------------------------------------------------------- daily


def daily_report(
    session: Session, principal: Principal, op: Operation, day: dt.date | None = None
) -> DailyReport:
    """The situation on ``day`` (default: today, within the operation's dates) for ``principal``."""
    policy.require_read(principal)
    day = day or default_day(op)
    if not op.starts_on <= day <= op.ends_on:
        raise InvalidInput(
            [
                FieldError(
                    "date",
                    f"must fall within the operation ({op.starts_on.isoformat()} – {op.ends_on.isoformat()})",
                    value=day.isoformat(),
                )
            ],
            "invalid report date",
        )
    new = analytics.dashboard(session, principal, op, DashboardFilters(date_from=day, date_to=day), today=day)
    running = analytics.dashboard(session, principal, op, DashboardFilters(date_to=day), today=day)
    points = running.progression.days
    today_point = points[-1]
    previous = points[-2] if len(points) > 1 else None
    changes = [
        DayChange(
            figure=name,
            label=label,
            day=getattr(today_point, name),
            previous_day=getattr(previous, name) if previous else 0,
            change=getattr(today_point, name) - (getattr(previous, name) if previous else 0),
        )
        for name, label in (
            ("cases", "Cases"),
            ("seizures", "Seizures"),
            ("ecommerce_seizures", "E-commerce seizures"),
            ("pieces", "Pieces"),
        )
    ]
    return DailyReport(
        operation=op.code,
        operation_name=op.name,
        starts_on=op.starts_on,
        ends_on=op.ends_on,
        day=day,
        day_number=(day - op.starts_on).days + 1,
        days_total=(op.ends_on - op.starts_on).days + 1,
        generated_at=_now(),
        as_of=min(new.as_of, running.as_of),
        fresh=new.fresh and running.fresh,
        viewer=principal.org_code,
        new=new.key_figures,
        running=running.key_figures,
        changes=changes,
        progression=points,
        new_categories=[r for r in new.commodities.rows if r.seizures][:TOP_CATEGORIES],
        new_regions=new.regions,
        running_categories=[r for r in running.commodities.rows if r.seizures][:TOP_CATEGORIES],
        running_regions=running.regions,
        running_channels=running.channels,
        trends=_flagged(running.trends),
        trend_window=_trend_window(running.trends),
        audit_checkpoint=_audit_checkpoint(session, principal),
    )


def _audit_checkpoint(session: Session, principal: Principal) -> str | None:
    """The signed head of the audit trail, for those who read the trail (others get no count of it)."""
    if not policy.may_read_audit(principal):
        return None
    head = audit.signed_head(session)
    return head.to_json() if head is not None else None


# ---------------------------------------------------------------------------------------------- final


def _figures(session: Session, op: Operation, d: Dashboard) -> OperationFigures:
    out = operations.to_out(session, op)
    return OperationFigures(
        operation=op.code,
        operation_name=op.name,
        starts_on=op.starts_on,
        ends_on=op.ends_on,
        administrations=out.member_count,
        participants=out.participant_count,
        key_figures=d.key_figures,
    )


def _row(figure: str, label: str, current: float | None, previous: float | None, unit: str) -> ComparisonRow:
    change = pct = None
    if current is not None and previous is not None:
        if unit == "share":
            change = round((current - previous) * 100, 1)
        else:
            change = round(current - previous, 3)
            pct = round((current - previous) / previous * 100, 1) if previous else None
    return ComparisonRow(
        figure=figure,
        label=label,
        current=current,
        previous=previous,
        change=change,
        change_pct=pct,
        unit=unit,
    )


def compare(current: OperationFigures, previous: OperationFigures) -> Comparison:
    """Both operations' key figures side by side, with the change of each."""
    a, b = current.key_figures, previous.key_figures
    rows = [
        _row("cases", "Cases", a.cases, b.cases, "count"),
        _row("seizures", "Seizures", a.seizures, b.seizures, "count"),
        _row(
            "administrations",
            "Customs administrations involved",
            current.administrations,
            previous.administrations,
            "count",
        ),
        _row(
            "reporting_administrations",
            "Administrations that reported cases",
            a.reporting_administrations,
            b.reporting_administrations,
            "count",
        ),
        _row("pieces", "Pieces, all goods", a.pieces, b.pieces, "pieces"),
        _row("tonnes", "Tonnes, all goods", a.tonnes, b.tonnes, "tonnes"),
    ]
    previous_groups = {g.group: g for g in b.groups}
    for g in a.groups:
        p = previous_groups.get(g.group)
        rows.append(_row(f"{g.group}_seizures", f"{g.label}: seizures", g.seizures,
                         p.seizures if p else None, "count"))  # fmt: skip
        rows.append(
            _row(f"{g.group}_pieces", f"{g.label}: pieces", g.pieces, p.pieces if p else None, "pieces")
        )
        rows.append(
            _row(f"{g.group}_tonnes", f"{g.label}: tonnes", g.tonnes, p.tonnes if p else None, "tonnes")
        )
    rows += [
        _row(
            "ecommerce_share", "E-commerce share of seizures", a.ecommerce_share, b.ecommerce_share, "share"
        ),
        _row("regions_reporting", "WCO regions reporting", a.regions_reporting, b.regions_reporting, "count"),
        _row(
            "ecommerce_regions",
            "WCO regions reporting e-commerce cases",
            a.ecommerce_regions,
            b.ecommerce_regions,
            "count",
        ),
    ]
    return Comparison(current=current, previous=previous, rows=rows)


def previous_operation(session: Session, principal: Principal, op: Operation) -> Operation | None:
    """The latest operation that started before ``op`` among those the principal may see."""
    earlier = [o for o in operations.list_operations(session, principal) if o.starts_on < op.starts_on]
    return max(earlier, key=lambda o: o.starts_on) if earlier else None


def _comparison_operation(
    session: Session, principal: Principal, op: Operation, compare_with: str | None
) -> tuple[Operation | None, str]:
    if compare_with is not None and compare_with.strip().lower() in ("", "none"):
        return None, "No comparison was asked for."
    if compare_with:
        try:
            other = operations.get_operation(session, principal, compare_with.strip())
        except NotFound:
            raise InvalidInput(
                [
                    FieldError(
                        "compare", f"no operation {compare_with!r} that you take part in", value=compare_with
                    )
                ],
                "invalid comparison",
            ) from None
        if other.id == op.id:
            raise InvalidInput(
                [FieldError("compare", "an operation is not compared with itself", value=compare_with)],
                "invalid comparison",
            )
        return other, ""
    earlier = previous_operation(session, principal, op)
    if earlier is None:
        return None, "No earlier operation in the database to compare with."
    return earlier, ""


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{value * 100:.0f}%"


def _count(n: float) -> str:
    if n >= 1_000_000:
        return f"{n / 1_000_000:,.1f}".rstrip("0").rstrip(".") + " million"
    return f"{n:,.0f}"


def _in_sentence(label: str) -> str:
    """A label inside a sentence: "Counterfeit medicines" -> "counterfeit medicines"; "IPR-..." kept."""
    return label if label[1:2].isupper() else label[:1].lower() + label[1:]


def findings(report_figures: OperationFigures, d: Dashboard, comparison: Comparison | None) -> list[str]:
    """Plain sentences stating what the figures show (no judgement the data cannot support)."""
    kf = d.key_figures
    out: list[str] = []
    if not kf.cases:
        return ["No submitted or validated case that you may read was reported in this operation."]
    out.append(
        f"{kf.cases:,} cases and {kf.seizures:,} seizures were reported by {kf.reporting_administrations:,} "
        f"of the {report_figures.administrations:,} customs administrations involved, from "
        f"{kf.regions_reporting} of the {kf.regions_total} WCO regions."
    )
    out.append(
        f"E-commerce accounted for {_pct(kf.ecommerce_share)} of seizures ({kf.ecommerce_seizures:,}); "
        f"{kf.ecommerce_regions} of the {kf.regions_total} WCO regions reported e-commerce cases."
    )
    if kf.pieces:
        by_pieces = max(kf.groups, key=lambda g: g.pieces)
        out.append(
            f"{by_pieces.label} made up {by_pieces.pieces / kf.pieces * 100:.0f}% of the pieces seized "
            f"({_count(by_pieces.pieces)} of {_count(kf.pieces)})."
        )
    if kf.weight_kg:
        by_weight = max(kf.groups, key=lambda g: g.weight_kg)
        out.append(
            f"By weight, {_in_sentence(by_weight.label)} led with {by_weight.tonnes:,.1f} of {kf.tonnes:,.1f} tonnes."
        )
    top = [r for r in d.commodities.rows if r.seizures][:3]
    if top:
        rest = ", then " + " and ".join(r.label for r in top[1:]) if len(top) > 1 else ""
        out.append(
            f"The most reported category was {top[0].label} ({top[0].seizures:,} seizures, "
            f"{top[0].share * 100:.0f}%){rest}."
        )
    medicines = [r for r in d.therapeutic.rows if r.seizures]
    if medicines:
        out.append(
            f"Among medicines, {medicines[0].label} was the most reported group ({medicines[0].seizures:,} seizures)."
        )
    channels = [r for r in d.channels.rows if r.seizures]
    if channels:
        out.append(f"{channels[0].label} carried the most seizures ({channels[0].share * 100:.0f}%).")
    if d.routes.rows:
        r = d.routes.rows[0]
        out.append(
            f"The most frequent route was {r.origin_label} → {r.destination_label} ({r.seizures:,} seizures)."
        )
    flagged = _flagged(d.trends)
    if flagged:
        names = ", ".join(f"{r.label} (×{r.rate_ratio:.1f})" for r in flagged[:5])
        out.append(
            f"Rising in the last {d.recent_days} days of the operation, as a share of seizures: {names}."
        )
    elif d.trends.recent_from is not None:
        out.append(
            f"No category, route, brand or channel rose significantly in the last {d.recent_days} days."
        )
    if comparison is not None:
        by = {r.figure: r for r in comparison.rows}
        parts = []
        for name in ("cases", "seizures", "pieces"):
            row = by[name]
            if row.change_pct is not None:
                parts.append(f"{row.label.lower()} {row.change_pct:+.0f}%")
        if parts:
            out.append(f"Compared with {comparison.previous.operation}: " + ", ".join(parts) + ".")
    return out


def final_report(
    session: Session, principal: Principal, op: Operation, compare_with: str | None = None
) -> FinalReport:
    """The end-of-operation report of ``op`` for ``principal``, compared with ``compare_with`` (an
    operation code; default the latest earlier operation the principal takes part in; "none": no comparison)."""
    policy.require_read(principal)
    other, note = _comparison_operation(session, principal, op, compare_with)
    d = analytics.dashboard(session, principal, op, DashboardFilters())
    figures = _figures(session, op, d)
    comparison = None
    if other is not None:
        od = analytics.dashboard(session, principal, other, DashboardFilters())
        comparison = compare(figures, _figures(session, other, od))
    return FinalReport(
        operation=op.code,
        operation_name=op.name,
        scope=op.scope,
        starts_on=op.starts_on,
        ends_on=op.ends_on,
        status=operations.status_on(op).value,
        generated_at=_now(),
        as_of=d.as_of,
        fresh=d.fresh,
        viewer=principal.org_code,
        figures=figures,
        top_categories=[r for r in d.commodities.rows if r.seizures][:TOP_CATEGORIES],
        therapeutic=[r for r in d.therapeutic.rows if r.seizures],
        regions=d.regions,
        channels=d.channels,
        transport_modes=d.transport_modes,
        routes=d.routes.rows[:TOP_ROUTES],
        progression=d.progression.days,
        trends=_flagged(d.trends),
        trend_window=_trend_window(d.trends),
        findings=findings(figures, d, comparison),
        comparison=comparison,
        comparison_note=note,
    )
