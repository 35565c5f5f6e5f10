"""Pages of account and API-token management (``/admin/users``, ``/admin/tokens``); JSON twins.

Platform administrators manage every organisation; a national contact point the officers and the API
tokens of its own administration. Every form carries the session's CSRF token; every change is audited
by the service layer.
"""

from __future__ import annotations

import datetime as dt
import math
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response

from stopnet.core.errors import Conflict, FieldError, InvalidInput
from stopnet.core.pagination import PagingDep
from stopnet.db.models import Organisation, Role
from stopnet.web.deps import DB, SESSION_ONLY, CurrentPrincipal
from stopnet.web.pages import render, require_csrf

from . import policy, service
from .api import expiry, token_out, user_out, users_out
from .principal import Principal
from .ratelimit import RateLimited, limit_password_check
from .schemas import PasswordResetOut, TokenCreated, TokenPage, UserCreated, UserPage

router = APIRouter(include_in_schema=False)

SCOPES = sorted(service.ALL_SCOPES)
DONE = {
    "role": "The role has been changed.",
    "moved": "The account has been moved; its sessions have ended.",
    "deactivated": "The account has been deactivated; its sessions have ended.",
    "activated": "The account has been reactivated.",
    "totp": "Two-step sign-in has been turned off for this account; the user enrols again.",
    "revoked": "The token has been revoked.",
}


def _role(value: str, field: str = "role") -> Role:
    try:
        return Role(value)
    except ValueError:
        raise InvalidInput([FieldError(field, "unknown role", value=value)]) from None


def _pages(total: int, size: int) -> int:
    return max(1, math.ceil(total / size))


# ------------------------------------------------------------------------------------------ users


def _users_page(
    request: Request,
    db: DB,
    principal: Principal,
    page: int,
    page_size: int,
    org: str | None,
    q: str | None,
    *,
    form: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
    status: int = 200,
) -> Response:
    items, total = service.list_users(db, principal, org or None, q or None, page, page_size)
    out = UserPage(items=users_out(db, items), total=total, page=page, page_size=page_size)
    ctx: dict[str, Any] = {
        "page": out,
        "pages": _pages(total, page_size),
        "filters": {"org": org or "", "q": q or ""},
        "orgs": service.manageable_orgs(db, principal),
        "roles": service.grantable_roles(principal),
        "form": form or {},
        "errors": errors or {},
    }
    return render(request, "admin/users.html", ctx, json=out, principal=principal, status_code=status)


@router.get("/admin/users", dependencies=[SESSION_ONLY])
def users_page(
    request: Request,
    db: DB,
    principal: CurrentPrincipal,
    paging: PagingDep,
    org: str | None = None,
    q: str | None = None,
) -> Response:
    return _users_page(
        request, db, principal, paging.page, paging.page_size, (org or "")[:32], (q or "")[:100]
    )


@router.post("/admin/users", dependencies=[SESSION_ONLY])
def create_user(
    request: Request,
    db: DB,
    principal: CurrentPrincipal,
    email: Annotated[str, Form(max_length=254)],
    role: Annotated[str, Form(max_length=24)],
    org: Annotated[str, Form(max_length=32)] = "",
    display_name: Annotated[str, Form(max_length=200)] = "",
    temporary_password: Annotated[str, Form(max_length=1024)] = "",
    csrf_token: Annotated[str, Form(max_length=100)] = "",
) -> Response:
    require_csrf(request, csrf_token)
    policy.require_user_manager(principal)
    form = {"org": org, "email": email, "role": role, "display_name": display_name}
    try:
        user, password = service.admin_create_user(
            db, principal, org, email, display_name, _role(role), temporary_password or None
        )
    except InvalidInput as e:
        errors = {f.field: f.message for f in e.errors}
        return _users_page(request, db, principal, 1, 50, None, None, form=form, errors=errors, status=422)
    except Conflict as e:
        return _users_page(
            request, db, principal, 1, 50, None, None, form=form, errors={"email": e.message}, status=409
        )
    out = UserCreated(user=user_out(db, user), temporary_password=password)
    db.commit()
    return _user_page(request, db, principal, user.id, temporary_password=password, created=out)


