"""Sign-in (password, second factor, forced password change), accounts, API tokens."""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from collections.abc import Sequence

from sqlalchemy import delete, func, or_, select, update
from sqlalchemy.orm import Session

from stopnet.audit.service import record
from stopnet.core.errors import Conflict, FieldError, Forbidden, InvalidInput, NotFound, Unauthenticated
from stopnet.core.like import LIKE_ESCAPE, contains_pattern
from stopnet.db.models import ApiToken, Organisation, Role, User, utcnow
from stopnet.db.models.access import RecoveryCode

from . import policy, totp
from .passwords import hash_password, needs_rehash, verify_password
from .principal import Principal
from .ratelimit import SignInGuard, SlidingWindowLimiter, too_many_failures

TOKEN_PREFIX = "stn"  # noqa: S105 - a public prefix, not a secret
ALL_SCOPES = frozenset({"cases:read", "cases:write", "cases:validate", "import", "export", "audit:read"})
MIN_PASSWORD = 12
MAX_PASSWORD = 1024


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


def authenticate(
    session: Session, email: str, password: str, *, ip: str | None = None, guard: SignInGuard | None = None
) -> User:
    """Check a password, behind the sign-in guard (rate limits and the back-off of failures).

    Every refusal costs one Argon2 verification and says the same for an existing and an unknown
    address: "wrong e-mail or password", or, while failures impose a wait, "too many failed sign-ins;
    try again in …". A wait holds attempts back without checking them; it never locks the account:
    the owner, from another address, waits at most the per-account cap (ratelimit.SignInGuard).

    This is the first step of a sign-in: :func:`next_step` says what is still asked (the second factor,
    a new password) before :func:`complete_sign_in` opens a session.
    """
    account, address = email.strip().lower(), ip or "unknown"
    wait = guard.admit("password", address, account) if guard is not None else 0.0
    user = session.scalar(select(User).where(User.email == account))
    if wait > 0:
        verify_password(_DUMMY_HASH(), password)  # the cost of a check, without checking
        raise Unauthenticated(too_many_failures(wait))
    if user is None or not user.is_active:
        verify_password(_DUMMY_HASH(), password)  # same cost whether or not the user exists
        if guard is not None:
            guard.failed("password", address, account)
        raise Unauthenticated("wrong e-mail or password")
    if not verify_password(user.password_hash, password):
        user.failed_logins += 1
        details: dict[str, object] = {"factor": "password", "failures": user.failed_logins, **_ip(ip)}
        if guard is not None:
            guard.failed("password", address, account)
            _note_wait(user, guard, "password", account, details)
        record(session, None, "auth.failure", "user", user.id, details)
        session.flush()
        raise Unauthenticated("wrong e-mail or password")
    if guard is not None:
        guard.succeeded("password", address, account)
    if needs_rehash(user.password_hash):
        user.password_hash = hash_password(password)
    user.failed_logins = 0
    user.locked_until = None
    if not user.totp_enabled:
        user.last_login_at = utcnow()
    session.flush()
    return user


def _note_wait(user: User, guard: SignInGuard, factor: str, account: str, details: dict[str, object]) -> None:
    """Keep the account's wait in ``locked_until`` (shown to administrators, audited); never checked."""
    wait = guard.per_account.wait(f"{factor}:{account}")
    user.locked_until = utcnow() + dt.timedelta(seconds=wait) if wait > 0 else None
    if user.locked_until is not None:
        details["locked_until"] = user.locked_until.isoformat()


def _ip(ip: str | None) -> dict[str, str]:
    return {"ip": ip} if ip else {}


def next_step(user: User) -> str | None:
    """What a sign-in still asks after the password: "totp", "password" (a new one) or nothing."""
    if user.totp_enabled and user.totp_secret:
        return "totp"
    if user.must_change_password:
        return "password"
    return None


def pending_user(session: Session, user_id: int, epoch: int) -> User:
    """The user of a pending sign-in, still active and not signed out everywhere since."""
    user = session.get(User, user_id)
    if user is None or not user.is_active or user.session_epoch != epoch:
        raise Unauthenticated("the sign-in has expired; sign in again")
    org = session.get_one(Organisation, user.org_id)
    if not org.is_active:
        raise Unauthenticated("the sign-in has expired; sign in again")
    return user


