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
