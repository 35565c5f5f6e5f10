"""REST API of accounts and API tokens (``/api/v1/users``, ``/api/v1/tokens``).

Managed by people signed in (the session cookie; a change must come from this site: its ``Origin`` or
the ``X-CSRF-Token`` header, web/deps.require_same_site): an API token never manages accounts or tokens,
so a leaked machine token cannot make itself more.
Platform administrators manage every organisation; a national contact point the officers and the API
tokens of its own administration (docs/permissions.md).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse
from sqlalchemy.orm import Session

from stopnet.core.pagination import PagingDep
from stopnet.db.models import ApiToken, Organisation, User
from stopnet.web.deps import DB, SESSION_ONLY, CurrentPrincipal

from . import policy, service
from .ratelimit import limit_password_check
from .schemas import (
    PasswordReset,
    PasswordResetOut,
    RoleChange,
    TokenCreate,
    TokenCreated,
    TokenOut,
    TokenPage,
    UserCreate,
    UserCreated,
    UserMove,
    UserOut,
    UserPage,
)

router = APIRouter(prefix="/api/v1", tags=["accounts"])


def user_out(db: Session, user: User) -> UserOut:
    return UserOut.of(user, db.get_one(Organisation, user.org_id))


def users_out(db: Session, users: Sequence[User]) -> list[UserOut]:
    return [user_out(db, u) for u in users]


def token_out(db: Session, token: ApiToken) -> TokenOut:
    owner = db.get(User, token.user_id) if token.user_id is not None else None
    return TokenOut.of(token, db.get_one(Organisation, token.org_id), owner.email if owner else None)


def expiry(day: dt.date | None) -> dt.datetime | None:
    """A token's last day, as the end of that day (UTC)."""
    if day is None:
        return None
    return dt.datetime.combine(day + dt.timedelta(days=1), dt.time(), tzinfo=dt.UTC)


@router.get("/users", response_model=UserPage, dependencies=[SESSION_ONLY])
def list_users(
    db: DB,
    principal: CurrentPrincipal,
    paging: PagingDep,
    org: Annotated[str | None, Query(max_length=32)] = None,
    q: Annotated[str | None, Query(max_length=100)] = None,
) -> UserPage:
    """Accounts: every organisation's for a platform administrator, its own for a contact point."""
    items, total = service.list_users(db, principal, org, q, paging.page, paging.page_size)
    return UserPage(items=users_out(db, items), total=total, page=paging.page, page_size=paging.page_size)


@router.post("/users", response_model=UserCreated, status_code=201, dependencies=[SESSION_ONLY])
def create_user(body: UserCreate, db: DB, principal: CurrentPrincipal) -> JSONResponse:
    """Create an account; its temporary password is returned once and must be changed at first sign-in."""
    user, password = service.admin_create_user(
        db, principal, body.org, body.email, body.display_name, body.role, body.temporary_password
    )
    out = UserCreated(user=user_out(db, user), temporary_password=password)
    db.commit()
    return JSONResponse(
        out.model_dump(mode="json"), status_code=201, headers={"Location": f"/api/v1/users/{user.id}"}
    )


@router.get("/users/{user_id}", response_model=UserOut, dependencies=[SESSION_ONLY])
def get_user(user_id: int, db: DB, principal: CurrentPrincipal) -> UserOut:
    return user_out(db, service.get_user(db, principal, user_id))


@router.post("/users/{user_id}/role", response_model=UserOut, dependencies=[SESSION_ONLY])
def change_role(user_id: int, body: RoleChange, db: DB, principal: CurrentPrincipal) -> UserOut:
    """Change a user's role (platform administrators only; written to the audit trail)."""
    out = user_out(db, service.change_role(db, principal, user_id, body.role))
    db.commit()
    return out


