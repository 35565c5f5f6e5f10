"""Sign-in and sign-out pages."""

from __future__ import annotations

import secrets
from typing import Annotated
from urllib.parse import urlparse

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response

from stopnet.audit.service import record
from stopnet.core.errors import Unauthenticated
from stopnet.db.models import Organisation
from stopnet.web.deps import DB, CurrentPrincipal, MaybePrincipal
from stopnet.web.pages import render, require_csrf
from stopnet.web.sessions import COOKIE, make_cookie

from .service import authenticate, principal_for

router = APIRouter(include_in_schema=False)
LOGIN_CSRF = "stopnet_login_csrf"


def _safe_next(value: str | None) -> str:
    if not value:
        return "/"
    parsed = urlparse(value)
    if parsed.scheme or parsed.netloc or not value.startswith("/") or value.startswith("//"):
        return "/"
    return value


@router.get("/login")
def login_page(request: Request, principal: MaybePrincipal, next: str | None = None) -> Response:
    if principal is not None:
        return RedirectResponse(_safe_next(next), status_code=303)
    token = secrets.token_urlsafe(24)
    response = render(request, "login.html", {"next": _safe_next(next), "login_csrf": token, "error": None})
    response.set_cookie(
        LOGIN_CSRF, token, httponly=True, samesite="strict", secure=_secure(request), max_age=3600
    )
    return response


def _secure(request: Request) -> bool:
    return bool(request.app.state.settings.secure_cookies)


@router.post("/login")
def login(
    request: Request,
    db: DB,
    email: Annotated[str, Form(max_length=254)],
    password: Annotated[str, Form(max_length=1024)],
    csrf_token: Annotated[str, Form(max_length=100)] = "",
    next: Annotated[str, Form(max_length=500)] = "/",
) -> Response:
    expected = request.cookies.get(LOGIN_CSRF)
    if not expected or not secrets.compare_digest(expected, csrf_token):
        return render(
            request,
            "login.html",
            {"next": _safe_next(next), "login_csrf": expected or "", "error": "The form expired; try again."},
            status_code=403,
        )
    try:
        user = authenticate(db, email, password)
    except Unauthenticated as e:
        db.commit()  # keep the failure count
        return render(
            request,
            "login.html",
            {"next": _safe_next(next), "login_csrf": expected, "error": e.message},
            status_code=401,
        )
    org = db.get_one(Organisation, user.org_id)
    record(db, principal_for(user, org), "auth.sign_in", "user", user.id)
    db.commit()
    settings = request.app.state.settings
    response = RedirectResponse(_safe_next(next), status_code=303)
    response.set_cookie(
        COOKIE,
        make_cookie(request.app.state.secret, user.id, user.session_epoch),
        httponly=True,
        samesite="lax",
        secure=settings.secure_cookies,
        max_age=settings.session_hours * 3600,
    )
    response.delete_cookie(LOGIN_CSRF)
    return response


@router.post("/logout")
def logout(
    request: Request,
    db: DB,
    principal: CurrentPrincipal,
    csrf_token: Annotated[str, Form(max_length=100)] = "",
) -> Response:
    require_csrf(request, csrf_token)
    record(db, principal, "auth.sign_out", "user", principal.user_id or "")
    db.commit()
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(COOKIE)
    return response
