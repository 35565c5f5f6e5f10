"""Fixtures of the rights-holder tests: a controllable clock, an approved brand with a published guide,
and a second rights holder (the live server and Chromium come from tests/conftest.py)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from stopnet.access.service import create_token, principal_for
from stopnet.db.models import Organisation, OrgKind, Participant, ParticipantRole, Role, User
from tests.conftest import Actor, World, password_hash

FRIDAY = dt.datetime(2025, 5, 16, 10, 0, tzinfo=dt.UTC)  # a Friday within TEST-OP

BRAND = {
    "name": "Brand X",
    "description": "Weight-loss pens and accessories",
    "aliases": ["BrandX", "Brand-X"],
    "product_lines": ["weight-loss pens", "pen needles"],
    "hs_codes": ["300490", "9018"],
    "trademarks": [
        {
            "mark": "BRAND X",
            "registration_number": "018000001",
            "territory": "EU",
            "office": "EUIPO",
            "classes": "5, 10",
        },
        {"mark": "BRAND X", "registration_number": "1500001", "territory": "WO", "office": "WIPO"},
    ],
    "representatives": [{"name": "Ana Counsel", "firm": "IP Counsel LLP", "email": "ana@ipcounsel.test"}],
}

GUIDE = {
    "kind": "product_id",
    "title": "Brand X weight-loss pens: genuine or fake",
    "summary": "How to recognise genuine Brand X pens.",
    "genuine_features": "Hologram on the cap; batch number laser-etched.",
    "packaging": "Blue box with a tamper seal.",
    "fake_indicators": "Printed batch numbers; spelling mistakes on the leaflet.",
    "products": ["weight-loss pen"],
    "hs_codes": ["300490"],
    "valid_from": "2025-01-01",
    "valid_until": "2026-12-31",
}


@dataclass
class Clock:
    """The application's clock (``app.state.clock``), moved by the tests."""

    now: dt.datetime

    def __call__(self) -> dt.datetime:
        return self.now


@pytest.fixture
def clock(app: Any) -> Iterator[Clock]:
    c = Clock(FRIDAY)
    app.state.clock = c
    yield c
    del app.state.clock


def add_actor(
    session_factory: sessionmaker[Session],
    world: World,
    name: str,
    org_code: str,
    kind: OrgKind,
    role: Role,
    participation: ParticipantRole | None,
) -> Actor:
    """A new organisation (if needed) with one user and its API token, added to the world."""
    with session_factory() as s:
        org = s.query(Organisation).filter_by(code=org_code).one_or_none()
        if org is None:
            org = Organisation(code=org_code, name=f"{org_code} org", kind=kind, country_code="US")
            s.add(org)
            s.flush()
            if participation is not None:
                s.add(Participant(operation_id=world.op.id, org_id=org.id, role=participation))
        user = User(
            org_id=org.id,
            email=f"{name}@example.test",
            display_name=name,
            role=role,
            password_hash=password_hash(),
        )
        s.add(user)
        s.flush()
        _, raw = create_token(s, None, org, f"{name} token", role, user=user)
        actor = Actor(user.email, role, org_code, raw, principal_for(user, org))
        s.commit()
    world.actors[name] = actor
    return actor


@pytest.fixture
def other_holder(session_factory: sessionmaker[Session], world: World) -> Actor:
    """A second rights holder (BRAND-Y), taking part in TEST-OP too."""
    return add_actor(
        session_factory,
        world,
        "other_holder",
        "BRAND-Y",
        OrgKind.RIGHTS_HOLDER,
        Role.RIGHTS_HOLDER,
        ParticipantRole.RIGHTS_HOLDER,
    )


@pytest.fixture
def platform(session_factory: sessionmaker[Session], world: World) -> Actor:
    """An online marketplace sharing risk information."""
    return add_actor(
        session_factory,
        world,
        "platform",
        "SHOP-PLAT",
        OrgKind.PLATFORM,
        Role.RIGHTS_HOLDER,
        ParticipantRole.PARTNER,
    )


def register_brand(client: TestClient, actor: Actor, **overrides: Any) -> dict[str, Any]:
    r = client.post("/api/v1/rights/brands", json={**BRAND, **overrides}, headers=actor.headers)
    assert r.status_code == 201, r.text
    return r.json()


def approve(client: TestClient, world: World, brand_id: int) -> dict[str, Any]:
    r = client.post(
        f"/api/v1/rights/brands/{brand_id}/decision",
        json={"decision": "approved", "note": "trademarks checked"},
        headers=world["coordinator"].headers,
    )
    assert r.status_code == 200, r.text
    return r.json()


def publish_guide(client: TestClient, actor: Actor, brand_id: int, **overrides: Any) -> dict[str, Any]:
    r = client.post(
        "/api/v1/rights/guides", json={**GUIDE, "brand_id": brand_id, **overrides}, headers=actor.headers
    )
    assert r.status_code == 201, r.text
    gid = r.json()["id"]
    r = client.post(f"/api/v1/rights/guides/{gid}/publish", json={}, headers=actor.headers)
    assert r.status_code == 200, r.text
    return r.json()


def report_case(
    client: TestClient, actor: Actor, reference: str = "FR-0001", **overrides: Any
) -> dict[str, Any]:
    from tests.conftest import case_payload

    r = client.post(
        "/api/v1/operations/TEST-OP/cases", json=case_payload(reference, **overrides), headers=actor.headers
    )
    assert r.status_code == 201, r.text
    return r.json()


@dataclass
class Setup:
    brand: dict[str, Any]
    guide: dict[str, Any]
    case: dict[str, Any]


@pytest.fixture
def brand_x(client: TestClient, world: World, clock: Clock) -> Setup:
    """Brand X of BRAND-X approved, its guide published, and a case of FR-CUS seizing Brand X pens."""
    brand = approve(client, world, register_brand(client, world["rights_holder"])["id"])
    guide = publish_guide(client, world["rights_holder"], brand["id"])
    case = report_case(client, world["fr_officer"])
    return Setup(brand, guide, case)


MakeRequest = Callable[..., Any]
