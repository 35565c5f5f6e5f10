"""Every route of the application, called by a user of every role, is allowed or refused as documented.

The routes are read from the real application (``create_app().routes``): a route that the matrix below does
not classify fails ``test_every_route_is_classified``, so a new route cannot ship without a decision on
who may call it. Each route is then called once per role (and per target where the answer depends on the
record: a case of one's own administration, a case of another administration restricted to it, ...):

* ``deny``: the answer is a refusal, 401 (not signed in), 403 (not allowed) or 404 (not revealed);
  an HTML page may instead send the visitor to the sign-in page;
* ``allow``: the answer is anything but a refusal or a server error (a write may still answer 409 or
  422 for the state or the body, which are decided after the permission).

Roles act as signed-in people (a session cookie and, on forms, its CSRF token), as in a browser; the API
accepts the same session (a change with its CSRF token in ``X-CSRF-Token``). The roles are played by the users of tests/conftest.py's world: the contact
point and the officer belong to FR-CUS, the analyst to RILO Western Europe (region EUR, as France).
The permissions are those of docs/permissions.md and docs/rights-holders.md.
"""

from __future__ import annotations

import datetime as dt
import inspect
import re
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi.routing import APIRoute, iter_route_contexts
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from starlette.routing import Route

from stopnet.config import Settings
from stopnet.db.models import Role
from stopnet.simulate import seed
from stopnet.web.app import create_app
from stopnet.web.sessions import COOKIE
from tests.conftest import PASSWORD, _empty_all, case_payload

from .authz_world import (
    HTML,
    JSON,
    PNG,
    ROLE_ACTORS,
    ROLES,
    AuthzWorld,
    build,
    case_version,
    consignments,
    csrf_for,
    session_cookie,
)

WRITE_METHODS = ("POST", "PUT", "PATCH", "DELETE")


# --------------------------------------------------------------------------------------- the routes


def app_routes() -> dict[str, str]:
    """``"METHOD /path"`` of every HTTP route of the real application, with the endpoint's module."""
    with tempfile.TemporaryDirectory() as tmp:
        app = create_app(
            Settings(database_url=f"sqlite:///{tmp}/routes.db", data_dir=Path(tmp), secret_key="routes")
        )
        out: dict[str, str] = {}
        for rc in iter_route_contexts(app.routes):
            route = rc.original_route
            if not isinstance(route, APIRoute | Route):
                continue  # the static files mount
            for method in sorted(rc.methods or ()):
                if method == "HEAD":
                    continue
                endpoint = rc.endpoint
                out[f"{method} {rc.path}"] = getattr(endpoint, "__module__", "")
        app.state.engine.dispose()
        return out


ROUTES = app_routes()


# --------------------------------------------------------------------------------------- the matrix

Expect = dict[str, str]  # role -> "allow" | "deny"


def allow(*roles: str) -> Expect:
    unknown = set(roles) - set(ROLES)
    assert not unknown, unknown
    return {r: "allow" if r in roles else "deny" for r in ROLES}


PUBLIC = allow(*ROLES)
SIGNED_IN = allow(*(r for r in ROLES if r != "anonymous"))
NOBODY = allow()
CUSTOMS = allow("contact_point", "officer")  # of FR-CUS, the reporting administration of the FR records
NOT_HOLDERS = allow("admin", "coordinator", "analyst", "contact_point", "officer", "partner")
COORDINATING = allow("admin", "coordinator")
ACCOUNTS = allow("admin", "contact_point")  # FR's contact point manages FR's officers and tokens
HOLDER = allow("rights_holder")
TARGETERS = allow("admin", "coordinator", "contact_point", "officer")
# The sign-in steps authenticate the visitor themselves (their own CSRF and pending cookies): nobody is
# refused for not being signed in; tests/access/test_account.py and test_totp.py test them.
SIGN_IN_STEP = {r: "public" for r in ROLES}

# Readers of a case, by the case (docs/permissions.md): FR-CUS's shared case is read by the coordinating
# unit, participating administrations and RILO Western Europe, not by the partner agency (participants
# only) nor the rights holder; DE-CUS's case restricted to itself by nobody here; DE-CUS's case shared with
# partners also by INTERPOL; FR-CUS's draft by FR-CUS only.
CASE_READ = {
    "own case": allow("admin", "coordinator", "analyst", "contact_point", "officer"),
    "restricted case of DE": NOBODY,
    "partners case of DE": allow("admin", "coordinator", "analyst", "contact_point", "officer", "partner"),
    "draft": CUSTOMS,
}
CASE_THREAD = {"own case": CASE_READ["own case"], "restricted case of DE": NOBODY}
ONE_ACCOUNT = {"officer of FR": ACCOUNTS, "officer of DE": allow("admin")}


def one(expect: Expect) -> dict[str, Expect]:
    return {"": expect}


DASHBOARD_PANELS = (
    "key-figures",
    "progression",
    "regions",
    "countries",
    "commodities",
    "therapeutic",
    "transport-modes",
    "channels",
    "detection-methods",
    "routes",
    "brands",
    "trends",
)

