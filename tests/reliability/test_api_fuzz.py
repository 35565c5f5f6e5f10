"""Fuzzing of the JSON API against its own OpenAPI document (Schemathesis).

Every operation of ``/openapi.json`` (read from the application when the tests are collected, so new
routes are fuzzed without touching this file) is called with generated requests, each as every role of
the test world and without credentials. For every answer:

- never a server error (5xx);
- the status code is one the operation documents, and a documented body matches its schema (content
  type included);
- a request that breaks the schema (negative generation: wrong types, missing fields, out-of-range
  values) is refused (4xx), never accepted.

Bounded for CI: a few examples per operation (``STOPNET_FUZZ_EXAMPLES``, default 3), a fixed seed and
derandomized generation (the same requests every run), no example database. A longer run::

    STOPNET_FUZZ_EXAMPLES=100 STOPNET_TEST_BACKEND=sqlite .venv/bin/pytest -q tests/reliability/test_api_fuzz.py
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Iterator

import pytest
import schemathesis
from fastapi import FastAPI
from fastapi.testclient import TestClient
from hypothesis import HealthCheck
from hypothesis import settings as hsettings
from schemathesis import GenerationMode
from schemathesis.checks import (
    negative_data_rejection,
    not_a_server_error,
)
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from sqlalchemy import Engine

from stopnet.config import Settings
from stopnet.db.engine import make_sessionmaker
from stopnet.web.app import create_app
from tests.conftest import World, _empty_all, case_payload
from tests.conftest import world as world_fixture

EXAMPLES = int(os.environ.get("STOPNET_FUZZ_EXAMPLES", "3"))
SEED = int(os.environ.get("STOPNET_FUZZ_SEED", "20250512"))
# one actor of each role, then an anonymous caller
ROLES = ["admin", "coordinator", "fr_ncp", "fr_officer", "analyst_we", "partner", "rights_holder", None]
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    negative_data_rejection,
]


def _config() -> schemathesis.Config:
    return schemathesis.Config.from_dict(
        {
            "seed": SEED,
            "generation": {
                "max-examples": EXAMPLES,
                "deterministic": True,
                "database": "none",
                "mode": "all",
            },
            "phases": {
                "examples": {"enabled": True},
                "coverage": {"enabled": False},
                "fuzzing": {"enabled": True},
                "stateful": {"enabled": False},
            },
        }
    )


@pytest.fixture(scope="module")
def fuzz_world(engine: Engine) -> World:
    """One test world for every operation of the module (emptied and built once: on PostgreSQL that
    saves about a second per operation). What the fuzzing writes stays for the operations after it."""
    _empty_all(engine)
    return world_fixture.__wrapped__(make_sessionmaker(engine))  # type: ignore[attr-defined]


@pytest.fixture(scope="module")
def fuzz_app(
    database_url: str, tmp_path_factory: pytest.TempPathFactory, fuzz_world: World
) -> Iterator[FastAPI]:
    settings = Settings(
        database_url=database_url,
        data_dir=tmp_path_factory.mktemp("fuzz") / "var",
        secret_key="test-secret-key",
        feed_stream_seconds=0,  # a live feed answers its first heartbeat and ends
        feed_heartbeat_seconds=0.05,
    )
    application = create_app(settings)
    yield application
    hub = getattr(application.state, "feed_hub", None)  # started by the live-feed requests
    if hub is not None and hub.loop is not None and not hub.loop.is_closed():
        with contextlib.suppress(Exception):  # the loop may already be gone
            asyncio.run_coroutine_threadsafe(hub.stop(), hub.loop).result(timeout=5)
    application.state.engine.dispose()


def _schema() -> schemathesis.BaseSchema:
    """The OpenAPI document of the application as it is now (every route of every domain)."""
    blueprint = create_app(Settings(database_url="sqlite://", secret_key="schema-only"))
    try:
        return schemathesis.openapi.from_asgi("/openapi.json", blueprint, config=_config())
    finally:
        blueprint.state.engine.dispose()


schema = _schema()


@pytest.fixture(scope="module")
def known_ids(fuzz_app: FastAPI, fuzz_world: World) -> dict[str, object]:
    """Records that exist: the test operation, a case reported by the French officer, and a user who
    is none of the callers (so that deactivating or demoting it leaves the callers as they were)."""
    world = fuzz_world
    with TestClient(fuzz_app) as client:
        r = client.post(
            f"/api/v1/operations/{world.op.code}/cases",
            json=case_payload(),
            headers=world["fr_officer"].headers,
        )
        assert r.status_code == 201, r.text
    return {
        "code": world.op.code,
        "case_id": r.json()["id"],
        "user_id": world["xx_officer"].principal.user_id,
    }


def _with_known_ids(case: schemathesis.Case, known: dict[str, object]) -> None:
    """Point a valid request's path at records that exist, so that it gets past the 404 of an unknown
    operation or case and reaches validation, authorisation and the services. Requests generated to
    break the schema keep their path as generated."""
    meta = case.meta
    if meta is not None and meta.generation.mode is GenerationMode.NEGATIVE:
        return
    for name in set(case.path_parameters or {}) & set(known):
        case.path_parameters[name] = known[name]  # type: ignore[index]


@schema.parametrize()
@hsettings(suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
def test_api_conforms_to_its_schema_for_every_role(
    case: schemathesis.Case, fuzz_app: FastAPI, fuzz_world: World, known_ids: dict[str, object]
) -> None:
    world = fuzz_world
    _with_known_ids(case, known_ids)
    for role in ROLES:
        headers = world[role].headers if role else {}
        response = case.call(headers=headers, app=fuzz_app)
        case.validate_response(response, checks=CHECKS, headers=headers, transport_kwargs={"app": fuzz_app})
