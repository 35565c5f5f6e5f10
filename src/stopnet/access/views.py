"""Sign-in (password, then the second factor or a new password when asked), sign-out and the account page.

A sign-in between its steps holds no session: a short-lived signed cookie (``stopnet_pending``, path
``/login``, 5 minutes, HttpOnly, SameSite=Strict) says which user passed which step, and the form of the
next step carries a CSRF token bound to that cookie. The session cookie is set only when every step passed.
"""

from __future__ import annotations

import logging
import secrets
from typing import Annotated, Any
from urllib.parse import quote, urlparse

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response
from markupsafe import Markup

from stopnet.audit.service import record
from stopnet.core.errors import Conflict, InvalidInput, Unauthenticated
from stopnet.db.models import Organisation, User
from stopnet.web.deps import DB, PUBLIC, SESSION_ONLY, CurrentPrincipal, MaybePrincipal
from stopnet.web.pages import render, require_csrf
from stopnet.web.sessions import COOKIE, check_csrf, csrf_token, make_cookie

from . import service, totp
from .principal import Principal
from .ratelimit import RateLimited, limit_password_check, sign_in_guard, sign_in_limits
from .schemas import AccountOut, RecoveryCodesOut, TotpEnrolment

log = logging.getLogger("stopnet.access")
router = APIRouter(include_in_schema=False)
LOGIN_CSRF = "stopnet_login_csrf"
PENDING = "stopnet_pending"
PENDING_PATH = "/login"
STEP_URLS = {"totp": "/login/code", "password": "/login/new-password"}


def _safe_next(value: str | None) -> str:
    if not value:
        return "/"
    parsed = urlparse(value)
    if parsed.scheme or parsed.netloc or not value.startswith("/") or value.startswith("//"):
        return "/"
    if "\\" in value:
        return "/"
    return value


def client_ip(request: Request) -> str:
    """The peer address (behind a proxy: what the server was told to trust, see docs/security.md)."""
    return request.client.host if request.client else "unknown"


@router.get("/login", dependencies=[PUBLIC])
def login_page(request: Request, principal: MaybePrincipal, next: str | None = None) -> Response:
    if principal is not None:
        return RedirectResponse(_safe_next(next), status_code=303)
    return _fresh_login_form(request, _safe_next(next), "", None, 200)


def _fresh_login_form(request: Request, next: str, email: str, error: str | None, status: int) -> Response:
    """The sign-in form with a new login CSRF token (the cookie and the form field carry the same)."""
    token = secrets.token_urlsafe(24)
    ctx = {"next": next, "login_csrf": token, "email": email, "error": error}
    response = render(request, "login.html", ctx, status_code=status)
    response.set_cookie(
        LOGIN_CSRF, token, httponly=True, samesite="strict", secure=_secure(request), max_age=3600
    )
    return response


def _secure(request: Request) -> bool:
    return bool(request.app.state.settings.secure_cookies)


def _too_many(response: Response, e: RateLimited) -> Response:
    response.headers["Retry-After"] = str(e.retry_after)
    return response


@router.post("/login", dependencies=[PUBLIC])
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
        # a new token, so that signing in again from this page works (the old one may have expired)
        return _fresh_login_form(request, _safe_next(next), email, "The form expired; try again.", 403)
    ip = client_ip(request)
    ctx = {"next": _safe_next(next), "login_csrf": expected, "email": email}
    try:
        user = service.authenticate(db, email, password, ip=ip, guard=sign_in_guard(request.app))
    except RateLimited as e:
        log.warning("sign-in rate limited: ip=%s account=%s", ip, email[:254])
        return _too_many(render(request, "login.html", {**ctx, "error": e.message}, status_code=429), e)
    except Unauthenticated as e:
        db.commit()  # keep the failure count
        return render(request, "login.html", {**ctx, "error": e.message}, status_code=401)
    return _after_step(request, db, user, service.next_step(user), "password", next)


def _after_step(request: Request, db: DB, user: User, stage: str | None, factor: str, next: str) -> Response:
    """Open the session when nothing more is asked; else hand over to the next step's page."""
    next = _safe_next(next)
    key = request.app.state.secret
    if stage is not None:
        db.commit()
        response: Response = RedirectResponse(f"{STEP_URLS[stage]}?next={quote(next)}", status_code=303)
        response.set_cookie(
            PENDING,
            totp.make_pending(key, stage, user.id, user.session_epoch),
            httponly=True,
            samesite="strict",
            secure=_secure(request),
            max_age=totp.PENDING_MAX_AGE_S,
            path=PENDING_PATH,
        )
        response.delete_cookie(LOGIN_CSRF)
        return response
    service.complete_sign_in(db, user, factor, ip=client_ip(request))
    db.commit()
    response = RedirectResponse(next, status_code=303)
    _set_session(request, response, user)
    response.delete_cookie(LOGIN_CSRF)
    response.delete_cookie(PENDING, path=PENDING_PATH)
    return response


