"""Typed FastAPI dependencies: the database session, the acting principal (with the same-site check of
API changes made with the session cookie) and each route's declared access for API tokens.

FastAPI runs a plain ``def`` dependency in its thread pool, one hand-over each (two for a generator).
Dependencies that do no blocking work are therefore ``async def``: the settings, the principal check,
and the session's creation (no connection is opened until the first query); what touches the database
(closing the session, reading the principal) runs in the thread pool.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from stopnet.access import policy
from stopnet.access.principal import Principal
from stopnet.access.ratelimit import token_limiter
from stopnet.access.service import LAST_USE_RECORDED, principal_for, resolve_token
from stopnet.config import Settings
from stopnet.core.errors import Forbidden, Unauthenticated
from stopnet.core.keys import pseudonym_master
from stopnet.db.models import Organisation, User, utcnow

from .sessions import COOKIE, CSRF_HEADER, SAFE_METHODS, read_cookie, same_site_write


async def get_settings_dep(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


async def get_db(request: Request) -> AsyncIterator[Session]:
    """One session per request. Write routes commit explicitly before answering; errors roll back.
    Rolling back and closing (which returns the connection to the pool) run in the thread pool."""
    session: Session = request.app.state.sessionmaker()
    try:
        yield session
    except BaseException:
        await run_in_threadpool(session.rollback)
        raise
    finally:
        await run_in_threadpool(session.close)


DB = Annotated[Session, Depends(get_db)]
AppSettings = Annotated[Settings, Depends(get_settings_dep)]


def optional_principal(request: Request, db: DB) -> Principal | None:
    auth = request.headers.get("authorization", "")
    if auth.lower().startswith("bearer "):
        principal = resolve_token(db, auth[7:].strip(), token_limiter(request.app))
        if db.info.pop(LAST_USE_RECORDED, False):
            db.commit()  # keep the token's last-used time even on read-only requests
        access = _route_access(request)
        if access is None:
            raise Forbidden("this address does not take API tokens")
        access.check_token(principal)
        return principal
    settings: Settings = request.app.state.settings
    cookie = request.cookies.get(COOKIE)
    data = read_cookie(request.app.state.secret, cookie, settings.session_hours * 3600)
    if data is None:
        return None
    if cookie and request.method not in SAFE_METHODS and request.url.path.startswith("/api/"):
        require_same_site(request, cookie)
    user = db.get(User, data.user_id)
    if user is None or not user.is_active or user.session_epoch != data.epoch:
        return None
    org = db.get_one(Organisation, user.org_id)
    if not org.is_active:
        return None
    return principal_for(user, org)


def require_same_site(request: Request, cookie: str) -> None:
    """An API call that changes state with the session cookie (whatever its body, or none) must prove
    it comes from this site: the page forms prove it with their ``csrf_token`` field (web/pages)."""
    own = f"{request.url.scheme}://{request.url.netloc}"
    origin = request.headers.get("origin")
    if not same_site_write(request.app.state.secret, cookie, origin, own, request.headers.get(CSRF_HEADER)):
        if origin is not None:
            raise Forbidden(f"refused: this change was sent from another site ({origin[:100]})")
        raise Forbidden(
            "refused: a change made with the session cookie needs the X-CSRF-Token header "
            "(the csrf_token of this site's pages) or this site's Origin; machine clients use an API token"
        )


def require_principal(principal: Principal | None) -> Principal:
    if principal is None:
        raise Unauthenticated("sign in or send an API token (Authorization: Bearer ...)")
    return principal


async def current_principal(
    principal: Annotated[Principal | None, Depends(optional_principal)],
) -> Principal:
    return require_principal(principal)


CurrentPrincipal = Annotated[Principal, Depends(current_principal)]
MaybePrincipal = Annotated[Principal | None, Depends(optional_principal)]


# ------------------------------------------------------------------------------------------ declared access


class RouteAccess:
    """What a route asks of an API token; every route declares exactly one in its decorator
    (``dependencies=[READ]``), and tests/access/test_token_scopes.py fails for a route without one.

    The dependency only records the declaration on the request; it is checked in one place,
    :func:`optional_principal`, when a token is resolved (for the route's principal, or a principal
    read by the route itself). A token on a route that declares nothing is refused.
    ``scope``: the scope a token needs; ``None``: no token at all (people signed in only), unless
    ``public``. Sessions act with every scope of their role (their permissions are the role's).
    """

    def __init__(self, scope: str | None, *, public: bool = False) -> None:
        self.scope = scope
        self.public = public

    def __repr__(self) -> str:
        return "PUBLIC" if self.public else f"RouteAccess({self.scope or 'signed-in people only'})"

    async def __call__(self, request: Request) -> None:
        request.state.route_access = self

    def check_token(self, principal: Principal) -> None:
        if self.public:
            return
        if self.scope is None:
            policy.require_session(principal)
        else:
            policy.require_scope(principal, self.scope)


def _route_access(request: Request) -> RouteAccess | None:
    access: RouteAccess | None = getattr(request.state, "route_access", None)
    return access


#: Anyone, signed in or not (the sign-in steps, health, the published code lists).
PUBLIC = Depends(RouteAccess(None, public=True))
#: People signed in only: every API token is refused (accounts, tokens, second factors, page forms).
SESSION_ONLY = Depends(RouteAccess(None))
READ = Depends(RouteAccess("cases:read"))
WRITE = Depends(RouteAccess("cases:write"))
VALIDATE = Depends(RouteAccess("cases:validate"))
IMPORT = Depends(RouteAccess("import"))
EXPORT = Depends(RouteAccess("export"))
AUDIT = Depends(RouteAccess("audit:read"))


def pseudonym_key(request: Request) -> bytes:
    """The pseudonyms' master key for this request (``core.keys.pseudonym_master``, with the app's secret)."""
    return pseudonym_master(request.app.state.settings, bytes(request.app.state.secret))


def current_time(request: Request) -> dt.datetime:
    """The request's "now": ``app.state.clock()`` when the application was given a clock (tests,
    replays), else the wall clock. Services never read the clock themselves."""
    clock = getattr(request.app.state, "clock", None)
    return clock() if clock is not None else utcnow()


def today(request: Request) -> dt.date:
    """The request's date (of :func:`current_time`)."""
    return current_time(request).date()


Now = Annotated[dt.datetime, Depends(current_time)]
