"""API schemas of accounts, second factors and API tokens (the tables are in db/models/access.py)."""

from __future__ import annotations

import datetime as dt

from pydantic import BaseModel, ConfigDict, Field

from stopnet.db.models import ApiToken, Organisation, Role, User, utcnow


class UserOut(BaseModel):
    id: int
    email: str
    display_name: str
    role: Role
    org: str
    org_name: str
    is_active: bool
    totp_enabled: bool
    must_change_password: bool
    locked: bool
    last_login_at: dt.datetime | None
    created_at: dt.datetime | None

    @classmethod
    def of(cls, user: User, org: Organisation) -> UserOut:
        now = utcnow()
        return cls(
            id=user.id,
            email=user.email,
            display_name=user.display_name,
            role=user.role,
            org=org.code,
            org_name=org.name,
            is_active=user.is_active,
            totp_enabled=user.totp_enabled,
            must_change_password=user.must_change_password,
            locked=bool(user.locked_until and user.locked_until > now),
            last_login_at=user.last_login_at,
            created_at=user.created_at,
        )


class UserPage(BaseModel):
    items: list[UserOut]
    total: int
    page: int
    page_size: int


class UserCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    org: str = Field(min_length=1, max_length=32, description="Code of the user's organisation.")
    email: str = Field(min_length=3, max_length=254)
    display_name: str = Field(default="", max_length=200)
    role: Role
    temporary_password: str | None = Field(
        default=None,
        max_length=1024,
        description="Leave out to have one generated; the user must change it at the first sign-in.",
    )


class UserCreated(BaseModel):
    user: UserOut
    temporary_password: str = Field(description="Shown once: hand it to the user by a separate channel.")


class RoleChange(BaseModel):
    model_config = ConfigDict(extra="forbid")

    role: Role


class UserMove(BaseModel):
    """Move an account to another organisation; ``role`` defaults to its current one."""

    model_config = ConfigDict(extra="forbid")

    org: str = Field(min_length=1, max_length=32, description="Code of the organisation, e.g. DE-CUS.")
    role: Role | None = None


class PasswordReset(BaseModel):
    model_config = ConfigDict(extra="forbid")

    temporary_password: str | None = Field(default=None, max_length=1024)


class PasswordResetOut(BaseModel):
    user: UserOut
    temporary_password: str = Field(description="Shown once; the user must change it at the next sign-in.")


class TokenOut(BaseModel):
    id: int
    org: str
    name: str
    prefix: str
    role: Role
    scopes: list[str]
    created_at: dt.datetime | None
    last_used_at: dt.datetime | None
    expires_at: dt.datetime | None
    revoked_at: dt.datetime | None
    active: bool
    created_by: str | None = Field(
        description="The account the token acts for (its e-mail); none: an organisation token made on the "
        "server (`stopnet users token`). A person's tokens are revoked when the account is deactivated."
    )

    @classmethod
    def of(cls, token: ApiToken, org: Organisation, created_by: str | None = None) -> TokenOut:
        now = utcnow()
        return cls(
            id=token.id,
            org=org.code,
            name=token.name,
            prefix=token.prefix,
            role=token.role,
            scopes=token.scopes.split(),
            created_at=token.created_at,
            last_used_at=token.last_used_at,
            expires_at=token.expires_at,
            revoked_at=token.revoked_at,
            active=token.revoked_at is None and (token.expires_at is None or token.expires_at > now),
            created_by=created_by,
        )


class TokenPage(BaseModel):
    items: list[TokenOut]
    total: int
    page: int
    page_size: int


class TokenCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    org: str = Field(min_length=1, max_length=32, description="Code of the organisation the token acts for.")
    name: str = Field(min_length=1, max_length=100, description="What the token is for.")
    role: Role = Role.OFFICER
    scopes: list[str] = Field(min_length=1, max_length=10)
    expires_on: dt.date | None = Field(default=None, description="Last day the token works (UTC).")
    password: str = Field(default="", max_length=1024, description="Your password, asked again.")


class TokenCreated(BaseModel):
    token: TokenOut
    secret: str = Field(description="Shown once; only its SHA-256 is stored. Send as Authorization: Bearer.")


class AccountOut(BaseModel):
    email: str
    display_name: str
    role: Role
    org: str
    totp_enabled: bool
    recovery_codes_left: int
    last_login_at: dt.datetime | None
    password_changed_at: dt.datetime | None


class TotpEnrolment(BaseModel):
    secret: str
    otpauth_uri: str
    enrolment_token: str = Field(description="Send it back with a code of the new secret to confirm.")


class RecoveryCodesOut(BaseModel):
    recovery_codes: list[str] = Field(description="Shown once; each works once instead of a code.")