MATRIX: dict[str, dict[str, Expect]] = {
    # ---------------------------------------------------------------- public
    "GET /openapi.json": one(PUBLIC),
    "GET /api/docs": one(PUBLIC),  # redirects to /docs
    "GET /docs": one(PUBLIC),  # the API reference: Swagger UI
    "GET /redoc": one(PUBLIC),  # the API reference: ReDoc
    "GET /favicon.ico": one(PUBLIC),
    "GET /healthz": one(PUBLIC),
    "GET /api/v1/reference": one(PUBLIC),  # published code lists and taxonomy
    "GET /api/v1/import-template.csv": one(PUBLIC),
    "GET /login": one(SIGN_IN_STEP),
    "POST /login": one(SIGN_IN_STEP),
    "GET /login/code": one(SIGN_IN_STEP),
    "POST /login/code": one(SIGN_IN_STEP),
    "GET /login/new-password": one(SIGN_IN_STEP),
    "POST /login/new-password": one(SIGN_IN_STEP),
    # ---------------------------------------------------------------- operations and cases
    "GET /api/v1/operations": one(SIGNED_IN),  # the operations one's organisation takes part in
    "POST /api/v1/operations": one(COORDINATING),
    "GET /api/v1/operations/{code}": one(SIGNED_IN),
    "GET /api/v1/operations/{code}/cases": one(SIGNED_IN),  # filtered by case_read_clause
    "POST /api/v1/operations/{code}/cases": one(CUSTOMS),
    "POST /api/v1/operations/{code}/imports": one(CUSTOMS),
    "POST /api/v1/operations/{code}/imports/annotated": one(CUSTOMS),
    "GET /api/v1/cases/{case_id}": CASE_READ,
    "GET /api/v1/cases/{case_id}/history": CASE_READ,
    "POST /api/v1/cases/{case_id}/corrections": {"draft": CUSTOMS, "restricted case of DE": NOBODY},
    "POST /api/v1/cases/{case_id}/submit": {"draft": CUSTOMS, "restricted case of DE": NOBODY},
    "POST /api/v1/cases/{case_id}/validate": {
        "submitted": allow("coordinator", "contact_point"),
        "restricted case of DE": NOBODY,
    },
    "GET /": one(SIGNED_IN),
    "GET /operations/{code}": one(SIGNED_IN),
    "GET /operations/{code}/cases": one(SIGNED_IN),
    "GET /operations/{code}/cases/new": one(CUSTOMS),
    "POST /operations/{code}/cases/new": one(CUSTOMS),
    "GET /cases/{case_id}": CASE_READ,
    "GET /cases/{case_id}/correct": {"draft": CUSTOMS, "restricted case of DE": NOBODY},
    "POST /cases/{case_id}/correct": {"draft": CUSTOMS, "restricted case of DE": NOBODY},
    "POST /cases/{case_id}/{action}": {  # submit, validate
        "draft": CUSTOMS,
        "submitted": allow("coordinator", "contact_point"),
        "restricted case of DE": NOBODY,
    },
    "GET /operations/{code}/import": one(CUSTOMS),
    "POST /operations/{code}/import": one(CUSTOMS),
    "POST /operations/{code}/import/annotated": one(CUSTOMS),
    # ---------------------------------------------------------------- accounts, tokens, audit
    "GET /api/v1/users": one(ACCOUNTS),
    "POST /api/v1/users": one(ACCOUNTS),
    "GET /api/v1/users/{user_id}": ONE_ACCOUNT,
    "POST /api/v1/users/{user_id}/role": {"officer of FR": allow("admin"), "officer of DE": allow("admin")},
    "POST /api/v1/users/{user_id}/organisation": {
        "officer of FR": allow("admin"),
        "officer of DE": allow("admin"),
    },
    "POST /api/v1/users/{user_id}/deactivate": ONE_ACCOUNT,
    "POST /api/v1/users/{user_id}/activate": ONE_ACCOUNT,
    "POST /api/v1/users/{user_id}/reset-password": ONE_ACCOUNT,
    "POST /api/v1/users/{user_id}/reset-totp": ONE_ACCOUNT,
    "GET /api/v1/tokens": one(ACCOUNTS),
    "POST /api/v1/tokens": one(ACCOUNTS),
    "GET /api/v1/tokens/{token_id}": ONE_ACCOUNT,
    "POST /api/v1/tokens/{token_id}/revoke": ONE_ACCOUNT,
    "GET /admin/users": one(ACCOUNTS),
    "POST /admin/users": one(ACCOUNTS),
    "GET /admin/users/{user_id}": ONE_ACCOUNT,
    "POST /admin/users/{user_id}/role": {"officer of FR": allow("admin"), "officer of DE": allow("admin")},
    "POST /admin/users/{user_id}/organisation": {
        "officer of FR": allow("admin"),
        "officer of DE": allow("admin"),
    },
    "POST /admin/users/{user_id}/active": ONE_ACCOUNT,
    "POST /admin/users/{user_id}/reset-password": ONE_ACCOUNT,
    "POST /admin/users/{user_id}/reset-totp": ONE_ACCOUNT,
    "GET /admin/tokens": one(ACCOUNTS),
    "POST /admin/tokens": one(ACCOUNTS),
    "POST /admin/tokens/{token_id}/revoke": ONE_ACCOUNT,
    "GET /account": one(SIGNED_IN),
    "POST /account/password": one(SIGNED_IN),
    "POST /account/email": one(SIGNED_IN),
    "GET /account/totp": one(SIGNED_IN),
    "POST /account/totp": one(SIGNED_IN),
    "POST /account/totp/disable": one(SIGNED_IN),
    "POST /account/recovery-codes": one(SIGNED_IN),
    "POST /account/sign-out-everywhere": one(SIGNED_IN),
    "POST /logout": one(SIGNED_IN),
    "GET /api/v1/audit": one(COORDINATING),
    "GET /audit": one(COORDINATING),
    # ---------------------------------------------------------------- dashboard (figures of readable cases;
    # rights holders see zeros: docs/dashboard.md)
    "GET /api/v1/operations/{code}/dashboard": one(SIGNED_IN),
    **{f"GET /api/v1/operations/{{code}}/dashboard/{p}": one(SIGNED_IN) for p in DASHBOARD_PANELS},
    "GET /operations/{code}/dashboard": one(SIGNED_IN),
    "GET /operations/{code}/dashboard/{panel}": one(SIGNED_IN),
    # ---------------------------------------------------------------- live feed, alerts, messages
    # (docs/live-feed.md: alerts are published by coordinators, analysts and admins, never sent to rights
    # holders, acknowledged by recipients; rights holders take no part in conversations)
    "GET /api/v1/operations/{code}/feed": one(SIGNED_IN),  # events filtered per subscriber
    "GET /operations/{code}/live": one(SIGNED_IN),
    "POST /api/v1/operations/{code}/attachments": one(NOT_HOLDERS),
    "GET /api/v1/attachments/{attachment_id}": one(CUSTOMS),  # FR's upload, not yet posted
    "GET /api/v1/operations/{code}/alerts": one(SIGNED_IN),  # the alerts one may read (none for holders)
    "POST /api/v1/operations/{code}/alerts": one(allow("admin", "coordinator", "analyst")),
    "GET /api/v1/alerts/{alert_id}": one(NOT_HOLDERS),
    "POST /api/v1/alerts/{alert_id}/ack": one(allow("analyst", "contact_point", "officer", "partner")),
    "GET /operations/{code}/alerts": one(SIGNED_IN),
    "POST /operations/{code}/alerts": one(allow("admin", "coordinator", "analyst")),
    "GET /alerts/{alert_id}": one(NOT_HOLDERS),
    "POST /alerts/{alert_id}/ack": one(allow("analyst", "contact_point", "officer", "partner")),
    "GET /api/v1/operations/{code}/threads": one(SIGNED_IN),  # empty for holders
    "POST /api/v1/operations/{code}/threads": one(NOT_HOLDERS),
    "GET /api/v1/threads/{thread_id}": one(NOT_HOLDERS),
    "POST /api/v1/threads/{thread_id}/messages": one(NOT_HOLDERS),
    "POST /api/v1/threads/{thread_id}/read": one(NOT_HOLDERS),
    "GET /api/v1/cases/{case_id}/thread": CASE_THREAD,
    "POST /api/v1/cases/{case_id}/thread/messages": CASE_THREAD,
    "GET /operations/{code}/threads": one(SIGNED_IN),
    "POST /operations/{code}/threads": one(NOT_HOLDERS),
    "GET /threads/{thread_id}": one(NOT_HOLDERS),
    "POST /threads/{thread_id}/messages": one(NOT_HOLDERS),
    "POST /threads/{thread_id}/read": one(NOT_HOLDERS),
    "GET /cases/{case_id}/thread": CASE_THREAD,
    "POST /cases/{case_id}/thread/messages": CASE_THREAD,
    # ---------------------------------------------------------------- rights holders (docs/rights-holders.md)
    "GET /api/v1/rights/brands": one(SIGNED_IN),
    "POST /api/v1/rights/brands": one(HOLDER),
    "GET /api/v1/rights/brands/{brand_id}": one(SIGNED_IN),  # approved
    "POST /api/v1/rights/brands/{brand_id}/decision": one(COORDINATING),
    "POST /api/v1/rights/brands/{brand_id}/contacts": one(HOLDER),
    "PUT /api/v1/rights/contacts/{contact_id}": one(HOLDER),
    "POST /api/v1/rights/contacts/{contact_id}/confirm": one(HOLDER),
    "DELETE /api/v1/rights/contacts/{contact_id}": {"spare contact": HOLDER},
    "GET /api/v1/rights/guides": one(SIGNED_IN),
    "POST /api/v1/rights/guides": one(HOLDER),
    "GET /api/v1/rights/guides/{guide_id}": one(SIGNED_IN),  # published
    "GET /api/v1/rights/guides/{guide_id}/versions": one(SIGNED_IN),
    "POST /api/v1/rights/guides/{guide_id}/versions": one(HOLDER),
    "POST /api/v1/rights/guides/{guide_id}/publish": one(HOLDER),
    "POST /api/v1/rights/guides/{guide_id}/withdraw": {"spare guide": HOLDER},
    "POST /api/v1/rights/guides/{guide_id}/attachments": one(HOLDER),
    "GET /api/v1/rights/attachments/{attachment_id}": one(SIGNED_IN),  # a photo of the published guide
    "GET /api/v1/rights/requests": one(SIGNED_IN),  # filtered: none for analysts and partners
    "POST /api/v1/rights/requests": one(CUSTOMS),
    "GET /api/v1/rights/requests/{request_id}": one(
        allow("admin", "coordinator", "contact_point", "officer", "rights_holder")
    ),
    "POST /api/v1/rights/requests/{request_id}/answer": one(HOLDER),
    "POST /api/v1/rights/requests/{request_id}/withdraw": {"spare request": CUSTOMS},
    "POST /api/v1/rights/requests/{request_id}/attachments": one(CUSTOMS),
    "GET /api/v1/rights/cases/{case_id}/verifications": {
        "own case": CASE_READ["own case"],
        "restricted case of DE": NOBODY,
    },
    "GET /api/v1/rights/operations/{code}/settings": one(SIGNED_IN),
    "PUT /api/v1/rights/operations/{code}/settings": one(COORDINATING),
    "GET /api/v1/rights/seizures": one(HOLDER),
    "GET /api/v1/rights/outreach": one(
        allow("admin", "coordinator", "contact_point", "officer", "rights_holder")
    ),
    "GET /rights": one(SIGNED_IN),
    "GET /rights/brands": one(SIGNED_IN),
    "GET /rights/brands/new": one(HOLDER),
    "POST /rights/brands/new": one(HOLDER),
    "GET /rights/brands/{brand_id}": one(SIGNED_IN),
    "POST /rights/brands/{brand_id}/decision": one(COORDINATING),
    "POST /rights/brands/{brand_id}/contacts": one(HOLDER),
    "POST /rights/contacts/{contact_id}/confirm": one(HOLDER),
    "GET /rights/guides": one(SIGNED_IN),
    "GET /rights/guides/new": one(HOLDER),
    "POST /rights/guides/new": one(HOLDER),
    "GET /rights/guides/{guide_id}": one(SIGNED_IN),
    "GET /rights/guides/{guide_id}/edit": one(HOLDER),
    "POST /rights/guides/{guide_id}/edit": one(HOLDER),
    "POST /rights/guides/{guide_id}/{action}": {"": HOLDER, "spare guide": HOLDER},  # publish, withdraw
    "GET /rights/requests": one(SIGNED_IN),
    "GET /rights/requests/new": one(CUSTOMS),
    "POST /rights/requests/new": one(CUSTOMS),
    "GET /rights/requests/{request_id}": one(
        allow("admin", "coordinator", "contact_point", "officer", "rights_holder")
    ),
    "POST /rights/requests/{request_id}/{action}": {"": HOLDER, "spare request": CUSTOMS},  # answer, withdraw
    "GET /rights/cases/{case_id}": {"own case": CASE_READ["own case"], "restricted case of DE": NOBODY},
    "GET /rights/seizures": one(HOLDER),
    "GET /rights/outreach": one(allow("admin", "coordinator", "contact_point", "officer", "rights_holder")),
    "POST /rights/operations/{code}/settings": one(COORDINATING),
    # ---------------------------------------------------------------- reports and exports (src/stopnet/reports):
    # figures and rows of the cases the caller may read; rights holders export their brands' seizures only
    "GET /api/v1/operations/{code}/reports/daily": one(SIGNED_IN),
    "GET /api/v1/operations/{code}/reports/final": one(SIGNED_IN),
    "GET /operations/{code}/reports/daily": one(SIGNED_IN),
    "GET /operations/{code}/reports/daily.pdf": one(SIGNED_IN),
    "GET /operations/{code}/reports/final": one(SIGNED_IN),
    "GET /operations/{code}/reports/final.pdf": one(SIGNED_IN),
    "GET /api/v1/operations/{code}/exports/cases.{fmt}": one(NOT_HOLDERS),
    "GET /api/v1/operations/{code}/exports/seizures.{fmt}": one(SIGNED_IN),
    # ---------------------------------------------------------------- risk targeting (src/stopnet/targeting:
    # customs administrations their own data, the coordinating unit every administration's; never analysts,
    # partners or rights holders). The records are FR-CUS's.
    **{
        key: one(TARGETERS)
        for key in (
            "POST /api/v1/targeting/consignments",
            "POST /api/v1/targeting/score",
            "GET /api/v1/targeting/operations/{code}/consignments",
            "GET /api/v1/targeting/operations/{code}/consignments/{consignment_id}/score",
            "GET /api/v1/targeting/operations/{code}/models",
            "GET /api/v1/targeting/operations/{code}/performance",
            "GET /api/v1/targeting/operations/{code}/proposals",
            "POST /api/v1/targeting/operations/{code}/proposals",
            "POST /api/v1/targeting/operations/{code}/proposals/{proposal_id}/accept",
            "GET /api/v1/targeting/operations/{code}/rules",
            "POST /api/v1/targeting/operations/{code}/rules",
            "GET /api/v1/targeting/operations/{code}/rules/{rule_id}",
            "GET /api/v1/targeting/operations/{code}/rules/{rule_id}/performance",
            "POST /api/v1/targeting/operations/{code}/rules/{rule_id}/activate",
            "POST /api/v1/targeting/operations/{code}/rules/{rule_id}/deactivate",
            "POST /api/v1/targeting/operations/{code}/rules/{rule_id}/test",
            "POST /api/v1/targeting/operations/{code}/rules/{rule_id}/versions",
            "POST /api/v1/targeting/operations/{code}/scoring",
            "GET /api/v1/targeting/operations/{code}/selections",
            "POST /api/v1/targeting/operations/{code}/selections",
            "GET /api/v1/targeting/operations/{code}/selections/{selection_id}",
            "GET /operations/{code}/targeting",
            "GET /operations/{code}/targeting/performance",
            "GET /operations/{code}/targeting/proposals",
            "POST /operations/{code}/targeting/proposals",
            "POST /operations/{code}/targeting/proposals/{proposal_id}/accept",
            "GET /operations/{code}/targeting/rules",
            "POST /operations/{code}/targeting/rules",
            "GET /operations/{code}/targeting/rules/{rule_id}",
            "POST /operations/{code}/targeting/rules/{rule_id}/activate",
            "POST /operations/{code}/targeting/rules/{rule_id}/deactivate",
            "POST /operations/{code}/targeting/rules/{rule_id}/test",
            "POST /operations/{code}/targeting/rules/{rule_id}/versions",
            "GET /operations/{code}/targeting/selection",
            "POST /operations/{code}/targeting/selection",
        )
    },
    "POST /api/v1/targeting/operations/{code}/proposals/{proposal_id}/dismiss": {"spare proposal": TARGETERS},
    "POST /operations/{code}/targeting/proposals/{proposal_id}/dismiss": {"spare proposal": TARGETERS},
    # FR-CUS's risk model: shared by the coordinating unit or FR's contact point (not an officer)
    "POST /api/v1/targeting/operations/{code}/models/{version}/sharing": one(
        allow("admin", "coordinator", "contact_point")
    ),
    "POST /operations/{code}/targeting/models/{version}/sharing": one(
        allow("admin", "coordinator", "contact_point")
    ),
    # personal-data retention and purge (src/stopnet/maintenance/service/purge.py): the coordinating unit
    "GET /api/v1/operations/{code}/data-protection": one(COORDINATING),
    "PUT /api/v1/operations/{code}/data-protection": one(COORDINATING),
    "POST /api/v1/operations/{code}/data-protection/purge": one(COORDINATING),
    # inspection results: only the administration that inspected records them
    "POST /api/v1/targeting/operations/{code}/consignments/{consignment_id}/inspection": one(CUSTOMS),
    "POST /operations/{code}/targeting/consignments/{consignment_id}/inspection": one(CUSTOMS),
}


