"""Shared fixtures: one fresh database per test session, built from the migrations.

Backend: SQLite by default; PostgreSQL when ``STOPNET_TEST_BACKEND=postgres`` (the server named by
``STOPNET_TEST_POSTGRES_URL``, default the local one): a new database is created for the session and
dropped afterwards. Between tests every table is emptied, so each test starts from a clean world.
"""

from __future__ import annotations

import datetime as dt
import functools
import math
import os
import secrets
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.orm import Session, sessionmaker

from stopnet.access.passwords import hash_password
from stopnet.access.principal import Principal
from stopnet.access.service import create_token, principal_for
from stopnet.config import Settings
from stopnet.core.keys import session_info
from stopnet.db.engine import make_engine, make_sessionmaker
from stopnet.db.migrate import upgrade
from stopnet.db.models import (
    Base,
    Operation,
    OperationPhase,
    OperationStatus,
    Organisation,
    OrgKind,
    Participant,
    ParticipantRole,
    Role,
    User,
    Visibility,
)

PASSWORD = "correct horse battery staple"


@functools.cache
def password_hash() -> str:
    """Argon2 is slow on purpose: hash the test password once per session."""
    return hash_password(PASSWORD)


def _postgres_server_url() -> str:
    return os.environ.get(
        "STOPNET_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
    )


