"""The demo's rights holders: approved brands, published guides with photos, verification requests open,
answered and overdue; loading it again changes nothing."""

from __future__ import annotations

import datetime as dt
import io
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from stopnet.db.engine import make_engine, make_sessionmaker, session_scope
from stopnet.db.migrate import upgrade
from stopnet.db.models.rightsholders import (
    Brand,
    BrandStatus,
    Guide,
    RightsFile,
    VerificationAnswer,
    VerificationRequest,
    VerificationStatus,
)
from stopnet.rightsholders import service as rights
from stopnet.simulate import seed_demo
from stopnet.simulate.rights import seed_demo_rights

NOW = dt.datetime(2026, 12, 7, 12, 0, tzinfo=dt.UTC)


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[sessionmaker[Session], Path]]:
    url = f"sqlite:///{tmp_path_factory.mktemp('rightsdb') / 'demo.db'}"
    data_dir = tmp_path_factory.mktemp("rightsvar")
    upgrade(url)
    engine = make_engine(url)
    factory = make_sessionmaker(engine)
    with session_scope(factory) as s:
        info = seed_demo(s, seed=42)
        op = next(iter(info.operations))
        seed_demo_rights(
            s, operation=op, org_code=info.home_org, data_dir=data_dir, max_bytes=5_000_000, now=NOW
        )
    yield factory, data_dir
    engine.dispose()


def test_brands_are_approved_with_published_guides_and_photos(demo) -> None:  # type: ignore[no-untyped-def]
    factory, data_dir = demo
    with factory() as s:
        brands = s.scalars(select(Brand)).all()
        assert {b.name for b in brands} == {"Novafit", "Slimora", "Vigorem"}
        assert {b.status for b in brands} == {BrandStatus.APPROVED}
        assert all(not b.name.startswith("Brand ") for b in brands)
        guides = s.scalars(select(Guide)).all()
        assert len(guides) == 3 and all(g.published_version for g in guides)
        photos = s.scalars(select(RightsFile)).all()
        assert len(photos) == 6
        for f in photos:
            image = Image.open(io.BytesIO(rights.file_path(data_dir, f.sha256).read_bytes()))
            assert image.format == "PNG" and image.size == (480, 300)


def test_verification_requests_are_in_every_state(demo) -> None:  # type: ignore[no-untyped-def]
    factory, _ = demo
    with factory() as s:
        reqs = s.scalars(select(VerificationRequest)).all()
        answered = [r for r in reqs if r.status is VerificationStatus.ANSWERED]
        open_ = [r for r in reqs if r.status is VerificationStatus.OPEN]
        assert len(answered) == 1 and answered[0].answer is VerificationAnswer.COUNTERFEIT
        assert sorted(rights.is_request_overdue(r, NOW) for r in open_) == [False, True]
        assert any(r.case_id is not None for r in reqs), "requests are linked to the demo's own seizures"


def test_loading_again_changes_nothing(demo) -> None:  # type: ignore[no-untyped-def]
    factory, data_dir = demo
    with session_scope(factory) as s:
        before = s.scalar(select(func.count()).select_from(VerificationRequest))
        again = seed_demo_rights(
            s, operation="STOP-IV", org_code="FR-CUS", data_dir=data_dir, max_bytes=5_000_000
        )
        assert again.brands == [] and again.requests == {}
        assert s.scalar(select(func.count()).select_from(VerificationRequest)) == before


def test_no_placeholder_or_real_brand_in_the_demo_or_the_template() -> None:
    from stopnet.reporting.importer import EXAMPLE
    from stopnet.simulate.operation import GOODS

    names = {name for goods in GOODS.values() for name, _holder in goods.brands}
    assert not [n for n in names if n.startswith("Brand ")], names
    assert EXAMPLE["brand"] in names  # the template's example is one of the demo's invented brands