# --------------------------------------------------------------------------------------- requests


def test_every_route_is_classified() -> None:
    """A new route must be added to MATRIX (and an entry of a removed route deleted)."""
    missing = sorted(set(ROUTES) - set(MATRIX))
    stale = sorted(set(MATRIX) - set(ROUTES))
    assert not missing, "routes the authorisation matrix does not classify:\n  " + "\n  ".join(
        f"{k}  ({ROUTES[k]})" for k in missing
    )
    assert not stale, "matrix entries of routes that no longer exist:\n  " + "\n  ".join(stale)


# Which record fills each path parameter, by target (the default target is "").
DEFAULT_IDS = {
    "case_id": "case_shared",
    "user_id": "user_fr_spare",
    "token_id": "token_fr_spare",
    "alert_id": "alert",
    "thread_id": "thread",
    "attachment_id": "attachment",
    "brand_id": "brand",
    "contact_id": "contact",
    "guide_id": "guide",
    "request_id": "request",
    "consignment_id": "consignment",
    "rule_id": "rule",
    "selection_id": "selection",
    "proposal_id": "proposal",
    "version": "model",
}
TARGETS: dict[str, dict[str, str]] = {
    "": {},
    "own case": {"case_id": "case_shared"},  # FR-CUS, shared with participants
    "restricted case of DE": {"case_id": "case_restricted"},  # DE-CUS, visibility own
    "partners case of DE": {"case_id": "case_partners"},  # DE-CUS, shared with partners
    "draft": {"case_id": "case_draft"},  # FR-CUS draft
    "submitted": {"case_id": "case_submitted"},  # FR-CUS, awaiting validation
    "officer of FR": {"user_id": "user_fr_spare", "token_id": "token_fr_spare"},
    "officer of DE": {"user_id": "user_de_spare", "token_id": "token_de_spare"},
    "spare contact": {"contact_id": "contact_spare"},  # deleted by its holder
    "spare guide": {"guide_id": "guide_spare"},  # withdrawn by its holder
    "spare request": {"request_id": "request_spare"},  # withdrawn by FR-CUS
    "spare proposal": {"proposal_id": "proposal_spare"},  # dismissed by FR-CUS
}
# Literal path segments ({action}, {panel}) per route and target.
LITERALS: dict[str, dict[str, str]] = {
    "POST /cases/{case_id}/{action}": {
        "draft": "submit",
        "submitted": "validate",
        "restricted case of DE": "submit",
    },
    "GET /operations/{code}/dashboard/{panel}": {"": "key-figures"},
    "GET /api/v1/operations/{code}/exports/cases.{fmt}": {"": "csv"},
    "GET /api/v1/operations/{code}/exports/seizures.{fmt}": {"": "csv"},
    "POST /rights/guides/{guide_id}/{action}": {"": "publish", "spare guide": "withdraw"},
    "POST /rights/requests/{request_id}/{action}": {"": "answer", "spare request": "withdraw"},
}


