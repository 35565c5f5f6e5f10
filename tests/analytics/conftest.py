"""Fixtures of the dashboard tests: the app with the dashboard routers, and a fresh summary cache."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from stopnet.analytics import service


@pytest.fixture
def app(settings: Any, session_factory: Any) -> Iterator[Any]:
    from stopnet.web.app import create_app

    application = create_app(settings)
    yield application
    application.state.engine.dispose()


@pytest.fixture(autouse=True)
def _fresh_summaries() -> Iterator[None]:
    service.clear_cache()
    yield
    service.clear_cache()
