"""Typed FastAPI dependencies: the database session and the acting principal."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.orm import Session

from stopnet.access.principal import Principal
from stopnet.access.ratelimit import token_limiter
from stopnet.access.service import principal_for, resolve_token
from stopnet.config import Settings
from stopnet.core.errors import Unauthenticated
from stopnet.db.models import Organisation, User

from .sessions import COOKIE, read_cookie


def get_settings_dep(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def get_db(request: Request) -> Iterator[Session]:
    """One session per request. Write routes commit explicitly before answering; errors roll back."""
    session: Session = request.app.state.sessionmaker()
    try:
        yield session
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


DB = Annotated[Session, Depends(get_db)]
AppSettings = Annotated[Settings, Depends(get_settings_dep)]


def optional_principal(request: Request, db: DB) -> Principal | None:
    auth = request.headers.get("authorization", "")
    if auth.lower().startswith("bearer "):
        principal = resolve_token(db, auth[7:].strip(), token_limiter(request.app))
        db.commit()  # keep the token's last-used time even on read-only requests
        return principal
    settings: Settings = request.app.state.settings
    data = read_cookie(request.app.state.secret, request.cookies.get(COOKIE), settings.session_hours * 3600)
    if data is None:
        return None
    user = db.get(User, data.user_id)
    if user is None or not user.is_active or user.session_epoch != data.epoch:
        return None
    org = db.get_one(Organisation, user.org_id)
    if not org.is_active:
        return None
    return principal_for(user, org)


def require_principal(principal: Annotated[Principal | None, Depends(optional_principal)]) -> Principal:
    if principal is None:
        raise Unauthenticated("sign in or send an API token (Authorization: Bearer ...)")
    return principal


CurrentPrincipal = Annotated[Principal, Depends(require_principal)]
MaybePrincipal = Annotated[Principal | None, Depends(optional_principal)]