def fill(key: str, target: str, aw: AuthzWorld) -> str:
    """The concrete path of route ``key`` for ``target``."""
    path = key.split(" ", 1)[1]
    ids = {**DEFAULT_IDS, **TARGETS.get(target, {})}
    if path.startswith("/api/v1/rights/attachments/"):
        ids["attachment_id"] = "rights_attachment"
    literal = LITERALS.get(key, {}).get(target)
    if literal is not None:
        path = path.replace("{action}", literal).replace("{panel}", literal).replace("{fmt}", literal)
    path = path.replace("{code}", "TEST-OP")
    for name, record in ids.items():
        value = aw.texts[record] if record in aw.texts else aw.ids[record]
        path = path.replace("{" + name + "}", str(value))
    assert "{" not in path, f"no value for a path parameter of {key} (target {target!r}): {path}"
    return path


def _case_form(reference: str) -> dict[str, str]:
    """case_payload as the flat fields of the case form."""
    p = case_payload(reference)
    form = {k: str(v) for k, v in p.items() if k not in ("seizures", "transit_countries", "is_ecommerce")}
    form["transit_countries"] = "AE"
    form["is_ecommerce"] = "on"
    for i, s in enumerate(p["seizures"]):  # type: ignore[arg-type]
        for k, v in s.items():
            form[f"s-{i}-{k}"] = str(v)
    return form


