"""The acting principal handed to every service call."""

from __future__ import annotations

from dataclasses import dataclass, field

from stopnet.db.models import OrgKind, Role


@dataclass(frozen=True)
class Principal:
    org_id: int
    org_code: str
    org_kind: OrgKind
    role: Role
    user_id: int | None = None
    label: str = ""
    region_code: str | None = None
    country_code: str | None = None
    via: str = "session"  # session | token | cli
    scopes: frozenset[str] = field(default_factory=frozenset)

    @property
    def is_admin(self) -> bool:
        return self.role is Role.ADMIN

    @property
    def is_coordinator(self) -> bool:
        return self.role in (Role.COORDINATOR, Role.ADMIN)

    def has_scope(self, scope: str) -> bool:
        """Sessions carry every scope of their role; tokens only those granted."""
        return self.via != "token" or scope in self.scopes
