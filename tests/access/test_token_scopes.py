"""Every route declares what an API token needs, and a token of each single scope gets exactly that.

A route declares its access once, in its decorator (``dependencies=[READ]``, ``WRITE``, ``SESSION_ONLY``,
``PUBLIC``, ...: web/deps.RouteAccess), and the declaration is checked in one place, when the token is
resolved. ``test_every_route_declares_its_access`` reads every route of the real application, so a route
without a declaration (or with another than the one below) fails. Then every route is called, as every
role the authorisation matrix allows on it, with a token of that role holding one scope, for each scope: the
token of the scope in ``EXPECTED`` is let through, every other one is refused with 403 (docs/permissions.md).
A role the matrix refuses stays refused with a token of the route's scope: a scope never replaces the role.
"""

from __future__ import annotations

import datetime as dt
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.routing import APIRoute, iter_route_contexts
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker

from stopnet.access.service import ALL_SCOPES, create_token
from stopnet.config import Settings
from stopnet.db.models import Organisation, User
from stopnet.web.app import create_app
from stopnet.web.deps import CurrentPrincipal, RouteAccess
from tests.conftest import _empty_all

from .authz_world import HTML, JSON, ROLE_ACTORS, ROLES, AuthzWorld, build, case_version
from .test_authorisation_matrix import BODIES, MATRIX, ROUTES, TARGETS