def _correction(version: int = 1) -> dict[str, Any]:
    body = case_payload()
    del body["reference"]
    return {**body, "expected_version": version, "reason": "weight corrected after reweighing"}


_GUIDE_EDIT = {"title": "Brand X pens, revised", "summary": "Updated features.", "expected_version": 1}
_CONTACT = {"territory": "DE", "name": "Brand X Germany", "email": "de@brandx.test", "channel": "email"}

# The body of every write route (json=..., data=... form fields, files=...); forms get their CSRF token.
BODIES: dict[str, Callable[[AuthzWorld], dict[str, Any]]] = {
    "POST /api/v1/operations": lambda aw: {
        "json": {"code": "NEW-OP", "name": "New op", "starts_on": "2026-01-01", "ends_on": "2026-01-31"}
    },
    "POST /api/v1/operations/{code}/cases": lambda aw: {"json": case_payload("MATRIX-API")},
    "POST /api/v1/cases/{case_id}/corrections": lambda aw: {
        "json": _correction(case_version(aw, "case_draft"))
    },
    "POST /api/v1/cases/{case_id}/submit": lambda aw: {
        "json": {"expected_version": case_version(aw, "case_draft")}
    },
    "POST /api/v1/cases/{case_id}/validate": lambda aw: {
        "json": {"expected_version": case_version(aw, "case_submitted")}
    },
    "POST /api/v1/operations/{code}/imports": lambda aw: {
        "files": {"file": ("cases.csv", b"reference,detected_on\n", "text/csv")}
    },
    "POST /api/v1/operations/{code}/imports/annotated": lambda aw: {
        "files": {"file": ("cases.csv", b"case_reference,detected_on\nA,x\n", "text/csv")}
    },
    "POST /api/v1/users": lambda aw: {
        "json": {"org": "FR-CUS", "email": "matrix-new@example.test", "role": "officer"}
    },
    "POST /api/v1/users/{user_id}/role": lambda aw: {"json": {"role": "officer"}},
    # a move that does not fit (422 once authorised), so that the shared world keeps its accounts in place
    "POST /api/v1/users/{user_id}/organisation": lambda aw: {"json": {"org": "INTERPOL", "role": "officer"}},
    "POST /api/v1/users/{user_id}/reset-password": lambda aw: {"json": {}},
    "POST /api/v1/tokens": lambda aw: {
        "json": {
            "org": "FR-CUS",
            "name": "matrix token",
            "role": "officer",
            "scopes": ["cases:read"],
            "password": PASSWORD,
        }
    },
    "POST /api/v1/operations/{code}/attachments": lambda aw: {"files": {"file": ("x.png", PNG, "image/png")}},
    "POST /api/v1/operations/{code}/alerts": lambda aw: {"json": {"kind": "other", "title": "Matrix alert"}},
    "POST /api/v1/operations/{code}/threads": lambda aw: {"json": {"title": "Matrix", "body": "hello"}},
    "POST /api/v1/threads/{thread_id}/messages": lambda aw: {"json": {"body": "hello"}},
    "POST /api/v1/threads/{thread_id}/read": lambda aw: {"json": {}},
    "POST /api/v1/cases/{case_id}/thread/messages": lambda aw: {"json": {"body": "hello"}},
    "POST /api/v1/rights/brands": lambda aw: {
        "json": {
            "name": "Matrix Brand",
            "trademarks": [
                {"mark": "MATRIX", "registration_number": "1", "territory": "EU", "office": "EUIPO"}
            ],
        }
    },
    "POST /api/v1/rights/brands/{brand_id}/decision": lambda aw: {"json": {"decision": "approved"}},
    "POST /api/v1/rights/brands/{brand_id}/contacts": lambda aw: {"json": _CONTACT},
    "PUT /api/v1/rights/contacts/{contact_id}": lambda aw: {
        "json": {"territory": "FR", "name": "Brand X France", "email": "fr@brandx.test", "channel": "email"}
    },
    "POST /api/v1/rights/guides": lambda aw: {
        "json": {"title": "Matrix guide", "kind": "product_id", "brand_id": aw.ids["brand"]}
    },
    "POST /api/v1/rights/guides/{guide_id}/versions": lambda aw: {"json": _GUIDE_EDIT},
    "POST /api/v1/rights/guides/{guide_id}/publish": lambda aw: {"json": {}},
    "POST /api/v1/rights/guides/{guide_id}/attachments": lambda aw: {
        "files": {"file": ("y.png", PNG, "image/png")}
    },
    "POST /api/v1/rights/requests": lambda aw: {
        "json": {"brand_id": aw.ids["brand"], "case_id": aw.ids["case_shared"], "product": "pens"}
    },
    "POST /api/v1/rights/requests/{request_id}/answer": lambda aw: {"json": {"answer": "counterfeit"}},
    "POST /api/v1/rights/requests/{request_id}/attachments": lambda aw: {
        "files": {"file": ("z.png", PNG, "image/png")}
    },
    "PUT /api/v1/rights/operations/{code}/settings": lambda aw: {"json": {"response_working_days": 3}},
    "PUT /api/v1/operations/{code}/data-protection": lambda aw: {
        "json": {"personal_data_retention_days": 3650}
    },
    "POST /api/v1/operations/{code}/data-protection/purge": lambda aw: {"params": {"dry_run": "true"}},
    "POST /api/v1/targeting/consignments": lambda aw: {
        "json": {"operation": "TEST-OP", "org_code": "FR-CUS", "consignments": consignments(2)}
    },
    "POST /api/v1/targeting/score": lambda aw: {
        "json": {"operation": "TEST-OP", "org_code": "FR-CUS", "consignment": consignments(1)[0]}
    },
    "GET /api/v1/targeting/operations/{code}/consignments/{consignment_id}/score": lambda aw: {
        "params": {"org_code": "FR-CUS"}
    },
    "GET /api/v1/targeting/operations/{code}/selections": lambda aw: {
        "params": {"day": "2025-05-14", "org_code": "FR-CUS"}
    },
    "POST /api/v1/targeting/operations/{code}/consignments/{consignment_id}/inspection": lambda aw: {
        "json": {"outcome": "nothing_found", "org_code": "FR-CUS"}
    },
    "POST /api/v1/targeting/operations/{code}/proposals": lambda aw: {
        "json": {"today": "2025-05-30", "org_code": "FR-CUS"}
    },
    "POST /api/v1/targeting/operations/{code}/rules": lambda aw: {
        "json": {"code": "M-1", "name": "matrix", "expression": "quantity > 1", "org_code": "FR-CUS"}
    },
    "POST /api/v1/targeting/operations/{code}/rules/{rule_id}/versions": lambda aw: {
        "json": {"name": "express", "expression": 'channel == "POSTAL"'}
    },
    "POST /api/v1/targeting/operations/{code}/rules/{rule_id}/activate": lambda aw: {"json": {}},
    "POST /api/v1/targeting/operations/{code}/rules/{rule_id}/test": lambda aw: {"json": {}},
    "POST /api/v1/targeting/operations/{code}/scoring": lambda aw: {"json": {"org_code": "FR-CUS"}},
    "POST /api/v1/targeting/operations/{code}/models/{version}/sharing": lambda aw: {
        "json": {"shared": True}
    },
    "POST /operations/{code}/targeting/models/{version}/sharing": lambda aw: {"data": {"shared": "1"}},
    "POST /api/v1/targeting/operations/{code}/selections": lambda aw: {
        "json": {"day": "2025-05-15", "capacity": "5", "org_code": "FR-CUS"}
    },
    "POST /operations/{code}/targeting/proposals": lambda aw: {"data": {"org_code": "FR-CUS"}},
    "POST /operations/{code}/targeting/rules": lambda aw: {
        "data": {
            "rule_code": "MP-1",
            "name": "matrix page",
            "expression": "quantity > 2",
            "org_code": "FR-CUS",
        }
    },
    "POST /operations/{code}/targeting/rules/{rule_id}/versions": lambda aw: {
        "data": {"name": "express", "expression": 'channel == "EXPRESS"'}
    },
    "POST /operations/{code}/targeting/selection": lambda aw: {
        "data": {"day": "2025-05-16", "capacity": "5", "org_code": "FR-CUS"}
    },
    "POST /operations/{code}/targeting/consignments/{consignment_id}/inspection": lambda aw: {
        "data": {"outcome": "nothing_found"}
    },
    "POST /login": lambda aw: {"data": {"email": "nobody@example.test", "password": "wrong password"}},
    "POST /login/code": lambda aw: {"data": {"code": "000000"}},
    "POST /login/new-password": lambda aw: {
        "data": {"new_password": "a new long passphrase", "new_password_confirm": "a new long passphrase"}
    },
    "POST /account/password": lambda aw: {
        "data": {"current_password": "wrong", "new_password": "x" * 20, "new_password_confirm": "x" * 20}
    },
    "POST /account/totp": lambda aw: {"data": {"enrolment_token": "bogus", "code": "000000"}},
    "POST /account/email": lambda aw: {"data": {"new_email": "matrix@example.test", "password": "wrong"}},
    "POST /account/totp/disable": lambda aw: {"data": {"password": "wrong", "code": "000000"}},
    "POST /account/recovery-codes": lambda aw: {"data": {"password": "wrong"}},
    "POST /admin/users": lambda aw: {
        "data": {"org": "FR-CUS", "email": "matrix-page@example.test", "role": "officer"}
    },
    "POST /admin/users/{user_id}/role": lambda aw: {"data": {"role": "officer"}},
    "POST /admin/users/{user_id}/organisation": lambda aw: {"data": {"org": "INTERPOL", "role": "officer"}},
    "POST /admin/users/{user_id}/active": lambda aw: {"data": {"active": "true"}},
    "POST /admin/tokens": lambda aw: {
        "data": {
            "org": "FR-CUS",
            "name": "matrix page token",
            "role": "officer",
            "scopes": ["cases:read"],
            "password": PASSWORD,
        }
    },
    "POST /operations/{code}/cases/new": lambda aw: {"data": _case_form("MATRIX-PAGE")},
    "POST /cases/{case_id}/correct": lambda aw: {
        "data": {
            **_case_form("FR-DRAFT"),
            "expected_version": str(case_version(aw, "case_draft")),
            "reason": "weight corrected after reweighing",
        }
    },
    "POST /operations/{code}/import": lambda aw: {
        "files": {"file": ("cases.csv", b"reference,detected_on\n", "text/csv")}
    },
    "POST /operations/{code}/import/annotated": lambda aw: {
        "files": {"file": ("cases.csv", b"case_reference,detected_on\nA,x\n", "text/csv")}
    },
    "POST /operations/{code}/alerts": lambda aw: {"data": {"kind": "other", "title": "Matrix page alert"}},
    "POST /operations/{code}/threads": lambda aw: {"data": {"title": "Matrix page", "body": "hello"}},
    "POST /threads/{thread_id}/messages": lambda aw: {"data": {"body": "hello"}},
    "POST /threads/{thread_id}/read": lambda aw: {"data": {}},
    "POST /cases/{case_id}/thread/messages": lambda aw: {"data": {"body": "hello"}},
    "POST /rights/brands/new": lambda aw: {
        "data": {
            "name": "Matrix Page Brand",
            "tm-0-mark": "MPB",
            "tm-0-registration_number": "2",
            "tm-0-territory": "EU",
            "tm-0-office": "EUIPO",
        }
    },
    "POST /rights/brands/{brand_id}/decision": lambda aw: {"data": {"decision": "approved"}},
    "POST /rights/brands/{brand_id}/contacts": lambda aw: {"data": _CONTACT},
    "POST /rights/guides/new": lambda aw: {
        "data": {"title": "Matrix page guide", "kind": "product_id", "brand_id": str(aw.ids["brand"])}
    },
    "POST /rights/guides/{guide_id}/edit": lambda aw: {"data": {k: str(v) for k, v in _GUIDE_EDIT.items()}},
    "POST /rights/requests/new": lambda aw: {
        "data": {"brand_id": str(aw.ids["brand"]), "case_id": str(aw.ids["case_shared"]), "product": "pens"}
    },
    "POST /rights/requests/{request_id}/{action}": lambda aw: {"data": {"answer": "counterfeit"}},
    "POST /rights/operations/{code}/settings": lambda aw: {"data": {"response_working_days": "3"}},
}


