"""Sign-in, users and API tokens."""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets

from sqlalchemy import select
from sqlalchemy.orm import Session

from stopnet.audit.service import record
from stopnet.core.errors import Conflict, Forbidden, Unauthenticated
from stopnet.db.models import ApiToken, Organisation, Role, User, utcnow

from .passwords import hash_password, needs_rehash, verify_password
from .principal import Principal

TOKEN_PREFIX = "stn"  # noqa: S105 - a public prefix, not a secret
MAX_FAILURES = 5
LOCK_MINUTES = 15
ALL_SCOPES = frozenset({"cases:read", "cases:write", "cases:validate", "import", "export"})


def principal_for(user: User, org: Organisation, via: str = "session") -> Principal:
    return Principal(
        org_id=org.id,
        org_code=org.code,
        org_kind=org.kind,
        role=user.role,
        user_id=user.id,
        label=user.email,
        region_code=org.region_code,
        country_code=org.country_code,
        via=via,
        scopes=ALL_SCOPES,
    )


def authenticate(session: Session, email: str, password: str) -> User:
    """Check a password; lock the account for a while after repeated failures."""
    user = session.scalar(select(User).where(User.email == email.strip().lower()))
    now = utcnow()
    if user is None or not user.is_active:
        verify_password(_DUMMY_HASH(), password)  # same cost whether or not the user exists
        raise Unauthenticated("wrong e-mail or password")
    if user.locked_until and user.locked_until > now:
        raise Unauthenticated("too many failed sign-ins; try again later")
    if not verify_password(user.password_hash, password):
        user.failed_logins += 1
        if user.failed_logins >= MAX_FAILURES:
            user.locked_until = now + dt.timedelta(
                minutes=LOCK_MINUTES * (user.failed_logins - MAX_FAILURES + 1)
            )
        record(session, None, "auth.failure", "user", user.id, {"failures": user.failed_logins})
        session.flush()
        raise Unauthenticated("wrong e-mail or password")
    if needs_rehash(user.password_hash):
        user.password_hash = hash_password(password)
    user.failed_logins = 0
    user.locked_until = None
    user.last_login_at = now
    session.flush()
    return user


_dummy: list[str] = []


def _DUMMY_HASH() -> str:
    if not _dummy:
        _dummy.append(hash_password(secrets.token_urlsafe(16)))
    return _dummy[0]


def create_user(
    session: Session, org: Organisation, email: str, display_name: str, role: Role, password: str
) -> User:
    email = email.strip().lower()
    if session.scalar(select(User.id).where(User.email == email)) is not None:
        raise Conflict(f"a user with e-mail {email} exists")
    user = User(
        org_id=org.id,
        email=email,
        display_name=display_name,
        role=role,
        password_hash=hash_password(password),
    )
    session.add(user)
    session.flush()
    return user


def _hash_token(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


def create_token(
    session: Session,
    principal: Principal | None,
    org: Organisation,
    name: str,
    role: Role,
    scopes: frozenset[str] = ALL_SCOPES,
    user: User | None = None,
) -> tuple[ApiToken, str]:
    """Create an API token; the secret is returned once and only its hash is stored."""
    if principal is not None and not (principal.is_admin or principal.org_id == org.id):
        raise Forbidden("tokens are created by the organisation itself or a platform administrator")
    unknown = scopes - ALL_SCOPES
    if unknown:
        raise Conflict(f"unknown scopes: {', '.join(sorted(unknown))}")
    prefix = secrets.token_hex(4)
    raw = f"{TOKEN_PREFIX}_{prefix}_{secrets.token_urlsafe(32)}"
    token = ApiToken(
        org_id=org.id,
        user_id=user.id if user else None,
        name=name,
        prefix=prefix,
        token_hash=_hash_token(raw),
        role=role,
        scopes=" ".join(sorted(scopes)),
    )
    session.add(token)
    session.flush()
    record(session, principal, "token.create", "api_token", token.id, {"org": org.code, "name": name})
    return token, raw


def resolve_token(session: Session, raw: str) -> Principal:
    token = session.scalar(select(ApiToken).where(ApiToken.token_hash == _hash_token(raw)))
    now = utcnow()
    if token is None or token.revoked_at is not None or (token.expires_at and token.expires_at < now):
        raise Unauthenticated("invalid or revoked API token")
    org = session.get_one(Organisation, token.org_id)
    if not org.is_active:
        raise Unauthenticated("organisation disabled")
    if token.last_used_at is None or (now - token.last_used_at).total_seconds() > 60:
        token.last_used_at = now
        session.flush()
    return Principal(
        org_id=org.id,
        org_code=org.code,
        org_kind=org.kind,
        role=token.role,
        user_id=token.user_id,
        label=f"token:{token.prefix}:{token.name}",
        region_code=org.region_code,
        country_code=org.country_code,
        via="token",
        scopes=frozenset(token.scopes.split()),
    )


def cli_principal(session: Session, org_code: str, role: Role = Role.CONTACT_POINT) -> Principal:
    """The principal of a CLI command run on the server by an operator acting for an organisation."""
    org = session.scalar(select(Organisation).where(Organisation.code == org_code.upper()))
    if org is None:
        raise Unauthenticated(f"no organisation with code {org_code!r}")
    return Principal(
        org_id=org.id,
        org_code=org.code,
        org_kind=org.kind,
        role=role,
        label=f"cli:{org.code}",
        region_code=org.region_code,
        country_code=org.country_code,
        via="cli",
        scopes=ALL_SCOPES,
    )