def _set_session(request: Request, response: Response, user: User) -> None:
    settings = request.app.state.settings
    response.set_cookie(
        COOKIE,
        make_cookie(request.app.state.secret, user.id, user.session_epoch),
        httponly=True,
        samesite="lax",
        secure=settings.secure_cookies,
        max_age=settings.session_hours * 3600,
    )


def _pending(request: Request, db: DB, stage: str) -> tuple[User, str] | None:
    raw = request.cookies.get(PENDING)
    p = totp.read_pending(request.app.state.secret, raw)
    if p is None or raw is None or p.stage != stage:
        return None
    try:
        return service.pending_user(db, p.user_id, p.epoch), raw
    except Unauthenticated:
        return None


def _expired(request: Request, next: str) -> Response:
    response = _fresh_login_form(
        request, _safe_next(next), "", "The sign-in has expired; sign in again.", 401
    )
    response.delete_cookie(PENDING, path=PENDING_PATH)
    return response


def _step_page(
    request: Request, template: str, pending_cookie: str, next: str, status: int = 200, **ctx: Any
) -> Response:
    token = csrf_token(request.app.state.secret, pending_cookie)
    return render(
        request, template, {"next": _safe_next(next), "step_csrf": token, **ctx}, status_code=status
    )


@router.get("/login/code", dependencies=[PUBLIC])
def second_factor_page(request: Request, db: DB, next: str | None = None) -> Response:
    found = _pending(request, db, "totp")
    if found is None:
        return _expired(request, next or "/")
    return _step_page(request, "account/second_factor.html", found[1], next or "/", error=None)


@router.post("/login/code", dependencies=[PUBLIC])
def second_factor(
    request: Request,
    db: DB,
    code: Annotated[str, Form(max_length=64)],
    csrf_token: Annotated[str, Form(max_length=100)] = "",
    next: Annotated[str, Form(max_length=500)] = "/",
) -> Response:
    found = _pending(request, db, "totp")
    if found is None:
        return _expired(request, next)
    user, raw = found
    if not check_csrf(request.app.state.secret, raw, csrf_token):
        return _step_page(
            request, "account/second_factor.html", raw, next, 403, error="The form expired; try again."
        )
    ip = client_ip(request)
    try:
        factor = service.verify_second_factor(db, user, code, ip=ip, guard=sign_in_guard(request.app))
    except RateLimited as e:
        page = _step_page(request, "account/second_factor.html", raw, next, 429, error=e.message)
        return _too_many(page, e)
    except Unauthenticated as e:
        db.commit()  # keep the failure count
        return _step_page(request, "account/second_factor.html", raw, next, 401, error=e.message)
    stage = "password" if user.must_change_password else None
    return _after_step(request, db, user, stage, factor, next)


@router.get("/login/new-password", dependencies=[PUBLIC])
def new_password_page(request: Request, db: DB, next: str | None = None) -> Response:
    found = _pending(request, db, "password")
    if found is None:
        return _expired(request, next or "/")
    return _step_page(request, "account/new_password.html", found[1], next or "/", errors={})


@router.post("/login/new-password", dependencies=[PUBLIC])
def new_password(
    request: Request,
    db: DB,
    new_password: Annotated[str, Form(max_length=1024)],
    new_password_confirm: Annotated[str, Form(max_length=1024)],
    csrf_token: Annotated[str, Form(max_length=100)] = "",
    next: Annotated[str, Form(max_length=500)] = "/",
) -> Response:
    found = _pending(request, db, "password")
    if found is None:
        return _expired(request, next)
    user, raw = found
    page = "account/new_password.html"
    if not check_csrf(request.app.state.secret, raw, csrf_token):
        return _step_page(request, page, raw, next, 403, errors={"form": "The form expired; try again."})
    ip = client_ip(request)
    try:
        sign_in_limits(request.app).check(ip, user.email)
        service.change_required_password(db, user, new_password, new_password_confirm, ip=ip)
    except RateLimited as e:
        return _too_many(_step_page(request, page, raw, next, 429, errors={"form": e.message}), e)
    except InvalidInput as e:
        return _step_page(request, page, raw, next, 422, errors={f.field: f.message for f in e.errors})
    return _after_step(request, db, user, None, "password_change", next)