@dataclass
class Answer:
    status: int
    location: str
    text: str


def exercise(client: TestClient, engine: Engine, aw: AuthzWorld, key: str, target: str, role: str) -> Answer:
    """Call route ``key`` (filled for ``target``) as ``role``; the answer (a stream is closed at once)."""
    method, template = key.split(" ", 1)
    path = fill(key, target, aw)
    is_page = not template.startswith("/api/")
    headers = dict(HTML if is_page else JSON)
    client.cookies.clear()
    actor = ROLE_ACTORS[role]
    cookie = session_cookie(client, engine, aw.world[actor]) if actor else None
    if cookie:
        client.cookies.set(COOKIE, cookie)
    kwargs: dict[str, Any] = BODIES[key](aw) if key in BODIES else {}
    if key == "POST /cases/{case_id}/{action}":
        kwargs = {"data": {"expected_version": str(case_version(aw, TARGETS[target]["case_id"]))}}
    if method in WRITE_METHODS and is_page:
        kwargs["data"] = {**kwargs.get("data", {}), "csrf_token": csrf_for(client, cookie)}
    elif method in WRITE_METHODS:
        headers["X-CSRF-Token"] = csrf_for(client, cookie)  # as a script of this site's pages
    if key == "GET /api/v1/operations/{code}/feed":
        # the stream ends by itself (feed_stream_seconds=0 below); only the status is judged
        with client.stream(method, path, headers=headers) as r:
            return Answer(r.status_code, "", r.headers.get("content-type", ""))
    r = client.request(method, path, headers=headers, follow_redirects=False, **kwargs)
    return Answer(r.status_code, r.headers.get("location", ""), r.text[:400])


