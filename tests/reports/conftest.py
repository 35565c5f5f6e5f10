"""Fixtures of the report and export tests: a fresh dashboard cache, and PDF text extraction."""

from __future__ import annotations

import io
import re
from collections.abc import Iterator

import pytest

from stopnet.analytics import service


@pytest.fixture(autouse=True)
def _fresh_summaries() -> Iterator[None]:
    service.clear_cache()
    yield
    service.clear_cache()


def pdf_text(data: bytes) -> str:
    """Every page's text of a PDF (pypdf), whitespace collapsed to single spaces."""
    from pypdf import PdfReader

    assert data.startswith(b"%PDF-"), data[:20]
    reader = PdfReader(io.BytesIO(data))
    return re.sub(r"\s+", " ", " ".join(page.extract_text() or "" for page in reader.pages))


def pdf_pages(data: bytes) -> int:
    from pypdf import PdfReader

    return len(PdfReader(io.BytesIO(data)).pages)


def pdf_page_texts(data: bytes) -> list[str]:
    from pypdf import PdfReader

    return [re.sub(r"\s+", " ", page.extract_text() or "") for page in PdfReader(io.BytesIO(data)).pages]


def pdf_page_usage(data: bytes, footer_pt: float = 45.0) -> list[float]:
    """For each page, the share of its height from the top down to its lowest line of text (the running
    footer, in the bottom ``footer_pt`` points, not counted): 1.0 is a full page."""
    from pypdf import PdfReader

    usage = []
    for page in PdfReader(io.BytesIO(data)).pages:
        height = float(page.mediabox.height)
        lowest = [height]

        def visit(
            text: str, cm: list[float], tm: list[float], _font: object, _size: float, height: float = height
        ) -> None:
            y = tm[5] * cm[3] + cm[5] if cm else tm[5]
            if text.strip() and footer_pt < y < height:
                lowest[0] = min(lowest[0], y)  # noqa: B023 (visited during this iteration only)

        page.extract_text(visitor_text=visit)
        usage.append((height - lowest[0]) / height)
    return usage