@router.post("/users/{user_id}/organisation", response_model=UserOut, dependencies=[SESSION_ONLY])
def move_user(user_id: int, body: UserMove, db: DB, principal: CurrentPrincipal) -> UserOut:
    """Move an account to another organisation (platform administrators only; its sessions end; audited)."""
    out = user_out(db, service.move_user(db, principal, user_id, body.org, body.role))
    db.commit()
    return out


@router.post("/users/{user_id}/deactivate", response_model=UserOut, dependencies=[SESSION_ONLY])
def deactivate_user(user_id: int, db: DB, principal: CurrentPrincipal) -> UserOut:
    """Deactivate an account: its sessions end at once; its history stays."""
    out = user_out(db, service.set_active(db, principal, user_id, False))
    db.commit()
    return out


@router.post("/users/{user_id}/activate", response_model=UserOut, dependencies=[SESSION_ONLY])
def activate_user(user_id: int, db: DB, principal: CurrentPrincipal) -> UserOut:
    out = user_out(db, service.set_active(db, principal, user_id, True))
    db.commit()
    return out


@router.post("/users/{user_id}/reset-password", response_model=PasswordResetOut, dependencies=[SESSION_ONLY])
def reset_password(
    user_id: int, db: DB, principal: CurrentPrincipal, body: PasswordReset | None = None
) -> PasswordResetOut:
    """Set a temporary password (returned once); the user must change it at the next sign-in."""
    user, password = service.reset_password(db, principal, user_id, body.temporary_password if body else None)
    out = PasswordResetOut(user=user_out(db, user), temporary_password=password)
    db.commit()
    return out


@router.post("/users/{user_id}/reset-totp", response_model=UserOut, dependencies=[SESSION_ONLY])
def reset_totp(user_id: int, db: DB, principal: CurrentPrincipal) -> UserOut:
    """Turn off a user's two-step sign-in (a lost device); the user enrols again."""
    out = user_out(db, service.reset_totp(db, principal, user_id))
    db.commit()
    return out


@router.get("/tokens", response_model=TokenPage, dependencies=[SESSION_ONLY])
def list_tokens(
    db: DB,
    principal: CurrentPrincipal,
    paging: PagingDep,
    org: Annotated[str | None, Query(max_length=32)] = None,
) -> TokenPage:
    """API tokens (never their secrets): prefix, role, scopes, last use, revocation."""
    items, total = service.list_tokens(db, principal, org, paging.page, paging.page_size)
    return TokenPage(
        items=[token_out(db, t) for t in items], total=total, page=paging.page, page_size=paging.page_size
    )


@router.post("/tokens", response_model=TokenCreated, status_code=201, dependencies=[SESSION_ONLY])
def create_token(body: TokenCreate, request: Request, db: DB, principal: CurrentPrincipal) -> JSONResponse:
    """Create a token for an organisation's machine client (your password is asked again); the secret is
    returned once. The token acts for you, and is revoked if your account is deactivated."""
    policy.require_token_admin(principal)  # refused before the password is checked (and counted)
    limit_password_check(request, principal.label)
    token, raw = service.issue_token(
        db,
        principal,
        body.org,
        body.name,
        body.role,
        frozenset(body.scopes),
        body.password,
        expiry(body.expires_on),
    )
    out = TokenCreated(token=token_out(db, token), secret=raw)
    db.commit()
    return JSONResponse(
        out.model_dump(mode="json"), status_code=201, headers={"Location": f"/api/v1/tokens/{token.id}"}
    )


@router.get("/tokens/{token_id}", response_model=TokenOut, dependencies=[SESSION_ONLY])
def get_token(token_id: int, db: DB, principal: CurrentPrincipal) -> TokenOut:
    return token_out(db, service.get_token(db, principal, token_id))


@router.post("/tokens/{token_id}/revoke", response_model=TokenOut, dependencies=[SESSION_ONLY])
def revoke_token(token_id: int, db: DB, principal: CurrentPrincipal) -> TokenOut:
    """Revoke a token: it is refused from the next request on."""
    out = token_out(db, service.revoke_token(db, principal, token_id))
    db.commit()
    return out