def _user_page(
    request: Request,
    db: DB,
    principal: Principal,
    user_id: int,
    *,
    done: str | None = None,
    temporary_password: str | None = None,
    created: UserCreated | None = None,
    errors: dict[str, str] | None = None,
    move_form: dict[str, str] | None = None,
    status: int = 200,
) -> Response:
    user = service.get_user(db, principal, user_id)
    out = user_out(db, user)
    json: Any = out
    if created is not None:
        json, status = created, 201
    elif temporary_password is not None:
        json = PasswordResetOut(user=out, temporary_password=temporary_password)
    ctx = {
        "u": out,
        "can_manage": policy.can_manage_user(principal, user.org_id, user.role)
        and user.id != principal.user_id,
        "can_change_role": principal.role is Role.ADMIN and user.id != principal.user_id,
        "all_orgs": service.manageable_orgs(db, principal) if principal.role is Role.ADMIN else [],
        "all_roles": [r for r in Role if r in policy.ROLE_ORG_KINDS],
        "move_form": move_form or {"org": "", "role": out.role.value},
        "can_read_audit": principal.role in (Role.ADMIN, Role.COORDINATOR),
        "roles": [r for r in Role if r in policy.ROLE_ORG_KINDS and _fits(db, user.org_id, r)],
        "done": DONE.get(done or ""),
        "temporary_password": temporary_password,
        "created": created is not None,
        "errors": errors or {},
    }
    return render(request, "admin/user.html", ctx, json=json, principal=principal, status_code=status)


def _fits(db: DB, org_id: int, role: Role) -> bool:
    return db.get_one(Organisation, org_id).kind in policy.ROLE_ORG_KINDS[role]


@router.get("/admin/users/{user_id}", dependencies=[SESSION_ONLY])
def user_page(
    user_id: int, request: Request, db: DB, principal: CurrentPrincipal, done: str | None = None
) -> Response:
    return _user_page(request, db, principal, user_id, done=done)


@router.post("/admin/users/{user_id}/role", dependencies=[SESSION_ONLY])
def change_role(
    user_id: int,
    request: Request,
    db: DB,
    principal: CurrentPrincipal,
    role: Annotated[str, Form(max_length=24)],
    csrf_token: Annotated[str, Form(max_length=100)] = "",
) -> Response:
    require_csrf(request, csrf_token)
    service.change_role(db, principal, user_id, _role(role))
    db.commit()
    return RedirectResponse(f"/admin/users/{user_id}?done=role", status_code=303)


@router.post("/admin/users/{user_id}/organisation", dependencies=[SESSION_ONLY])
def move_user(
    user_id: int,
    request: Request,
    db: DB,
    principal: CurrentPrincipal,
    org: Annotated[str, Form(max_length=32)] = "",
    role: Annotated[str, Form(max_length=24)] = "",
    csrf_token: Annotated[str, Form(max_length=100)] = "",
) -> Response:
    require_csrf(request, csrf_token)
    try:
        service.move_user(db, principal, user_id, org, _role(role) if role else None)
    except InvalidInput as e:
        db.rollback()
        errors = {f"move_{f.field}": f.message for f in e.errors}
        form = {"org": org, "role": role}
        return _user_page(request, db, principal, user_id, errors=errors, move_form=form, status=422)
    db.commit()
    return RedirectResponse(f"/admin/users/{user_id}?done=moved", status_code=303)


@router.post("/admin/users/{user_id}/active", dependencies=[SESSION_ONLY])
def set_active(
    user_id: int,
    request: Request,
    db: DB,
    principal: CurrentPrincipal,
    active: Annotated[bool, Form()],
    csrf_token: Annotated[str, Form(max_length=100)] = "",
) -> Response:
    require_csrf(request, csrf_token)
    service.set_active(db, principal, user_id, active)
    db.commit()
    done = "activated" if active else "deactivated"
    return RedirectResponse(f"/admin/users/{user_id}?done={done}", status_code=303)


@router.post("/admin/users/{user_id}/reset-password", dependencies=[SESSION_ONLY])
def reset_password(
    user_id: int,
    request: Request,
    db: DB,
    principal: CurrentPrincipal,
    temporary_password: Annotated[str, Form(max_length=1024)] = "",
    csrf_token: Annotated[str, Form(max_length=100)] = "",
) -> Response:
    require_csrf(request, csrf_token)
    try:
        _, password = service.reset_password(db, principal, user_id, temporary_password or None)
    except InvalidInput as e:
        errors = {f.field: f.message for f in e.errors}
        return _user_page(request, db, principal, user_id, errors=errors, status=422)
    db.commit()
    return _user_page(request, db, principal, user_id, temporary_password=password)


