"""The PDFs are laid out as a customs situation report: the key figures on page 1, and no page less than
half used except the last (a section no longer jumps whole to the next page)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from stopnet.access.service import principal_for
from stopnet.analytics import service as analytics
from stopnet.core.keys import session_info
from stopnet.db.engine import make_engine, make_sessionmaker, session_scope
from stopnet.db.migrate import upgrade
from stopnet.db.models import Operation, Organisation, User
from stopnet.reports import service, views
from stopnet.simulate import seed_demo
from tests.reports.conftest import pdf_page_texts, pdf_page_usage

COORDINATOR = "coordinator@stopnet-demo.example"


@pytest.fixture(scope="module")
def stop_iv(tmp_path_factory: pytest.TempPathFactory, settings_module) -> Iterator[sessionmaker[Session]]:  # type: ignore[no-untyped-def]
    url = f"sqlite:///{tmp_path_factory.mktemp('layoutdb') / 'stop.db'}"
    upgrade(url)
    engine = make_engine(url)
    factory = make_sessionmaker(engine, info=session_info(settings_module))
    with session_scope(factory) as s:
        seed_demo(s, seed=42, operations=("STOP-IV",))
    analytics.clear_cache()
    yield factory
    analytics.clear_cache()
    engine.dispose()


@pytest.fixture(scope="module")
def settings_module(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    from stopnet.config import Settings

    return Settings(data_dir=tmp_path_factory.mktemp("layoutvar"), secret_key="layout-test")


@pytest.fixture(autouse=True)
def _fresh_summaries() -> Iterator[None]:  # the module's database outlives one test: keep its summaries
    yield


def _coordinator_and_op(s: Session):  # type: ignore[no-untyped-def]
    user = s.scalars(select(User).where(User.email == COORDINATOR)).one()
    op = s.scalars(select(Operation).where(Operation.code == "STOP-IV")).one()
    return principal_for(user, s.get_one(Organisation, user.org_id)), op


def _check_layout(pdf: bytes, key_figures: list[str]) -> None:
    pages = pdf_page_texts(pdf)
    assert len(pages) >= 3, "a report of a whole operation takes several pages"
    for figure in key_figures:
        assert figure in pages[0], f"key figure {figure!r} is not on page 1"
    usage = pdf_page_usage(pdf)
    for number, used in enumerate(usage[:-1], start=1):
        assert used >= 0.5, (
            f"page {number} of {len(usage)} is only {used:.0%} used: {[round(u, 2) for u in usage]}"
        )


def test_daily_report_pdf_has_its_key_figures_on_page_1_and_full_pages(
    stop_iv: sessionmaker[Session],
) -> None:
    with stop_iv() as s:
        principal, op = _coordinator_and_op(s)
        r = service.daily_report(s, principal, op, dt.date(2025, 5, 20))
        pdf = views.daily_pdf(r)
    figures = [f"{r.new.cases:,}", f"{r.new.seizures:,}", f"{r.running.cases:,}", f"{r.running.seizures:,}"]
    _check_layout(pdf, figures)


def test_final_report_pdf_has_its_key_figures_on_page_1_and_full_pages(
    stop_iv: sessionmaker[Session],
) -> None:
    with stop_iv() as s:
        principal, op = _coordinator_and_op(s)
        r = service.final_report(s, principal, op)
        pdf = views.final_pdf(r)
    kf = r.figures.key_figures
    figures = [f"{kf.cases:,}", f"{kf.seizures:,}", f"{r.figures.administrations:,}", "Findings"]
    _check_layout(pdf, figures)