@router.post("/logout", dependencies=[SESSION_ONLY])
def logout(
    request: Request,
    db: DB,
    principal: CurrentPrincipal,
    csrf_token: Annotated[str, Form(max_length=100)] = "",
) -> Response:
    require_csrf(request, csrf_token)
    user = db.get(User, principal.user_id) if principal.user_id is not None else None
    if user is not None:
        # The session cookie is stateless: a new epoch is what makes the old cookie (and any copy of it)
        # worthless. It signs the user out of every browser, which is what a shared workstation needs.
        user.session_epoch += 1
    record(db, principal, "auth.sign_out", "user", principal.user_id or "")
    db.commit()
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(COOKIE)
    return response


# ------------------------------------------------------------------------------------------ account


DONE = {
    "password": "Your password has been changed. Your other sessions have ended.",
    "totp-off": "Two-step sign-in is off.",
    "email": "Your e-mail address has been changed: sign in with the new one from now on.",
}


def _account(db: DB, principal: Principal) -> tuple[User, AccountOut]:
    user = service.session_user(db, principal)
    org = db.get_one(Organisation, user.org_id)
    out = AccountOut(
        email=user.email,
        display_name=user.display_name,
        role=user.role,
        org=org.code,
        totp_enabled=user.totp_enabled,
        recovery_codes_left=service.recovery_codes_left(db, user.id) if user.totp_enabled else 0,
        last_login_at=user.last_login_at,
        password_changed_at=user.password_changed_at,
    )
    return user, out


def _account_page(
    request: Request,
    db: DB,
    principal: Principal,
    *,
    errors: dict[str, str] | None = None,
    status: int = 200,
    done: str | None = None,
) -> Response:
    _, account = _account(db, principal)
    ctx = {"account": account, "errors": errors or {}, "done": DONE.get(done or "")}
    twin = {"account": account.model_dump(mode="json"), "errors": errors} if errors else account
    return render(request, "account/index.html", ctx, json=twin, principal=principal, status_code=status)


def _fields(e: InvalidInput) -> dict[str, str]:
    return {f.field: f.message for f in e.errors}


@router.get("/account", dependencies=[SESSION_ONLY])
def account_page(request: Request, db: DB, principal: CurrentPrincipal, done: str | None = None) -> Response:
    return _account_page(request, db, principal, done=done)


def _limit_account_form(request: Request, principal: Principal) -> None:
    """Forms that check the password count against the account's sign-in limit."""
    limit_password_check(request, principal.label)


@router.post("/account/password", dependencies=[SESSION_ONLY])
def change_password(
    request: Request,
    db: DB,
    principal: CurrentPrincipal,
    current_password: Annotated[str, Form(max_length=1024)],
    new_password: Annotated[str, Form(max_length=1024)],
    new_password_confirm: Annotated[str, Form(max_length=1024)],
    csrf_token: Annotated[str, Form(max_length=100)] = "",
) -> Response:
    require_csrf(request, csrf_token)
    try:
        _limit_account_form(request, principal)
        user = service.change_password(db, principal, current_password, new_password, new_password_confirm)
    except RateLimited as e:
        return _too_many(_account_page(request, db, principal, errors={"form": e.message}, status=429), e)
    except InvalidInput as e:
        return _account_page(request, db, principal, errors=_fields(e), status=422)
    db.commit()
    response = RedirectResponse("/account?done=password", status_code=303)
    _set_session(request, response, user)  # this browser stays signed in, with the new epoch
    return response


@router.post("/account/sign-out-everywhere", dependencies=[SESSION_ONLY])
def sign_out_everywhere(
    request: Request,
    db: DB,
    principal: CurrentPrincipal,
    csrf_token: Annotated[str, Form(max_length=100)] = "",
) -> Response:
    require_csrf(request, csrf_token)
    service.sign_out_everywhere(db, principal)
    db.commit()
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(COOKIE)
    return response


@router.post("/account/email", dependencies=[SESSION_ONLY])
def change_email(
    request: Request,
    db: DB,
    principal: CurrentPrincipal,
    new_email: Annotated[str, Form(max_length=254)],
    password: Annotated[str, Form(max_length=1024)] = "",
    csrf_token: Annotated[str, Form(max_length=100)] = "",
) -> Response:
    """Change the e-mail address one signs in with; the password is asked again."""
    require_csrf(request, csrf_token)
    try:
        _limit_account_form(request, principal)
        service.change_email(db, principal, new_email, password)
    except RateLimited as e:
        return _too_many(_account_page(request, db, principal, errors={"form": e.message}, status=429), e)
    except InvalidInput as e:
        errors = {"email_" + k.removeprefix("new_"): v for k, v in _fields(e).items()}
        errors["form"] = e.summary
        return _account_page(request, db, principal, errors=errors, status=422)
    except Conflict as e:
        return _account_page(request, db, principal, errors={"email_email": e.message}, status=409)
    db.commit()
    return RedirectResponse("/account?done=email", status_code=303)


