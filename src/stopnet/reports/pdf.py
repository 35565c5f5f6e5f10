"""PDF of a report: WeasyPrint renders the same HTML as the page, with the print stylesheet.

Offline by construction: the stylesheet is read from the package and passed to WeasyPrint, charts are
inline SVG, and the URL fetcher refuses every URL, so rendering never reaches the network (or the disk
outside the package) whatever the HTML holds.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any, NoReturn

STYLESHEET = Path(__file__).resolve().parent.parent / "web" / "static" / "reports.css"


class ExternalResourceRefused(ValueError):
    pass


def _no_fetch(url: str, *args: Any, **kwargs: Any) -> NoReturn:
    raise ExternalResourceRefused(f"reports are rendered offline; refused to fetch {url}")


@functools.cache
def _stylesheet() -> Any:
    from weasyprint import CSS

    return CSS(string=STYLESHEET.read_text(encoding="utf-8"), url_fetcher=_no_fetch)


def html_to_pdf(html: str) -> bytes:
    """The PDF of ``html`` (a whole document), on A4 with the print stylesheet."""
    from weasyprint import HTML

    doc = HTML(string=html, url_fetcher=_no_fetch, base_url=None)
    pdf: bytes = doc.write_pdf(stylesheets=[_stylesheet()])
    return pdf