# Open to anyone: the sign-in steps, health, the API description, the published code lists.
PUBLIC_ROUTES = (
    "GET /api/docs",
    "GET /docs",
    "GET /redoc",
    "GET /favicon.ico",
    "GET /api/v1/import-template.csv",
    "GET /api/v1/reference",
    "GET /healthz",
    "GET /login",
    "POST /login",
    "GET /login/code",
    "POST /login/code",
    "GET /login/new-password",
    "POST /login/new-password",
    "GET /openapi.json",
)
# People signed in only: accounts, tokens, second factors, one's account, creating an operation, and
# every form of the pages, and the pages of the forms (a form carries the CSRF token of a session).
SESSION_ROUTES = (
    "GET /rights/requests/new",
    "GET /rights/guides/{guide_id}/edit",
    "GET /rights/guides/new",
    "GET /rights/brands/new",
    "GET /operations/{code}/import",
    "GET /cases/{case_id}/correct",
    "GET /operations/{code}/cases/new",
    "GET /account",
    "POST /account/email",
    "POST /account/password",
    "POST /account/recovery-codes",
    "POST /account/sign-out-everywhere",
    "GET /account/totp",
    "POST /account/totp",
    "POST /account/totp/disable",
    "GET /admin/tokens",
    "POST /admin/tokens",
    "POST /admin/tokens/{token_id}/revoke",
    "GET /admin/users",
    "POST /admin/users",
    "GET /admin/users/{user_id}",
    "POST /admin/users/{user_id}/active",
    "POST /admin/users/{user_id}/reset-password",
    "POST /admin/users/{user_id}/reset-totp",
    "POST /admin/users/{user_id}/role",
    "POST /admin/users/{user_id}/organisation",
    "POST /alerts/{alert_id}/ack",
    "POST /api/v1/operations",
    "GET /api/v1/tokens",
    "POST /api/v1/tokens",
    "GET /api/v1/tokens/{token_id}",
    "POST /api/v1/tokens/{token_id}/revoke",
    "GET /api/v1/users",
    "POST /api/v1/users",
    "GET /api/v1/users/{user_id}",
    "POST /api/v1/users/{user_id}/activate",
    "POST /api/v1/users/{user_id}/deactivate",
    "POST /api/v1/users/{user_id}/reset-password",
    "POST /api/v1/users/{user_id}/reset-totp",
    "POST /api/v1/users/{user_id}/role",
    "POST /api/v1/users/{user_id}/organisation",
    "POST /cases/{case_id}/correct",
    "POST /cases/{case_id}/thread/messages",
    "POST /cases/{case_id}/{action}",
    "POST /logout",
    "POST /operations/{code}/alerts",
    "POST /operations/{code}/cases/new",
    "POST /operations/{code}/import",
    "POST /operations/{code}/import/annotated",
    "POST /operations/{code}/targeting/consignments/{consignment_id}/inspection",
    "POST /operations/{code}/targeting/models/{version}/sharing",
    "POST /operations/{code}/targeting/proposals",
    "POST /operations/{code}/targeting/proposals/{proposal_id}/accept",
    "POST /operations/{code}/targeting/proposals/{proposal_id}/dismiss",
    "POST /operations/{code}/targeting/rules",
    "POST /operations/{code}/targeting/rules/{rule_id}/activate",
    "POST /operations/{code}/targeting/rules/{rule_id}/deactivate",
    "POST /operations/{code}/targeting/rules/{rule_id}/test",
    "POST /operations/{code}/targeting/rules/{rule_id}/versions",
    "POST /operations/{code}/targeting/selection",
    "POST /operations/{code}/threads",
    "POST /rights/brands/new",
    "POST /rights/brands/{brand_id}/contacts",
    "POST /rights/brands/{brand_id}/decision",
    "POST /rights/contacts/{contact_id}/confirm",
    "POST /rights/guides/new",
    "POST /rights/guides/{guide_id}/edit",
    "POST /rights/guides/{guide_id}/{action}",
    "POST /rights/operations/{code}/settings",
    "POST /rights/requests/new",
    "POST /rights/requests/{request_id}/{action}",
    "POST /threads/{thread_id}/messages",
    "POST /threads/{thread_id}/read",
)
# Reads of an operation's records: operations, cases and histories, dashboards, reports, the feed, alerts,
# conversations, rights-holder records, targeting data, and every page.
READ_ROUTES = (
    "GET /",
    "GET /alerts/{alert_id}",
    "GET /api/v1/alerts/{alert_id}",
    "GET /api/v1/attachments/{attachment_id}",
    "GET /api/v1/cases/{case_id}",
    "GET /api/v1/cases/{case_id}/history",
    "GET /api/v1/cases/{case_id}/thread",
    "GET /api/v1/operations",
    "GET /api/v1/operations/{code}",
    "GET /api/v1/operations/{code}/alerts",
    "GET /api/v1/operations/{code}/cases",
    "GET /api/v1/operations/{code}/dashboard",
    "GET /api/v1/operations/{code}/dashboard/brands",
    "GET /api/v1/operations/{code}/dashboard/channels",
    "GET /api/v1/operations/{code}/dashboard/commodities",
    "GET /api/v1/operations/{code}/dashboard/countries",
    "GET /api/v1/operations/{code}/dashboard/detection-methods",
    "GET /api/v1/operations/{code}/dashboard/key-figures",
    "GET /api/v1/operations/{code}/dashboard/progression",
    "GET /api/v1/operations/{code}/dashboard/regions",
    "GET /api/v1/operations/{code}/dashboard/routes",
    "GET /api/v1/operations/{code}/dashboard/therapeutic",
    "GET /api/v1/operations/{code}/dashboard/transport-modes",
    "GET /api/v1/operations/{code}/dashboard/trends",
    "GET /api/v1/operations/{code}/feed",
    "GET /api/v1/operations/{code}/reports/daily",
    "GET /api/v1/operations/{code}/reports/final",
    "GET /api/v1/operations/{code}/threads",
    "GET /api/v1/rights/attachments/{attachment_id}",
    "GET /api/v1/rights/brands",
    "GET /api/v1/rights/brands/{brand_id}",
    "GET /api/v1/rights/cases/{case_id}/verifications",
    "GET /api/v1/rights/guides",
    "GET /api/v1/rights/guides/{guide_id}",
    "GET /api/v1/rights/guides/{guide_id}/versions",
    "GET /api/v1/rights/operations/{code}/settings",
    "GET /api/v1/rights/outreach",
    "GET /api/v1/rights/requests",
    "GET /api/v1/rights/requests/{request_id}",
    "GET /api/v1/rights/seizures",
    "GET /api/v1/targeting/operations/{code}/consignments",
    "GET /api/v1/targeting/operations/{code}/consignments/{consignment_id}/score",
    "GET /api/v1/targeting/operations/{code}/models",
    "GET /api/v1/targeting/operations/{code}/performance",
    "GET /api/v1/targeting/operations/{code}/proposals",
    "GET /api/v1/targeting/operations/{code}/rules",
    "GET /api/v1/targeting/operations/{code}/rules/{rule_id}",
    "GET /api/v1/targeting/operations/{code}/rules/{rule_id}/performance",
    "GET /api/v1/targeting/operations/{code}/selections",
    "GET /api/v1/targeting/operations/{code}/selections/{selection_id}",
    "POST /api/v1/targeting/score",
    "GET /api/v1/threads/{thread_id}",
    "POST /api/v1/threads/{thread_id}/read",
    "GET /cases/{case_id}",
    "GET /cases/{case_id}/thread",
    "GET /operations/{code}",
    "GET /operations/{code}/alerts",
    "GET /operations/{code}/cases",
    "GET /operations/{code}/dashboard",
    "GET /operations/{code}/dashboard/{panel}",
    "GET /operations/{code}/live",
    "GET /operations/{code}/reports/daily",
    "GET /operations/{code}/reports/daily.pdf",
    "GET /operations/{code}/reports/final",
    "GET /operations/{code}/reports/final.pdf",
    "GET /operations/{code}/targeting",
    "GET /operations/{code}/targeting/performance",
    "GET /operations/{code}/targeting/proposals",
    "GET /operations/{code}/targeting/rules",
    "GET /operations/{code}/targeting/rules/{rule_id}",
    "GET /operations/{code}/targeting/selection",
    "GET /operations/{code}/threads",
    "GET /rights",
    "GET /rights/brands",
    "GET /rights/brands/{brand_id}",
    "GET /rights/cases/{case_id}",
    "GET /rights/guides",
    "GET /rights/guides/{guide_id}",
    "GET /rights/outreach",
    "GET /rights/requests",
    "GET /rights/requests/{request_id}",
    "GET /rights/seizures",
    "GET /threads/{thread_id}",
)
# Changes: reporting and correcting cases, alerts, messages, uploads, rights-holder records, targeting
# data; the personal-data retention (read and set) and purge.
WRITE_ROUTES = (
    "GET /api/v1/operations/{code}/data-protection",
    "POST /api/v1/alerts/{alert_id}/ack",
    "POST /api/v1/cases/{case_id}/corrections",
    "POST /api/v1/cases/{case_id}/submit",
    "POST /api/v1/cases/{case_id}/thread/messages",
    "POST /api/v1/operations/{code}/alerts",
    "POST /api/v1/operations/{code}/attachments",
    "POST /api/v1/operations/{code}/cases",
    "PUT /api/v1/operations/{code}/data-protection",
    "POST /api/v1/operations/{code}/data-protection/purge",
    "POST /api/v1/operations/{code}/threads",
    "POST /api/v1/rights/brands",
    "POST /api/v1/rights/brands/{brand_id}/contacts",
    "POST /api/v1/rights/brands/{brand_id}/decision",
    "DELETE /api/v1/rights/contacts/{contact_id}",
    "PUT /api/v1/rights/contacts/{contact_id}",
    "POST /api/v1/rights/contacts/{contact_id}/confirm",
    "POST /api/v1/rights/guides",
    "POST /api/v1/rights/guides/{guide_id}/attachments",
    "POST /api/v1/rights/guides/{guide_id}/publish",
    "POST /api/v1/rights/guides/{guide_id}/versions",
    "POST /api/v1/rights/guides/{guide_id}/withdraw",
    "PUT /api/v1/rights/operations/{code}/settings",
    "POST /api/v1/rights/requests",
    "POST /api/v1/rights/requests/{request_id}/answer",
    "POST /api/v1/rights/requests/{request_id}/attachments",
    "POST /api/v1/rights/requests/{request_id}/withdraw",
    "POST /api/v1/targeting/consignments",
    "POST /api/v1/targeting/operations/{code}/consignments/{consignment_id}/inspection",
    "POST /api/v1/targeting/operations/{code}/proposals",
    "POST /api/v1/targeting/operations/{code}/models/{version}/sharing",
    "POST /api/v1/targeting/operations/{code}/proposals/{proposal_id}/accept",
    "POST /api/v1/targeting/operations/{code}/proposals/{proposal_id}/dismiss",
    "POST /api/v1/targeting/operations/{code}/rules",
    "POST /api/v1/targeting/operations/{code}/rules/{rule_id}/activate",
    "POST /api/v1/targeting/operations/{code}/rules/{rule_id}/deactivate",
    "POST /api/v1/targeting/operations/{code}/rules/{rule_id}/test",
    "POST /api/v1/targeting/operations/{code}/rules/{rule_id}/versions",
    "POST /api/v1/targeting/operations/{code}/scoring",
    "POST /api/v1/targeting/operations/{code}/selections",
    "POST /api/v1/threads/{thread_id}/messages",
)
# Validating a case.
VALIDATE_ROUTES = ("POST /api/v1/cases/{case_id}/validate",)
# Bulk imports.
IMPORT_ROUTES = ("POST /api/v1/operations/{code}/imports", "POST /api/v1/operations/{code}/imports/annotated")
# Exports of cases and seizures.
EXPORT_ROUTES = (
    "GET /api/v1/operations/{code}/exports/cases.{fmt}",
    "GET /api/v1/operations/{code}/exports/seizures.{fmt}",
)
# The audit trail.
AUDIT_ROUTES = (
    "GET /api/v1/audit",
    "GET /audit",
)
EXPECTED: dict[str, str] = {
    **dict.fromkeys(PUBLIC_ROUTES, "public"),
    **dict.fromkeys(SESSION_ROUTES, "session"),
    **dict.fromkeys(READ_ROUTES, "cases:read"),
    **dict.fromkeys(WRITE_ROUTES, "cases:write"),
    **dict.fromkeys(VALIDATE_ROUTES, "cases:validate"),
    **dict.fromkeys(IMPORT_ROUTES, "import"),
    **dict.fromkeys(EXPORT_ROUTES, "export"),
    **dict.fromkeys(AUDIT_ROUTES, "audit:read"),
}


