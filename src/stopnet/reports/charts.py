"""Charts of the reports as inline SVG, drawn on the server (no script; the same markup on screen and
in the PDF). Colours come from classes (``static/reports.css`` on screen, and the same stylesheet for
WeasyPrint); the ``fill``/``stroke`` presentation attributes are only a fallback, never a ``style``."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from markupsafe import Markup, escape

from stopnet.analytics.schemas import DayPoint

GROUP_FILL = {"medicines": "#b5452f", "ipr": "#2f6fb5", "other": "#6b8e23"}
DEFAULT_FILL = "#2f6fb5"


@dataclass(frozen=True)
class Bar:
    label: str
    value: float
    css: str = ""  # e.g. the commodity group


def _fmt(v: float) -> str:
    return f"{v:,.0f}" if float(v).is_integer() else f"{v:,.1f}"


def bar_chart(
    bars: Sequence[Bar], *, title: str, value_format: Callable[[float], str] = _fmt, width: int = 640
) -> Markup:
    """Horizontal bars, one per row, labelled with their value."""
    row_h, label_w, value_w, top = 20, 230, 80, 4
    height = top + row_h * max(len(bars), 1) + 4
    plot_w = width - label_w - value_w
    peak = max((b.value for b in bars), default=0) or 1
    parts = [
        f'<svg class="chart bars" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" '
        f'width="{width}" height="{height}" role="img" aria-label="{escape(title)}">',
        f"<title>{escape(title)}</title>",
    ]
    if not bars:
        parts.append(f'<text class="empty" x="0" y="{top + 14}" fill="#666">No data</text>')
    for i, b in enumerate(bars):
        y = top + i * row_h
        w = max(b.value / peak * plot_w, 0.5 if b.value else 0)
        label = b.label if len(b.label) <= 36 else b.label[:35] + "…"
        fill = GROUP_FILL.get(b.css, DEFAULT_FILL)
        parts.append(
            f'<text class="label" x="{label_w - 6}" y="{y + 14}" text-anchor="end" font-size="11">'
            f"{escape(label)}</text>"
            f'<rect class="bar {escape(b.css)}" x="{label_w}" y="{y + 3}" width="{w:.1f}" height="{row_h - 6}" '
            f'fill="{fill}"/>'
            f'<text class="value" x="{label_w + w + 4:.1f}" y="{y + 14}" font-size="11">'
            f"{escape(value_format(b.value))}</text>"
        )
    parts.append("</svg>")
    return Markup("".join(parts))  # noqa: S704 - every text above is escaped


def progression_chart(
    points: Sequence[DayPoint], *, title: str, width: int = 640, height: int = 200
) -> Markup:
    """Seizures per day (columns, left scale) and cumulative seizures (line, right scale)."""
    left, right, top, bottom = 44, 54, 10, 26
    plot_w, plot_h = width - left - right, height - top - bottom
    n = max(len(points), 1)
    peak = max((p.seizures for p in points), default=0) or 1
    cum_peak = max((p.cumulative_seizures for p in points), default=0) or 1
    step = plot_w / n
    parts = [
        f'<svg class="chart progression" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" '
        f'width="{width}" height="{height}" role="img" aria-label="{escape(title)}">',
        f"<title>{escape(title)}</title>",
        f'<line class="axis" x1="{left}" y1="{top + plot_h}" x2="{left + plot_w}" y2="{top + plot_h}" '
        f'stroke="#888" stroke-width="1"/>',
        f'<text class="tick" x="{left - 4}" y="{top + 8}" text-anchor="end" font-size="10">{peak:,}</text>',
        f'<text class="tick" x="{left - 4}" y="{top + plot_h}" text-anchor="end" font-size="10">0</text>',
        f'<text class="tick cumulative" x="{left + plot_w + 4}" y="{top + 8}" font-size="10">{cum_peak:,}</text>',
    ]
    label_every = max(1, round(n / 8))
    line = []
    for i, p in enumerate(points):
        x = left + i * step
        h = p.seizures / peak * plot_h
        parts.append(
            f'<rect class="bar day" x="{x + step * 0.15:.1f}" y="{top + plot_h - h:.1f}" '
            f'width="{step * 0.7:.1f}" height="{h:.1f}" fill="{DEFAULT_FILL}"/>'
        )
        cy = top + plot_h - p.cumulative_seizures / cum_peak * plot_h
        line.append(f"{x + step / 2:.1f},{cy:.1f}")
        if i % label_every == 0 or i == n - 1:
            parts.append(
                f'<text class="tick" x="{x + step / 2:.1f}" y="{height - 8}" text-anchor="middle" '
                f'font-size="10">{p.day:%d %b}</text>'
            )
    if line:
        parts.append(
            f'<polyline class="cumulative" points="{" ".join(line)}" fill="none" stroke="#b5452f" '
            f'stroke-width="2"/>'
        )
    parts.append("</svg>")
    return Markup("".join(parts))  # noqa: S704 - only numbers and escaped text above