def to_sign_in(a: Answer) -> bool:
    """A page sends a visitor who is not signed in to the sign-in page, to come back afterwards."""
    return a.status in (302, 303) and a.location.startswith("/login?next=")


def refused(a: Answer) -> bool:
    return a.status in (401, 403, 404) or to_sign_in(a)


# --------------------------------------------------------------------------------------- the tests

FRIDAY = dt.datetime(2025, 5, 16, 10, 0, tzinfo=dt.UTC)  # within TEST-OP: requests get deadlines


@pytest.fixture(scope="module")
def matrix(
    database_url: str, engine: Engine, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[TestClient, AuthzWorld]]:
    """One application and one world for the whole module (the function fixtures would rebuild it
    for each of the ~1,300 calls); emptied afterwards, as the function fixtures leave it."""
    settings = Settings(
        database_url=database_url,
        data_dir=tmp_path_factory.mktemp("matrix-var"),
        secret_key="matrix-secret-key",
        feed_stream_seconds=0,
        feed_heartbeat_seconds=0.05,
    )
    app = create_app(settings)
    app.state.clock = lambda: FRIDAY
    try:
        with TestClient(app) as client:
            yield client, build(engine, client)
    finally:
        app.state.engine.dispose()
        _empty_all(engine)


def _params() -> list[Any]:
    """One test per route, target and role; reads first, so that writes cannot change what they see."""
    out = []
    for key in sorted(MATRIX, key=lambda k: (not k.startswith("GET "), k)):
        if key not in ROUTES:
            continue  # reported by test_every_route_is_classified
        for target, expect in MATRIX[key].items():
            for role in ROLES:
                name = f"{key} [{target}] as {role}" if target else f"{key} as {role}"
                out.append(pytest.param(key, target, role, expect[role], id=name))
    return out


