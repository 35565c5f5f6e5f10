"""No page answers a browser with JSON, whatever it is sent: every page route, every query parameter
given a value it cannot read, for each role; refusals come back as HTML pages in words."""

from __future__ import annotations

import re

import pytest
from fastapi.routing import APIRoute, iter_route_contexts

from tests.pages import HTML

ROLES = ("fr_officer", "fr_ncp", "coordinator", "admin", "analyst_we", "partner", "rights_holder")
PHRASES = ("Input should", "String should", "value is not a valid", "Field required")


def _page_routes(app):  # type: ignore[no-untyped-def]
    for rc in iter_route_contexts(app.routes):
        route = rc.original_route
        if not isinstance(route, APIRoute) or rc.path.startswith("/api/") or "GET" not in (rc.methods or ()):
            continue
        params = [p.alias for p in route.dependant.query_params]
        for dep in route.dependant.dependencies:
            params += [p.alias for p in dep.query_params]
        if params:
            yield rc.path, params


def _url(path: str) -> str:
    path = path.replace("{code}", "TEST-OP")
    return re.sub(r"\{[^}]+\}", "1", path)


@pytest.mark.parametrize("role", ROLES)
def test_unreadable_query_values_answer_a_browser_with_html(app, client, world, signed_in, role):
    signed_in(world[role])
    routes = list(_page_routes(app))
    assert len(routes) > 10
    for path, params in routes:
        for name in params:
            for bad in ("not a value \u00e9", "-1", "9" * 30):
                r = client.get(_url(path), params={name: bad}, headers=HTML, follow_redirects=False)
                where = f"{role} GET {path}?{name}={bad}: {r.status_code}"
                assert r.status_code < 500, where
                ctype = r.headers.get("content-type", "")
                assert not ctype.startswith("application/json"), where + " answered JSON"
                if r.status_code == 422:
                    assert ctype.startswith("text/html"), where
                    assert not any(p in r.text for p in PHRASES), where + " shows pydantic's text"
