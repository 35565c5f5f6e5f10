"""Helpers for HTML pages: every page has a JSON twin, and every form a CSRF token."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from fastapi import Request
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel

from stopnet.access.principal import Principal
from stopnet.core.errors import Forbidden

from .sessions import COOKIE, check_csrf, csrf_token
from .templating import templates


def wants_json(request: Request) -> bool:
    if request.query_params.get("format") == "json":
        return True
    accept = request.headers.get("accept", "")
    return "application/json" in accept and "text/html" not in accept


def render(
    request: Request,
    template: str,
    context: dict[str, Any],
    *,
    json: BaseModel | list[Any] | dict[str, Any] | None = None,
    principal: Principal | None = None,
    status_code: int = 200,
) -> Response:
    """Render ``template``, or its JSON twin (``?format=json`` or ``Accept: application/json``)."""
    if wants_json(request) and json is not None:
        return JSONResponse(jsonable_encoder(json), status_code=status_code)
    cookie = request.cookies.get(COOKIE)
    ctx = {
        "principal": principal,
        "csrf_token": csrf_token(request.app.state.secret, cookie) if cookie else "",
        **context,
    }
    return templates.TemplateResponse(request, template, ctx, status_code=status_code)


def json_url(request: Request) -> str:
    q = request.url.query
    return f"{request.url.path}?{q + '&' if q else ''}format=json"


def url_with(request: Request, **changes: object) -> str:
    """This page's URL with some query parameters changed (None removes one): sort links, pagers."""
    params = {k: v for k, v in request.query_params.items() if k not in changes and k != "format"}
    params.update({k: str(v) for k, v in changes.items() if v is not None})
    return f"{request.url.path}?{urlencode(params)}" if params else request.url.path


def require_csrf(request: Request, token: str | None) -> None:
    if not check_csrf(request.app.state.secret, request.cookies.get(COOKIE), token):
        raise Forbidden("the form has expired or did not come from this site (CSRF check failed); reload it")


templates.env.globals["json_url"] = json_url
templates.env.globals["url_with"] = url_with