@pytest.fixture(scope="session")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    backend = os.environ.get("STOPNET_TEST_BACKEND", "sqlite")
    if backend == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('db') / 'test.db'}"
        upgrade(url)
        yield url
        return
    if backend != "postgres":
        raise RuntimeError(f"unknown STOPNET_TEST_BACKEND {backend!r}")
    server = _postgres_server_url().replace("postgresql://", "postgresql+psycopg://", 1)
    name = f"stopnet_test_{secrets.token_hex(4)}"
    admin = create_engine(server, isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.execute(text(f'CREATE DATABASE "{name}"'))
    url = server.rsplit("/", 1)[0] + "/" + name
    try:
        upgrade(url)
        yield url
    finally:
        with admin.connect() as c:
            c.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(scope="session")
def engine(database_url: str) -> Iterator[Engine]:
    eng = make_engine(database_url)
    yield eng
    eng.dispose()


def _empty_all(engine: Engine) -> None:
    tables = [t.name for t in reversed(Base.metadata.sorted_tables)]
    with engine.begin() as c:
        if engine.dialect.name == "postgresql":
            c.execute(text("TRUNCATE " + ", ".join(f'"{t}"' for t in tables) + " RESTART IDENTITY CASCADE"))
        else:
            for t in tables:
                c.execute(text(f'DELETE FROM "{t}"'))  # noqa: S608 - table names from our metadata


@pytest.fixture
def session_factory(engine: Engine, settings: Settings) -> Iterator[sessionmaker[Session]]:
    _empty_all(engine)
    yield make_sessionmaker(engine, info=session_info(settings))


@pytest.fixture
def db(session_factory: sessionmaker[Session]) -> Iterator[Session]:
    s = session_factory()
    yield s
    s.rollback()
    s.close()


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    return Settings(database_url=database_url, data_dir=tmp_path / "var", secret_key="test-secret-key")


@pytest.fixture
def app(settings: Settings, session_factory: sessionmaker[Session]):  # type: ignore[no-untyped-def]
    from stopnet.web.app import create_app

    application = create_app(settings)
    yield application
    application.state.engine.dispose()


@pytest.fixture
def client(app) -> Iterator[TestClient]:  # type: ignore[no-untyped-def]
    with TestClient(app) as c:
        yield c


@dataclass
class Actor:
    """A signed-in user of the test world, with an API token of the same role."""

    email: str
    role: Role
    org_code: str
    token: str
    principal: Principal

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


@dataclass
class World:
    op: Operation
    orgs: dict[str, Organisation]
    actors: dict[str, Actor] = field(default_factory=dict)

    def __getitem__(self, name: str) -> Actor:
        return self.actors[name]


ORGS = [
    ("WCO-OCU", "WCO Operational Coordination Unit", OrgKind.COORDINATOR, None, None),
    ("FR-CUS", "France Customs", OrgKind.CUSTOMS, "FR", "EUR"),
    ("DE-CUS", "Germany Customs", OrgKind.CUSTOMS, "DE", "EUR"),
    ("KE-CUS", "Kenya Revenue Authority Customs", OrgKind.CUSTOMS, "KE", "ESA"),
    ("XX-CUS", "Customs not taking part", OrgKind.CUSTOMS, "BR", "AMS"),
    ("RILO-WE", "RILO Western Europe", OrgKind.RILO, "DE", "EUR"),
    ("RILO-ESA", "RILO Eastern and Southern Africa", OrgKind.RILO, "KE", "ESA"),
    ("INTERPOL", "INTERPOL", OrgKind.PARTNER, "FR", None),
    ("BRAND-X", "Brand X Holdings", OrgKind.RIGHTS_HOLDER, "CH", None),
]
PARTICIPATION = {
    "WCO-OCU": ParticipantRole.COORDINATOR,
    "FR-CUS": ParticipantRole.MEMBER,
    "DE-CUS": ParticipantRole.MEMBER,
    "KE-CUS": ParticipantRole.MEMBER,
    "RILO-WE": ParticipantRole.RILO,
    "RILO-ESA": ParticipantRole.RILO,
    "INTERPOL": ParticipantRole.PARTNER,
    "BRAND-X": ParticipantRole.RIGHTS_HOLDER,
}
ACTORS = [
    ("admin", "WCO-OCU", Role.ADMIN),
    ("coordinator", "WCO-OCU", Role.COORDINATOR),
    ("fr_officer", "FR-CUS", Role.OFFICER),
    ("fr_ncp", "FR-CUS", Role.CONTACT_POINT),
    ("de_officer", "DE-CUS", Role.OFFICER),
    ("de_ncp", "DE-CUS", Role.CONTACT_POINT),
    ("ke_officer", "KE-CUS", Role.OFFICER),
    ("xx_officer", "XX-CUS", Role.OFFICER),
    ("analyst_we", "RILO-WE", Role.ANALYST),
    ("analyst_esa", "RILO-ESA", Role.ANALYST),
    ("partner", "INTERPOL", Role.PARTNER),
    ("rights_holder", "BRAND-X", Role.RIGHTS_HOLDER),
]


@pytest.fixture
def world(session_factory: sessionmaker[Session]) -> World:
    """Organisations, an operation TEST-OP (12–30 May 2025) and one actor per role."""
    with session_factory() as s:
        orgs = {}
        for code, name, kind, country, region in ORGS:
            o = Organisation(code=code, name=name, kind=kind, country_code=country, region_code=region)
            s.add(o)
            orgs[code] = o
        s.flush()
        op = Operation(
            code="TEST-OP",
            name="Operation Test",
            scope="Counterfeit medicines and IPR goods sold online",
            starts_on=dt.date(2025, 5, 12),
            ends_on=dt.date(2025, 5, 30),
            status=OperationStatus.ACTIVE,
            default_visibility=Visibility.PARTICIPANTS,
            coordinator_org_id=orgs["WCO-OCU"].id,
            phases=[
                OperationPhase(
                    name="Operational phase",
                    starts_on=dt.date(2025, 5, 12),
                    ends_on=dt.date(2025, 5, 30),
                    accepts_reports=True,
                )
            ],
        )
        s.add(op)
        s.flush()
        for code, role in PARTICIPATION.items():
            s.add(Participant(operation_id=op.id, org_id=orgs[code].id, role=role))
        w = World(op=op, orgs=orgs)
        for name, org_code, role in ACTORS:
            org = orgs[org_code]
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
            w.actors[name] = Actor(user.email, role, org_code, raw, principal_for(user, org))
        s.commit()
        s.expunge_all()
    return w


def case_payload(reference: str = "FR-0001", **overrides: object) -> dict[str, object]:
    """A valid case for TEST-OP, as the API takes it."""
    body: dict[str, object] = {
        "reference": reference,
        "detected_on": "2025-05-14",
        "office": "Roissy express hub",
        "transport_mode": "AIR",
        "is_ecommerce": True,
        "channel": "EXPRESS",
        "departure_country": "HK",
        "origin_country": "CN",
        "destination_country": "FR",
        "transit_countries": ["AE"],
        "detection_method": "RISK_PROFILE",
        "concealment": "MISDECLARED",
        "platform_type": "MARKETPLACE",
        "platform_name": "shop.example",
        "consignee_name": "Jean Dupont",
        "notes": "pens declared as cosmetics",
        "seizures": [
            {
                "commodity_code": "MED-WEIGHT",
                "description": "semaglutide pens",
                "brand": "Brand X",
                "rights_holder": "Brand X Holdings",
                "hs_code": "300490",
                "pieces": 120,
                "weight_kg": "3.250",
                "value_amount": "9000.00",
                "currency": "EUR",
                "infringement_type": "TRADEMARK",
                "nature": "FALSIFIED",
            },
            {"commodity_code": "IPR-FOOT", "brand": "Runfast", "pieces": 12, "weight_kg": "9.6"},
        ],
    }
    body.update(overrides)
    return body


@pytest.fixture(autouse=True)
def _dashboard_reads_are_fresh(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests read the dashboard right after writing: no rebuild gap, and every rebuild before answering
    however long the last build took (on a loaded machine a build can pass SYNC_REBUILD_SECONDS and the
    stale summary would answer while a background thread rebuilds). Tests of those paths set them."""
    from stopnet.analytics import service

    monkeypatch.setattr(service, "REBUILD_GAP_SECONDS", 0.0)
    monkeypatch.setattr(service, "SYNC_REBUILD_SECONDS", math.inf)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark every test that touches the database ``db``: the PostgreSQL pass runs only those.

    Tests marked ``postgres_only`` (a PostgreSQL feature such as COPY) are deselected, never skipped,
    in the SQLite pass."""
    for item in items:
        if "database_url" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.db)
    if os.environ.get("STOPNET_TEST_BACKEND", "sqlite") != "postgres":
        drop = [i for i in items if i.get_closest_marker("postgres_only")]
        if drop:
            config.hook.pytest_deselected(items=drop)
            items[:] = [i for i in items if not i.get_closest_marker("postgres_only")]


# The live server and the one headless Chromium of the whole session, for every package's page and
# browser tests (Playwright's sync API allows one instance per thread: one session-scoped fixture).
from tests.pages import browser_page, chromium, live_server, screenshot_dir, signed_in  # noqa: E402, F401