@pytest.mark.parametrize(("key", "target", "role", "expected"), _params())
def test_route_as_role(
    matrix: tuple[TestClient, AuthzWorld], key: str, target: str, role: str, expected: str
) -> None:
    client, aw = matrix
    a = exercise(client, aw.engine, aw, key, target, role)
    what = f"{key} [{target}] as {role}: {a.status} {a.location} {a.text}"
    assert a.status < 500, what
    if expected == "public":
        return
    if expected == "deny":
        assert refused(a), "should be refused: " + what
        if role == "anonymous":
            assert a.status == 401 or to_sign_in(a), (
                "not signed in should be 401 or to the sign-in page: " + what
            )
    else:
        assert not refused(a), "should be allowed: " + what


def test_readme_tells_how_to_sign_in_as_every_role_of_the_demo() -> None:
    """The README's demo table has one row per role, with the e-mail address the demo gives that role."""
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    section = readme.split("### Signing in to the demo", 1)[1].split("\n## ", 1)[0]
    assert "/login" in section
    rows = dict(re.findall(r"^\| `(\w+)` \| `([^`]+)` \|", section, flags=re.MULTILINE))
    assert set(rows) == {r.value for r in Role}
    source = inspect.getsource(seed.seed_demo)
    for role, email in rows.items():
        local, _, domain = email.partition("@")
        assert domain == seed.DEMO_EMAIL_DOMAIN, email
        assert re.search(rf'\(Role\.{Role(role).name}, [^)]*"{re.escape(local)}"', source), (role, email)


@pytest.mark.parametrize(
    ("path", "target", "allowed"),
    [
        ("/operations/TEST-OP/cases/new", "", {"contact_point", "officer"}),
        ("/cases/{case_id}/correct", "draft", {"contact_point", "officer"}),
        ("/cases/{case_id}/correct", "own case", {"contact_point", "officer"}),
    ],
)
def test_adding_a_line_to_a_case_form_needs_the_permission_of_the_form(
    matrix: tuple[TestClient, AuthzWorld], path: str, target: str, allowed: set[str]
) -> None:
    """The "add a line" button re-renders the form without saving: refused to whoever may not use it."""
    client, aw = matrix
    path = path.replace("{case_id}", str(aw.ids[TARGETS[target]["case_id"]])) if target else path
    for role in ROLES:
        actor = ROLE_ACTORS[role]
        if actor is None:
            continue
        client.cookies.clear()
        cookie = session_cookie(client, aw.engine, aw.world[actor])
        client.cookies.set(COOKIE, cookie)
        data = {"action": "add_line", "csrf_token": csrf_for(client, cookie)}
        r = client.post(path, data=data, headers=HTML, follow_redirects=False)
        if role in allowed:
            assert r.status_code == 200 and 'name="s-0-commodity_code"' in r.text, (role, r.status_code)
        else:
            assert r.status_code in (403, 404), (role, r.status_code, r.text[:200])