# --------------------------------------------------------------------------------------- declarations


def declared_access() -> dict[str, RouteAccess | None]:
    """``"METHOD /path"`` of every route of the real application, with the access its decorator declares
    (None: none, or more than one)."""
    with tempfile.TemporaryDirectory() as tmp:
        app = create_app(
            Settings(database_url=f"sqlite:///{tmp}/routes.db", data_dir=Path(tmp), secret_key="routes")
        )
        out: dict[str, RouteAccess | None] = {}
        for rc in iter_route_contexts(app.routes):
            if not isinstance(rc.original_route, APIRoute):
                continue  # FastAPI's own /openapi.json and /api/docs, and the static files
            declared = [d.call for d in rc.dependant.dependencies if isinstance(d.call, RouteAccess)]
            for method in sorted(rc.methods or ()):
                if method != "HEAD":
                    out[f"{method} {rc.path}"] = declared[0] if len(declared) == 1 else None
        app.state.engine.dispose()
        return out


def _name(access: RouteAccess) -> str:
    return "public" if access.public else access.scope or "session"


def test_every_route_has_an_expected_scope() -> None:
    """A new route must be added to one of the lists above (and a removed one deleted)."""
    assert not sorted(set(ROUTES) - set(EXPECTED)), sorted(set(ROUTES) - set(EXPECTED))
    assert not sorted(set(EXPECTED) - set(ROUTES)), sorted(set(EXPECTED) - set(ROUTES))
    assert set(EXPECTED.values()) == {"public", "session", *ALL_SCOPES}