@router.get("/account/totp", dependencies=[SESSION_ONLY])
def totp_page(request: Request, db: DB, principal: CurrentPrincipal) -> Response:
    user = service.session_user(db, principal)
    if user.totp_enabled:
        return RedirectResponse("/account", status_code=303)
    secret, uri = service.start_totp_enrolment(principal, user)
    token = totp.make_enrolment(request.app.state.secret, user.id, secret)
    return _totp_page(request, principal, secret, uri, token)


def _totp_page(
    request: Request,
    principal: Principal,
    secret: str,
    uri: str,
    token: str,
    error: str | None = None,
    status: int = 200,
) -> Response:
    ctx = {
        "qr": Markup(totp.qr_svg(uri)),  # noqa: S704 - segno's SVG of our own URI: no user markup in it
        "secret": totp.group_secret(secret),
        "uri": uri,
        "enrolment_token": token,
        "error": error,
    }
    enrolment = TotpEnrolment(secret=secret, otpauth_uri=uri, enrolment_token=token)
    return render(request, "account/totp.html", ctx, json=enrolment, principal=principal, status_code=status)


@router.post("/account/totp", dependencies=[SESSION_ONLY])
def enable_totp(
    request: Request,
    db: DB,
    principal: CurrentPrincipal,
    enrolment_token: Annotated[str, Form(max_length=200)],
    code: Annotated[str, Form(max_length=16)],
    password: Annotated[str, Form(max_length=1024)] = "",
    csrf_token: Annotated[str, Form(max_length=100)] = "",
) -> Response:
    require_csrf(request, csrf_token)
    user = service.session_user(db, principal)
    secret = totp.read_enrolment(request.app.state.secret, user.id, enrolment_token)
    if secret is None:
        raise Conflict("the enrolment page has expired; open it again and scan the new code")
    uri = totp.provisioning_uri(secret, user.email)
    try:
        _limit_account_form(request, principal)
        codes = service.enable_totp(db, principal, secret, code, password)
    except RateLimited as e:
        return _too_many(_totp_page(request, principal, secret, uri, enrolment_token, e.message, 429), e)
    except InvalidInput as e:
        error = (
            f"{e.summary}: {e.errors[0].message}" if e.errors[0].field == "password" else e.errors[0].message
        )
        return _totp_page(request, principal, secret, uri, enrolment_token, error, 422)
    db.commit()
    return _recovery_codes_page(request, principal, codes)


def _recovery_codes_page(request: Request, principal: Principal, codes: list[str]) -> Response:
    return render(
        request,
        "account/recovery_codes.html",
        {"codes": codes},
        json=RecoveryCodesOut(recovery_codes=codes),
        principal=principal,
    )


@router.post("/account/totp/disable", dependencies=[SESSION_ONLY])
def disable_totp(
    request: Request,
    db: DB,
    principal: CurrentPrincipal,
    password: Annotated[str, Form(max_length=1024)] = "",
    code: Annotated[str, Form(max_length=64)] = "",
    csrf_token: Annotated[str, Form(max_length=100)] = "",
) -> Response:
    require_csrf(request, csrf_token)
    try:
        _limit_account_form(request, principal)
        service.disable_totp(db, principal, password, code)
    except RateLimited as e:
        return _too_many(_account_page(request, db, principal, errors={"form": e.message}, status=429), e)
    except InvalidInput as e:
        db.commit()  # a spent recovery code stays spent
        errors = {"off_" + k: v for k, v in _fields(e).items()} | {"form": e.summary}
        return _account_page(request, db, principal, errors=errors, status=422)
    db.commit()
    return RedirectResponse("/account?done=totp-off", status_code=303)


@router.post("/account/recovery-codes", dependencies=[SESSION_ONLY])
def new_recovery_codes(
    request: Request,
    db: DB,
    principal: CurrentPrincipal,
    password: Annotated[str, Form(max_length=1024)] = "",
    csrf_token: Annotated[str, Form(max_length=100)] = "",
) -> Response:
    require_csrf(request, csrf_token)
    try:
        _limit_account_form(request, principal)
        codes = service.regenerate_recovery_codes(db, principal, password)
    except RateLimited as e:
        return _too_many(_account_page(request, db, principal, errors={"form": e.message}, status=429), e)
    except InvalidInput as e:
        errors = {"codes_" + k: v for k, v in _fields(e).items()} | {"form": e.summary}
        return _account_page(request, db, principal, errors=errors, status=422)
    db.commit()
    return _recovery_codes_page(request, principal, codes)