def verify_second_factor(
    session: Session, user: User, code: str, *, ip: str | None = None, guard: SignInGuard | None = None
) -> str:
    """Check a TOTP code or a recovery code; returns which. Failures wait like passwords' (their own
    count: a right password does not clear it), with the same message."""
    address = ip or "unknown"
    wait = guard.admit("code", address, user.email) if guard is not None else 0.0
    if wait > 0:
        raise Unauthenticated(too_many_failures(wait))
    factor = _use_code(session, user, code)
    if factor in (None, _USED):
        user.totp_failures += 1
        details: dict[str, object] = {"factor": "totp", "failures": user.totp_failures, **_ip(ip)}
        if guard is not None:
            guard.failed("code", address, user.email)
            _note_wait(user, guard, "code", user.email, details)
        record(session, None, "auth.failure", "user", user.id, details)
        session.flush()
        if factor == _USED:
            raise Unauthenticated(CODE_USED)
        raise Unauthenticated("wrong code")
    if guard is not None:
        guard.succeeded("code", address, user.email)
        guard.succeeded("password", address, user.email)
    user.totp_failures = 0
    user.failed_logins = 0
    user.locked_until = None
    session.flush()
    return factor


_USED = "used"
CODE_USED = (
    "this code has already been used (each code works once, also the one that turned two-step sign-in "
    "on); wait for the next code of your app"
)