@router.post("/admin/users/{user_id}/reset-totp", dependencies=[SESSION_ONLY])
def reset_totp(
    user_id: int,
    request: Request,
    db: DB,
    principal: CurrentPrincipal,
    csrf_token: Annotated[str, Form(max_length=100)] = "",
) -> Response:
    require_csrf(request, csrf_token)
    service.reset_totp(db, principal, user_id)
    db.commit()
    return RedirectResponse(f"/admin/users/{user_id}?done=totp", status_code=303)


# ------------------------------------------------------------------------------------------ API tokens


def _tokens_page(
    request: Request,
    db: DB,
    principal: Principal,
    page: int,
    page_size: int,
    org: str | None,
    *,
    form: dict[str, Any] | None = None,
    errors: dict[str, str] | None = None,
    done: str | None = None,
    status: int = 200,
) -> Response:
    items, total = service.list_tokens(db, principal, org or None, page, page_size)
    out = TokenPage(items=[token_out(db, t) for t in items], total=total, page=page, page_size=page_size)
    ctx: dict[str, Any] = {
        "page": out,
        "pages": _pages(total, page_size),
        "filters": {"org": org or ""},
        "orgs": service.manageable_orgs(db, principal),
        "roles": service.grantable_roles(principal, tokens=True),
        "scopes": SCOPES,
        "form": form or {"scopes": ["cases:read"], "role": "officer", "org": principal.org_code},
        "errors": errors or {},
        "done": DONE.get(done or ""),
        "today": dt.date.today().isoformat(),
    }
    return render(request, "admin/tokens.html", ctx, json=out, principal=principal, status_code=status)


@router.get("/admin/tokens", dependencies=[SESSION_ONLY])
def tokens_page(
    request: Request,
    db: DB,
    principal: CurrentPrincipal,
    paging: PagingDep,
    org: str | None = None,
    done: str | None = None,
) -> Response:
    return _tokens_page(request, db, principal, paging.page, paging.page_size, (org or "")[:32], done=done)


@router.post("/admin/tokens", dependencies=[SESSION_ONLY])
def create_token(
    request: Request,
    db: DB,
    principal: CurrentPrincipal,
    org: Annotated[str, Form(max_length=32)],
    name: Annotated[str, Form(max_length=100)],
    role: Annotated[str, Form(max_length=24)],
    scopes: Annotated[list[str] | None, Form()] = None,
    expires_on: Annotated[str, Form(max_length=10)] = "",
    password: Annotated[str, Form(max_length=1024)] = "",
    csrf_token: Annotated[str, Form(max_length=100)] = "",
) -> Response:
    require_csrf(request, csrf_token)
    policy.require_token_admin(principal)
    form: dict[str, Any] = {"org": org, "name": name, "role": role, "expires_on": expires_on}
    form["scopes"] = scopes = [s[:32] for s in (scopes or [])[:20]]
    try:
        day = None
        if expires_on:
            try:
                day = dt.date.fromisoformat(expires_on)
            except ValueError:
                raise InvalidInput([FieldError("expires_on", "not a date")]) from None
        limit_password_check(request, principal.label)
        token, raw = service.issue_token(
            db, principal, org, name, _role(role), frozenset(scopes), password, expiry(day)
        )
    except RateLimited as e:
        page = _tokens_page(request, db, principal, 1, 50, None, form=form, errors={"password": e.message})
        page.status_code = 429
        page.headers["Retry-After"] = str(e.retry_after)
        return page
    except InvalidInput as e:
        errors = {f.field: f.message for f in e.errors}
        return _tokens_page(request, db, principal, 1, 50, None, form=form, errors=errors, status=422)
    out = TokenCreated(token=token_out(db, token), secret=raw)
    db.commit()
    return render(
        request, "admin/token_created.html", {"t": out}, json=out, principal=principal, status_code=201
    )


@router.post("/admin/tokens/{token_id}/revoke", dependencies=[SESSION_ONLY])
def revoke_token(
    token_id: int,
    request: Request,
    db: DB,
    principal: CurrentPrincipal,
    csrf_token: Annotated[str, Form(max_length=100)] = "",
) -> Response:
    require_csrf(request, csrf_token)
    token = service.revoke_token(db, principal, token_id)
    org = token_out(db, token).org
    db.commit()
    return RedirectResponse(f"/admin/tokens?org={org}&done=revoked", status_code=303)