def test_every_route_declares_its_access() -> None:
    declared = declared_access()
    missing = sorted(k for k, access in declared.items() if access is None)
    assert not missing, "routes that declare no access (or several):\n  " + "\n  ".join(missing)
    wrong = sorted(
        f"{k}: declares {_name(access)}, expected {EXPECTED.get(k)}"
        for k, access in declared.items()
        if access is not None and _name(access) != EXPECTED.get(k)
    )
    assert not wrong, "\n  ".join(wrong)


# --------------------------------------------------------------------------------------- calls

FRIDAY = dt.datetime(2025, 5, 16, 10, 0, tzinfo=dt.UTC)


class Tokens:
    """One token per (actor, scope), made on first use: the actor's organisation, role and user."""

    def __init__(self, sessions: sessionmaker[Session], aw: AuthzWorld) -> None:
        self.sessions, self.aw = sessions, aw  # the app's sessions: they carry its audit keys
        self.raw: dict[tuple[str, str], str] = {}

    def __call__(self, actor: str, scope: str) -> str:
        if (actor, scope) not in self.raw:
            a = self.aw.world[actor]
            with self.sessions() as s:
                user = s.scalar(select(User).where(User.email == a.email))
                assert user is not None
                org = s.get_one(Organisation, user.org_id)
                _, raw = create_token(s, None, org, f"{actor} {scope}", user.role, frozenset({scope}), user)
                s.commit()
            self.raw[(actor, scope)] = raw
        return self.raw[(actor, scope)]


