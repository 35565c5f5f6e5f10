"""Jinja2 templates shared by every domain's views, and the number formats pages use (``thousands``,
``human``, ``percent``, ``tonnes``)."""

from __future__ import annotations

from pathlib import Path

from fastapi.templating import Jinja2Templates

from .assets import static_url

templates = Jinja2Templates(directory=str(Path(__file__).parent / "templates"))


def _thousands(value: int | float | None) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and not value.is_integer():
        return f"{value:,.1f}"
    return f"{int(value):,}"


def human(value: float | int | None, digits: int = 1) -> str:
    """43_512_000 -> "43.5 million"; 1_100 -> "1,100"."""
    if value is None:
        return "–"
    v = float(value)
    for size, word in ((1e9, "billion"), (1e6, "million")):
        if abs(v) >= size:
            text = f"{v / size:,.{digits}f}".rstrip("0").rstrip(".")
            return f"{text} {word}"
    if v.is_integer():
        return f"{int(v):,}"
    return f"{v:,.{digits}f}"


def percent(value: float | None) -> str:
    return "–" if value is None else f"{value * 100:.0f}%"


def tonnes(value: float | None) -> str:
    """106 -> "106", 27.4 -> "27.4", 0.25 -> "0.25", 0.013 -> "0.013"."""
    if value is None:
        return "–"
    if value >= 100:
        return f"{value:,.0f}"
    if value >= 10:
        return f"{value:,.1f}"
    return f"{value:.3f}".rstrip("0").rstrip(".") if value else "0"


templates.env.filters["thousands"] = _thousands
templates.env.filters["human"] = human
templates.env.filters["percent"] = percent
templates.env.filters["tonnes"] = tonnes
templates.env.globals["static_url"] = static_url
