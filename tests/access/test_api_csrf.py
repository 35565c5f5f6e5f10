"""A change made with the session cookie must come from this site, on every state-changing route.

The routes are read from the real application. Each POST, PUT, PATCH and DELETE is called as a role the
authorisation matrix allows on it, with that role's session cookie, as a page of another site would:

* with no CSRF token (no ``X-CSRF-Token`` header on the API, no ``csrf_token`` field on a form), and no
  ``Origin`` (a client that hides it) — refused, nothing written;
* with another site's ``Origin`` (what a browser sends with a cross-site form) — refused, nothing written,
  on the API even with the session's token.

Bodies are the matrix's, so the same call with the token is allowed (test_authorisation_matrix.py); a call
with this site's ``Origin`` and with an API token instead of the cookie goes through (below).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from stopnet.config import Settings
from stopnet.db.models import Base, User
from stopnet.web.app import create_app
from stopnet.web.sessions import COOKIE
from tests.conftest import _empty_all

from .authz_world import HTML, JSON, ROLE_ACTORS, AuthzWorld, build, case_version, csrf_for, session_cookie
from .test_authorisation_matrix import BODIES, ROUTES, TARGETS, WRITE_METHODS, fill
from .test_token_scopes import caller

FOREIGN = "https://stopnet.attacker.example"
WRITES = sorted(k for k in ROUTES if k.split(" ", 1)[0] in WRITE_METHODS)
FRIDAY = dt.datetime(2025, 5, 16, 10, 0, tzinfo=dt.UTC)


@pytest.fixture(scope="module")
def site(
    database_url: str, engine: Engine, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[TestClient, AuthzWorld]]:
    settings = Settings(
        database_url=database_url,
        data_dir=tmp_path_factory.mktemp("csrf-var"),
        secret_key="csrf-secret-key",
        feed_stream_seconds=0,
    )
    app = create_app(settings)
    app.state.clock = lambda: FRIDAY
    try:
        with TestClient(app) as client:
            yield client, build(engine, client)
    finally:
        app.state.engine.dispose()
        _empty_all(engine)


def rows(engine: Engine) -> dict[str, int]:
    """The number of rows of every table: a refused change adds and deletes nothing (nor audits)."""
    with Session(engine) as s:
        return {
            t.name: s.scalar(select(func.count()).select_from(t)) or 0 for t in Base.metadata.sorted_tables
        }


def cross_site(
    client: TestClient, aw: AuthzWorld, key: str, *, origin: str | None, with_token: bool = False
) -> Any:
    """Call ``key`` with the session cookie of a role allowed on it, as another site's page would."""
    method, template = key.split(" ", 1)
    target, role = caller(key)
    actor = ROLE_ACTORS[role]
    assert actor is not None
    client.cookies.clear()
    cookie = session_cookie(client, aw.engine, aw.world[actor])
    client.cookies.set(COOKIE, cookie)
    is_page = not template.startswith("/api/")
    headers = dict(HTML if is_page else JSON)
    if origin:
        headers["Origin"] = origin
    if with_token and not is_page:
        headers["X-CSRF-Token"] = csrf_for(client, cookie)
    kwargs: dict[str, Any] = BODIES[key](aw) if key in BODIES else {}
    if key == "POST /cases/{case_id}/{action}":
        kwargs = {"data": {"expected_version": str(case_version(aw, TARGETS[target]["case_id"]))}}
    return client.request(method, fill(key, target, aw), headers=headers, follow_redirects=False, **kwargs)


def csrf_refusal(key: str, r: Any) -> bool:
    if key.startswith(
        "POST /login"
    ):  # sign-in steps use their own tokens and pending cookie, not the session
        return r.status_code in (401, 403)
    return r.status_code == 403 and ("CSRF" in r.text or "another site" in r.text)


def test_there_are_state_changing_routes_of_every_kind() -> None:
    assert len(WRITES) > 90
    for key in (
        "POST /api/v1/users/{user_id}/deactivate",
        "POST /api/v1/tokens/{token_id}/revoke",
        "POST /api/v1/operations/{code}/data-protection/purge",
        "DELETE /api/v1/rights/contacts/{contact_id}",
        "POST /api/v1/alerts/{alert_id}/ack",
        "POST /api/v1/operations/{code}/imports",
    ):
        assert key in WRITES, key


@pytest.mark.parametrize("key", WRITES)
def test_a_cross_site_change_with_the_session_cookie_is_refused(
    site: tuple[TestClient, AuthzWorld], key: str
) -> None:
    client, aw = site
    before = rows(aw.engine)
    for origin, with_token in ((None, False), (FOREIGN, False), (FOREIGN, True), ("null", False)):
        r = cross_site(client, aw, key, origin=origin, with_token=with_token)
        what = f"{key} with Origin {origin}, token {with_token}: {r.status_code} {r.text[:300]}"
        assert csrf_refusal(key, r), "should be refused: " + what
    assert rows(aw.engine) == before, key


def test_this_sites_origin_or_the_token_lets_a_body_less_change_through(
    site: tuple[TestClient, AuthzWorld],
) -> None:
    """A browser on this site sends its Origin; a script may send the token instead."""
    client, aw = site
    key = "POST /api/v1/users/{user_id}/deactivate"
    r = cross_site(client, aw, key, origin="http://testserver")
    assert r.status_code == 200 and r.json()["is_active"] is False, r.text
    r = cross_site(client, aw, "POST /api/v1/users/{user_id}/activate", origin=None, with_token=True)
    assert r.status_code == 200 and r.json()["is_active"] is True, r.text


def test_api_tokens_need_no_csrf_token_nor_origin(site: tuple[TestClient, AuthzWorld]) -> None:
    """A bearer token is not sent by a browser on its own: no CSRF check, whatever the Origin."""
    client, aw = site
    client.cookies.clear()
    alert = aw.ids["alert"]
    for origin in (None, FOREIGN):
        headers = {**aw.world["fr_officer"].headers, **({"Origin": origin} if origin else {})}
        r = client.post(f"/api/v1/alerts/{alert}/ack", headers=headers)
        assert r.status_code == 200, r.text
    with Session(aw.engine) as s:
        assert s.scalar(select(User.is_active).where(User.id == aw.ids["user_fr_spare"])) is True