@pytest.fixture(scope="module")
def scoped(
    database_url: str, engine: Engine, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[TestClient, AuthzWorld, Tokens]]:
    settings = Settings(
        database_url=database_url,
        data_dir=tmp_path_factory.mktemp("scopes-var"),
        secret_key="scopes-secret-key",
        feed_stream_seconds=0,
        feed_heartbeat_seconds=0.05,
        token_requests_per_minute=100_000,
    )
    app = create_app(settings)
    app.state.clock = lambda: FRIDAY
    try:
        with TestClient(app) as client:
            aw = build(engine, client)
            yield client, aw, Tokens(app.state.sessionmaker, aw)
    finally:
        app.state.engine.dispose()
        _empty_all(engine)


def caller(key: str) -> tuple[str, str]:
    """A target and a role the authorisation matrix lets call ``key`` (the first found)."""
    for target, expect in MATRIX[key].items():
        for role in ROLES:
            if ROLE_ACTORS[role] is not None and expect[role] in ("allow", "public"):
                return target, role
    raise AssertionError(f"nobody may call {key}")


def call(client: TestClient, aw: AuthzWorld, key: str, target: str, raw: str) -> tuple[int, str]:
    """Call route ``key`` (filled for ``target``) with the API token ``raw`` and no cookie."""
    from .test_authorisation_matrix import fill

    method, template = key.split(" ", 1)
    headers = {**(JSON if template.startswith("/api/") else HTML), "Authorization": f"Bearer {raw}"}
    client.cookies.clear()
    kwargs: dict[str, Any] = BODIES[key](aw) if key in BODIES else {}
    if key == "POST /cases/{case_id}/{action}":
        kwargs = {"data": {"expected_version": str(case_version(aw, TARGETS[target]["case_id"]))}}
    path = fill(key, target, aw)
    if key == "GET /api/v1/operations/{code}/feed":
        with client.stream(method, path, headers=headers) as r:  # the stream ends by itself
            return r.status_code, r.read().decode() if r.status_code != 200 else ""
    r = client.request(method, path, headers=headers, follow_redirects=False, **kwargs)
    return r.status_code, r.text


def _params() -> list[Any]:
    """Per route, target and role the matrix allows: a token of each scope. Per role it refuses: a token
    of the route's own scope (a scope never stands in for the role). Reads first, as in the matrix."""
    out = []
    for key in sorted(EXPECTED, key=lambda k: (not k.startswith("GET "), k)):
        if key not in ROUTES or key not in MATRIX:
            continue  # FastAPI's own routes (in no matrix) or reported by test_every_route_has_...
        for target, expect in MATRIX[key].items():
            for role in ROLES:
                if ROLE_ACTORS[role] is None:
                    continue
                allowed = expect[role] in ("allow", "public")
                for scope in sorted(ALL_SCOPES) if allowed else [s for s in ALL_SCOPES if s == EXPECTED[key]]:
                    where = f" [{target}]" if target else ""
                    out.append(
                        pytest.param(key, target, role, scope, id=f"{key}{where} as {role} with {scope}")
                    )
    return out


def token_refusal(status: int, text: str) -> bool:
    return status == 403 and "API token" in text


def refused(status: int) -> bool:
    return status in (401, 403, 404)


@pytest.mark.parametrize(("key", "target", "role", "scope"), _params())
def test_route_with_a_single_scope_token(
    scoped: tuple[TestClient, AuthzWorld, Tokens], key: str, target: str, role: str, scope: str
) -> None:
    client, aw, tokens = scoped
    actor = ROLE_ACTORS[role]
    assert actor is not None
    status, text = call(client, aw, key, target, tokens(actor, scope))
    what = f"{key} [{target}] as {role} with a token of {scope}: {status} {text[:300]}"
    assert status < 500, what
    expected = EXPECTED[key]
    role_allowed = MATRIX[key][target][role] in ("allow", "public")
    if expected == "public":
        assert not token_refusal(status, text), what
    elif not role_allowed:
        assert refused(status), "the role should be refused whatever the scope: " + what
    elif expected == scope:
        assert not refused(status), "should be allowed: " + what
    else:
        assert token_refusal(status, text), "should be refused for the scope: " + what


def test_a_route_that_declares_nothing_refuses_tokens(app: Any, client: TestClient, world: Any) -> None:
    """Fail closed: a route added without a declaration takes sessions only, never a token."""

    @app.get("/api/v1/undeclared")
    def undeclared(principal: CurrentPrincipal) -> dict[str, str]:
        return {"org": principal.org_code}

    r = client.get("/api/v1/undeclared", headers=world["fr_officer"].headers)
    assert r.status_code == 403 and "does not take API tokens" in r.json()["detail"], r.text
