"""Jinja2 templates shared by every domain's views."""

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


templates.env.filters["thousands"] = _thousands
templates.env.globals["static_url"] = static_url
