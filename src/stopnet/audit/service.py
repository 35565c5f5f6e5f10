"""Write and verify the audit trail.

Each entry stores the SHA-256 of its canonical content together with the previous entry's hash, so
altering or deleting any entry breaks the chain from that point on (``stopnet audit verify``).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from stopnet.access.principal import Principal
from stopnet.db.models import AuditEntry, utcnow

GENESIS = "0" * 64
_LOCK_KEY = 740_251_001


def _digest(prev_hash: str, at: dt.datetime, entry: dict[str, Any]) -> str:
    body = {"prev": prev_hash, "at": at.astimezone(dt.UTC).isoformat(), **entry}
    raw = json.dumps(body, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(raw.encode()).hexdigest()


def _content(e: AuditEntry) -> dict[str, Any]:
    return {
        "actor_user_id": e.actor_user_id,
        "actor_org_id": e.actor_org_id,
        "actor_label": e.actor_label,
        "action": e.action,
        "object_type": e.object_type,
        "object_id": e.object_id,
        "details": e.details,
    }


def record(
    session: Session,
    principal: Principal | None,
    action: str,
    object_type: str = "",
    object_id: str | int = "",
    details: dict[str, Any] | None = None,
) -> AuditEntry:
    """Append one entry (flushes; the caller's transaction commits it)."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _LOCK_KEY})
    prev = session.scalar(select(AuditEntry.entry_hash).order_by(AuditEntry.id.desc()).limit(1)) or GENESIS
    entry = AuditEntry(
        at=utcnow(),
        actor_user_id=principal.user_id if principal else None,
        actor_org_id=principal.org_id if principal else None,
        actor_label=principal.label if principal else "system",
        action=action,
        object_type=object_type,
        object_id=str(object_id),
        details=json.loads(json.dumps(details or {}, default=str)),
        prev_hash=prev,
    )
    entry.entry_hash = _digest(prev, entry.at, _content(entry))
    session.add(entry)
    session.flush()
    return entry


@dataclass(frozen=True)
class ChainProblem:
    entry_id: int
    problem: str


def verify(session: Session) -> list[ChainProblem]:
    """Recompute the chain; return every broken link (empty: intact)."""
    problems: list[ChainProblem] = []
    prev = GENESIS
    for e in _iter_entries(session):
        if e.prev_hash != prev:
            problems.append(ChainProblem(e.id, "previous-hash link broken (an entry was deleted or altered)"))
        if _digest(e.prev_hash, e.at, _content(e)) != e.entry_hash:
            problems.append(ChainProblem(e.id, "content does not match its hash (entry altered)"))
        prev = e.entry_hash
    return problems


def _iter_entries(session: Session) -> Iterator[AuditEntry]:
    last = 0
    while True:
        batch = session.scalars(
            select(AuditEntry).where(AuditEntry.id > last).order_by(AuditEntry.id).limit(2000)
        ).all()
        if not batch:
            return
        yield from batch
        last = batch[-1].id