def _use_code(session: Session, user: User, code: str) -> str | None:
    """Accept a TOTP code (never the same step twice) or an unused recovery code (then spent): which,
    ``_USED`` for a right TOTP code of a step already used, else None."""
    if not (user.totp_enabled and user.totp_secret):
        return None
    if totp.looks_like_totp(code):
        step = totp.matching_step(user.totp_secret, code, user.totp_last_step)
        if step is None:
            return _USED if totp.matching_step(user.totp_secret, code, None) is not None else None
        # conditional update: two requests racing with the same code cannot both succeed
        done = session.execute(
            update(User)
            .where(User.id == user.id, or_(User.totp_last_step.is_(None), User.totp_last_step < step))
            .values(totp_last_step=step)
            .execution_options(synchronize_session="fetch")
        )
        return "totp" if done.rowcount == 1 else _USED  # type: ignore[attr-defined]
    if not totp.normalise_recovery_code(code):
        return None
    spent = session.execute(
        update(RecoveryCode)
        .where(
            RecoveryCode.user_id == user.id,
            RecoveryCode.code_hash == totp.hash_recovery_code(code),
            RecoveryCode.used_at.is_(None),
        )
        .values(used_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    return "recovery_code" if spent.rowcount == 1 else None  # type: ignore[attr-defined]


def complete_sign_in(session: Session, user: User, factor: str, *, ip: str | None = None) -> Principal:
    """Every step passed: audit the sign-in; the caller opens the session."""
    user.last_login_at = utcnow()
    org = session.get_one(Organisation, user.org_id)
    principal = principal_for(user, org)
    record(session, principal, "auth.sign_in", "user", user.id, {"factor": factor, **_ip(ip)})
    return principal


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
    record(
        session,
        principal,
        "token.create",
        "api_token",
        token.id,
        {"org": org.code, "name": name, "prefix": prefix, "role": role.value, "scopes": token.scopes},
    )
    return token, raw


#: ``session.info`` key set when :func:`resolve_token` recorded a token's last use (at most once a
#: minute per token), which the request then commits even if it only reads.
LAST_USE_RECORDED = "stopnet.last_use_recorded"


def resolve_token(session: Session, raw: str, limiter: SlidingWindowLimiter | None = None) -> Principal:
    """The principal of an API token, rate limited by ``limiter`` when given (the web app passes its
    per-token limiter, :func:`.ratelimit.token_limiter`: HTTP 429)."""
    found = session.execute(
        select(ApiToken, User.is_active)
        .outerjoin(User, User.id == ApiToken.user_id)
        .where(ApiToken.token_hash == _hash_token(raw))
    ).one_or_none()
    now = utcnow()
    if found is None:
        raise Unauthenticated("invalid or revoked API token")
    token, owner_active = found
    if token.revoked_at is not None or (token.expires_at and token.expires_at < now):
        raise Unauthenticated("invalid or revoked API token")
    if token.user_id is not None and not owner_active:  # the account it acts for is deactivated
        raise Unauthenticated("this API token's account is deactivated")
    org = session.get_one(Organisation, token.org_id)
    if not org.is_active:
        raise Unauthenticated("organisation disabled")
    if limiter is not None:
        limiter.check(f"token:{token.token_hash}", "requests with this API token")
    if token.last_used_at is None or (now - token.last_used_at).total_seconds() > 60:
        token.last_used_at = now
        session.flush()
        session.info[LAST_USE_RECORDED] = True  # the caller commits it (web/deps.py)
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


# ------------------------------------------------------------------------------------------ passwords


def check_new_password(password: str, confirm: str | None, email: str, field: str = "new_password") -> None:
    """At least 12 characters, at most 1024, not the e-mail address; ``confirm`` (when given) equal."""
    problems = []
    if len(password) < MIN_PASSWORD:
        problems.append(FieldError(field, f"at least {MIN_PASSWORD} characters"))
    elif len(password) > MAX_PASSWORD:
        problems.append(FieldError(field, f"at most {MAX_PASSWORD} characters"))
    elif password.strip().lower() == email.strip().lower():
        problems.append(FieldError(field, "must not be the e-mail address"))
    if confirm is not None and confirm != password:
        problems.append(FieldError(f"{field}_confirm", "the two passwords differ"))
    if problems:
        raise InvalidInput(problems, "the new password is not acceptable")


def _set_password(user: User, password: str, *, must_change: bool) -> None:
    user.password_hash = hash_password(password)
    user.must_change_password = must_change
    user.password_changed_at = utcnow()
    user.failed_logins = 0
    user.totp_failures = 0
    user.locked_until = None
    user.session_epoch += 1  # every session of the old password ends


def session_user(session: Session, principal: Principal) -> User:
    """The signed-in user acting (never an API token)."""
    policy.require_session(principal)
    user = session.get(User, principal.user_id) if principal.user_id is not None else None
    if user is None:
        raise Unauthenticated("sign in again")
    return user


def confirm_password(user: User, password: str, what: str, field: str = "password") -> None:
    """Sensitive changes to an account ask for its password again (a session left open, or stolen, is
    not enough); ``what`` says, in the error, what was therefore not done."""
    if not password:
        raise InvalidInput(
            [FieldError(field, "type your password to confirm", code="required")], f"password needed: {what}"
        )
    if not verify_password(user.password_hash, password):
        raise InvalidInput(
            [FieldError(field, "this is not your password", code="wrong_password")], f"wrong password: {what}"
        )


def change_password(
    session: Session, principal: Principal, current: str, new: str, confirm: str | None = None
) -> User:
    """A user changes their own password (the current one is required); every other session ends."""
    user = session_user(session, principal)
    confirm_password(user, current, "the password was not changed", field="current_password")
    check_new_password(new, confirm, user.email)
    if verify_password(user.password_hash, new):
        raise InvalidInput([FieldError("new_password", "choose a password you have not used here")])
    _set_password(user, new, must_change=False)
    record(session, principal, "password.change", "user", user.id)
    session.flush()
    return user


def change_required_password(
    session: Session, user: User, new: str, confirm: str | None, *, ip: str | None = None
) -> None:
    """The last step of a sign-in after a reset: the temporary password is replaced."""
    if not user.must_change_password:
        raise Conflict("no password change is pending")
    check_new_password(new, confirm, user.email)
    if verify_password(user.password_hash, new):
        raise InvalidInput([FieldError("new_password", "choose another password than the temporary one")])
    _set_password(user, new, must_change=False)
    org = session.get_one(Organisation, user.org_id)
    record(
        session, principal_for(user, org), "password.change", "user", user.id, {"required": True, **_ip(ip)}
    )
    session.flush()


def sign_out_everywhere(session: Session, principal: Principal) -> None:
    user = session_user(session, principal)
    user.session_epoch += 1
    record(session, principal, "auth.sign_out_everywhere", "user", user.id)
    session.flush()


def check_email(email: str, field: str = "email") -> str:
    """An e-mail address, trimmed and in lower case; 422 if it is not one."""
    email = email.strip().lower()
    if "@" not in email or len(email) > 254 or any(c.isspace() for c in email):
        raise InvalidInput([FieldError(field, "not an e-mail address", value=email[:254])])
    return email


def change_email(session: Session, principal: Principal, new_email: str, password: str) -> User:
    """A user changes the e-mail address they sign in with; their password is asked again."""
    user = session_user(session, principal)
    email = check_email(new_email, "new_email")
    confirm_password(user, password, "the e-mail address was not changed")
    if email == user.email:
        return user
    if session.scalar(select(User.id).where(User.email == email)) is not None:
        raise Conflict(f"another account signs in with {email}")
    before = user.email
    user.email = email
    record(session, principal, "user.email_change", "user", user.id, {"from": before, "to": email})
    session.flush()
    return user


# ------------------------------------------------------------------------------------------ second factor


def start_totp_enrolment(principal: Principal, user: User) -> tuple[str, str]:
    """A new secret and its provisioning URI; nothing is stored until a code confirms it."""
    if user.totp_enabled:
        raise Conflict("the second factor is already on; turn it off first to enrol another device")
    secret = totp.new_secret()
    return secret, totp.provisioning_uri(secret, user.email)


def enable_totp(session: Session, principal: Principal, secret: str, code: str, password: str) -> list[str]:
    """Confirm an enrolment with the password and a code of the new secret; returns the recovery codes
    (shown once)."""
    user = session_user(session, principal)
    if user.totp_enabled:
        raise Conflict("the second factor is already on")
    confirm_password(user, password, "two-step sign-in was not turned on")
    step = totp.matching_step(secret, code, None)
    if step is None:
        raise InvalidInput([FieldError("code", "wrong code; check the time of your device")], "wrong code")
    user.totp_secret = secret
    user.totp_enabled = True
    user.totp_last_step = step
    user.totp_failures = 0
    codes = _replace_recovery_codes(session, user)
    record(session, principal, "totp.enable", "user", user.id)
    session.flush()
    return codes


def _replace_recovery_codes(session: Session, user: User) -> list[str]:
    session.execute(delete(RecoveryCode).where(RecoveryCode.user_id == user.id))
    codes = totp.new_recovery_codes()
    session.add_all(RecoveryCode(user_id=user.id, code_hash=totp.hash_recovery_code(c)) for c in codes)
    session.flush()
    return codes


def recovery_codes_left(session: Session, user_id: int) -> int:
    return (
        session.scalar(
            select(func.count())
            .select_from(RecoveryCode)
            .where(RecoveryCode.user_id == user_id, RecoveryCode.used_at.is_(None))
        )
        or 0
    )


def regenerate_recovery_codes(session: Session, principal: Principal, password: str) -> list[str]:
    user = session_user(session, principal)
    if not user.totp_enabled:
        raise Conflict("turn the second factor on first")
    confirm_password(user, password, "no new recovery codes were made")
    codes = _replace_recovery_codes(session, user)
    record(session, principal, "totp.recovery_codes", "user", user.id)
    return codes


def disable_totp(session: Session, principal: Principal, password: str, code: str) -> None:
    """A user turns their second factor off: their password and a current code (or a recovery code)."""
    user = session_user(session, principal)
    if not user.totp_enabled:
        raise Conflict("the second factor is not on")
    confirm_password(user, password, "two-step sign-in stays on")
    if _use_code(session, user, code) is None:
        raise InvalidInput([FieldError("code", "wrong code")], "wrong code: two-step sign-in stays on")
    _clear_totp(session, user)
    record(session, principal, "totp.disable", "user", user.id)
    session.flush()


def _clear_totp(session: Session, user: User) -> None:
    user.totp_enabled = False
    user.totp_secret = None
    user.totp_last_step = None
    user.totp_failures = 0
    session.execute(delete(RecoveryCode).where(RecoveryCode.user_id == user.id))


# ------------------------------------------------------------------------------------------ accounts


def _org_by_code(session: Session, code: str) -> Organisation:
    org = session.scalar(select(Organisation).where(Organisation.code == code.strip().upper()))
    if org is None:
        raise NotFound(f"no organisation {code!r}")
    return org


def list_users(
    session: Session,
    principal: Principal,
    org_code: str | None = None,
    q: str | None = None,
    page: int = 1,
    page_size: int = 50,
) -> tuple[Sequence[User], int]:
    """Accounts an administrator (every organisation) or a contact point (its own) may see."""
    policy.require_user_manager(principal)
    stmt = select(User)
    if principal.role is not Role.ADMIN:
        stmt = stmt.where(User.org_id == principal.org_id)
    if org_code:
        org = _org_by_code(session, org_code)
        if not policy.can_see_org_accounts(principal, org.id):
            raise Forbidden("a contact point sees the accounts of its own administration only")
        stmt = stmt.where(User.org_id == org.id)
    if q:
        like = contains_pattern(q.strip())
        stmt = stmt.where(
            or_(
                func.lower(User.email).like(like, escape=LIKE_ESCAPE),
                func.lower(User.display_name).like(like, escape=LIKE_ESCAPE),
            )
        )
    total = session.scalar(select(func.count()).select_from(stmt.subquery())) or 0
    items = session.scalars(
        stmt.order_by(User.org_id, User.email).offset((page - 1) * page_size).limit(page_size)
    ).all()
    return items, total


def get_user(session: Session, principal: Principal, user_id: int) -> User:
    policy.require_user_manager(principal)
    user = session.get(User, user_id)
    if user is None or not policy.can_see_org_accounts(principal, user.org_id):
        raise NotFound(f"no user {user_id}")
    return user


def _managed_user(session: Session, principal: Principal, user_id: int) -> User:
    user = get_user(session, principal, user_id)
    if not policy.can_manage_user(principal, user.org_id, user.role):
        raise Forbidden("a contact point manages the officers of its own administration only")
    return user


def temporary_password() -> str:
    """A random temporary password (about 100 bits), to be changed at the next sign-in."""
    return secrets.token_urlsafe(16)


def admin_create_user(
    session: Session,
    principal: Principal,
    org_code: str,
    email: str,
    display_name: str,
    role: Role,
    password: str | None = None,
) -> tuple[User, str]:
    """Create an account with a temporary password (given, or generated and returned once)."""
    policy.require_user_manager(principal)
    if not org_code.strip():
        raise InvalidInput([FieldError("org", "choose the organisation of the account")])
    org = _org_by_code(session, org_code)
    if not policy.can_manage_user(principal, org.id, role):
        raise Forbidden("a contact point creates officers of its own administration only")
    policy.require_role_fits(role, org.kind)
    email = check_email(email)
    password = password or temporary_password()
    check_new_password(password, None, email, field="temporary_password")
    user = create_user(session, org, email, display_name.strip() or email, role, password)
    user.must_change_password = True
    record(
        session,
        principal,
        "user.create",
        "user",
        user.id,
        {"email": email, "org": org.code, "role": role.value},
    )
    session.flush()
    return user, password


def change_role(session: Session, principal: Principal, user_id: int, role: Role) -> User:
    """A permission change: platform administrators only; audited with the old and the new role."""
    policy.require_session(principal)
    if principal.role is not Role.ADMIN:
        raise Forbidden("only platform administrators change roles")
    user = get_user(session, principal, user_id)
    if user.id == principal.user_id:
        raise Forbidden("you cannot change your own role")
    if user.role is role:
        return user
    org = session.get_one(Organisation, user.org_id)
    policy.require_role_fits(role, org.kind)
    if user.role is Role.ADMIN:
        _keep_an_admin(session, user)
    before = user.role
    user.role = role
    details = {"email": user.email, "from": before.value, "to": role.value}
    record(session, principal, "user.role_change", "user", user.id, details)
    session.flush()
    return user


def move_user(
    session: Session, principal: Principal, user_id: int, org_code: str, role: Role | None = None
) -> User:
    """Move an account to another organisation (platform administrators only), with a role that fits the
    new organisation (default: the same role). Every session of the account ends, since what it may see
    changes; its organisation's API tokens stay with that organisation. Audited as ``user.move``."""
    policy.require_session(principal)
    if principal.role is not Role.ADMIN:
        raise Forbidden("only platform administrators move accounts between organisations")
    user = get_user(session, principal, user_id)
    if user.id == principal.user_id:
        raise Forbidden("you cannot move your own account")
    if not org_code.strip():
        raise InvalidInput([FieldError("org", "choose the organisation the account moves to")])
    org = session.scalar(select(Organisation).where(Organisation.code == org_code.strip().upper()))
    if org is None:
        raise InvalidInput([FieldError("org", "no organisation with this code", value=org_code)])
    role = role or user.role
    if org.kind not in policy.ROLE_ORG_KINDS.get(role, ()):
        raise InvalidInput(
            [
                FieldError(
                    "role",
                    f"the role {role.value} does not fit {org.code} (a {org.kind.value.replace('_', ' ')}); "
                    "choose another role",
                    value=role.value,
                )
            ]
        )
    if user.org_id == org.id and user.role is role:
        return user
    if user.role is Role.ADMIN and role is not Role.ADMIN:
        _keep_an_admin(session, user)
    before_org = session.get_one(Organisation, user.org_id)
    details = {
        "email": user.email,
        "from_org": before_org.code,
        "to_org": org.code,
        "from_role": user.role.value,
        "to_role": role.value,
    }
    user.org_id, user.role = org.id, role
    user.session_epoch += 1
    record(session, principal, "user.move", "user", user.id, details)
    session.flush()
    return user


def _keep_an_admin(session: Session, leaving: User) -> None:
    others = session.scalar(
        select(func.count())
        .select_from(User)
        .where(User.role == Role.ADMIN, User.is_active.is_(True), User.id != leaving.id)
    )
    if not others:
        raise Conflict("this is the last active platform administrator")


def set_active(session: Session, principal: Principal, user_id: int, active: bool) -> User:
    user = _managed_user(session, principal, user_id)
    if user.id == principal.user_id:
        raise Forbidden("you cannot deactivate your own account")
    if user.is_active == active:
        return user
    if not active and user.role is Role.ADMIN:
        _keep_an_admin(session, user)
    user.is_active = active
    action = "user.activate" if active else "user.deactivate"
    record(session, principal, action, "user", user.id, {"email": user.email})
    if not active:
        user.session_epoch += 1
        _revoke_tokens_of(session, principal, user)
    session.flush()
    return user


def _revoke_tokens_of(session: Session, principal: Principal, user: User) -> None:
    """A deactivated account's API tokens stop for good (reactivating the account does not revive them):
    a token made by a person acts for that person, whose actions it is written under."""
    tokens = session.scalars(
        select(ApiToken).where(ApiToken.user_id == user.id, ApiToken.revoked_at.is_(None))
    ).all()
    now = utcnow()
    for token in tokens:
        token.revoked_at = now
        details = {"prefix": token.prefix, "name": token.name, "reason": "account deactivated"}
        record(session, principal, "token.revoke", "api_token", token.id, details)


def reset_password(
    session: Session, principal: Principal, user_id: int, password: str | None = None
) -> tuple[User, str]:
    """Set a temporary password (given or generated, returned once); the user changes it at sign-in.

    Every session of the user ends and the lock-out is lifted. The second factor stays on (see
    :func:`reset_totp` for a lost device).
    """
    user = _managed_user(session, principal, user_id)
    if user.id == principal.user_id:
        raise Forbidden("change your own password on your account page")
    password = password or temporary_password()
    check_new_password(password, None, user.email, field="temporary_password")
    _set_password(user, password, must_change=True)
    record(session, principal, "password.reset", "user", user.id, {"email": user.email})
    session.flush()
    return user, password


def reset_totp(session: Session, principal: Principal, user_id: int) -> User:
    """Turn off a user's second factor (lost device); the user signs in with the password and enrols again."""
    user = _managed_user(session, principal, user_id)
    if not user.totp_enabled:
        return user
    _clear_totp(session, user)
    user.session_epoch += 1
    record(session, principal, "totp.reset", "user", user.id, {"email": user.email})
    session.flush()
    return user


# ------------------------------------------------------------------------------------------ API tokens


def list_tokens(
    session: Session, principal: Principal, org_code: str | None = None, page: int = 1, page_size: int = 50
) -> tuple[Sequence[ApiToken], int]:
    policy.require_token_admin(principal)
    stmt = select(ApiToken)
    if org_code:
        org = _org_by_code(session, org_code)
        policy.require_token_manager(principal, org.id)
        stmt = stmt.where(ApiToken.org_id == org.id)
    else:
        policy.require_token_manager(principal, principal.org_id)
        if principal.role is not Role.ADMIN:
            stmt = stmt.where(ApiToken.org_id == principal.org_id)
    total = session.scalar(select(func.count()).select_from(stmt.subquery())) or 0
    items = session.scalars(
        stmt.order_by(ApiToken.revoked_at.is_not(None), ApiToken.id.desc())
        .offset((page - 1) * page_size)
        .limit(page_size)
    ).all()
    return items, total


def issue_token(
    session: Session,
    principal: Principal,
    org_code: str,
    name: str,
    role: Role,
    scopes: frozenset[str],
    password: str,
    expires_at: dt.datetime | None = None,
) -> tuple[ApiToken, str]:
    """Create an organisation's token with a role and scopes; the maker's password is asked again. The
    secret is returned once; the token acts for its maker (revoked when the maker's account is
    deactivated)."""
    policy.require_token_admin(principal)
    maker = session_user(session, principal)
    org = _org_by_code(session, org_code)
    policy.require_token_manager(principal, org.id)
    policy.require_token_role(principal, role, org.kind)
    name = name.strip()
    if not name:
        raise InvalidInput([FieldError("name", "say what the token is for")])
    if not scopes:
        raise InvalidInput([FieldError("scopes", "grant at least one scope")])
    unknown = scopes - ALL_SCOPES
    if unknown:
        raise InvalidInput([FieldError("scopes", f"unknown scopes: {', '.join(sorted(unknown))}")])
    if expires_at is not None and expires_at <= utcnow():
        raise InvalidInput([FieldError("expires_on", "must be in the future")])
    confirm_password(maker, password, "the token was not created")
    token, raw = create_token(session, principal, org, name, role, scopes, user=maker)
    token.expires_at = expires_at
    session.flush()
    return token, raw


def get_token(session: Session, principal: Principal, token_id: int) -> ApiToken:
    policy.require_token_admin(principal)
    token = session.get(ApiToken, token_id)
    if token is None or not policy.can_see_org_accounts(principal, token.org_id):
        raise NotFound(f"no API token {token_id}")
    policy.require_token_manager(principal, token.org_id)
    return token


def revoke_token(session: Session, principal: Principal, token_id: int) -> ApiToken:
    token = get_token(session, principal, token_id)
    if token.revoked_at is None:
        token.revoked_at = utcnow()
        record(
            session,
            principal,
            "token.revoke",
            "api_token",
            token.id,
            {"prefix": token.prefix, "name": token.name},
        )
        session.flush()
    return token


def manageable_orgs(session: Session, principal: Principal) -> Sequence[Organisation]:
    """The organisations whose accounts and tokens ``principal`` manages (for the pages' choices)."""
    if principal.role is Role.ADMIN:
        return session.scalars(select(Organisation).order_by(Organisation.code)).all()
    return [session.get_one(Organisation, principal.org_id)]


def grantable_roles(principal: Principal, tokens: bool = False) -> list[Role]:
    """The roles ``principal`` may give to a new account (or to a token with ``tokens``)."""
    if principal.role is Role.ADMIN:
        return list(Role)
    granted = policy.CONTACT_POINT_TOKEN_ROLES if tokens else policy.CONTACT_POINT_GRANTS
    return [r for r in Role if r in granted]
