"""Write and verify the audit trail.

Entries are numbered (``seq``) and chained: each stores the previous entry's hash and an HMAC-SHA256 of
its own content and position, keyed with a key kept outside the database (:mod:`stopnet.core.keys`).
Whoever can write to the database cannot alter, insert or re-chain entries without the key; deleting
the newest ones is caught by the signed checkpoints of the head kept outside it
(:mod:`stopnet.audit.checkpoints`). Entries written before the chain was keyed keep their plain SHA-256
(scheme ``sha256``) and are checked as such; no plain entry may follow a keyed one.

Browsing the trail (:func:`search_entries`, for ``GET /api/v1/audit`` and the ``/audit`` page) is here too.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, event, func, select, text
from sqlalchemy.orm import Session

from stopnet.access import policy
from stopnet.access.principal import Principal
from stopnet.core.errors import FieldError, InvalidInput
from stopnet.core.keys import AUDIT_KEYS, AuditKeys
from stopnet.core.like import LIKE_ESCAPE, contains_pattern
from stopnet.db.models import AuditEntry, Organisation, utcnow

from . import checkpoints
from .checkpoints import Checkpoint
from .schemas import AuditEntryOut, AuditFilters, AuditPage

GENESIS = "0" * 64
KEYED = "hmac-sha256"
PLAIN = "sha256"
_LOCK_KEY = 740_251_001
_PENDING = "stopnet.audit_pending"


class AuditKeyMissing(RuntimeError):
    """A session without the audit keys tried to extend a keyed chain."""


def _digest(
    scheme: str, key: bytes | None, prev_hash: str, seq: int, at: dt.datetime, entry: dict[str, Any]
) -> str:
    body = {"prev": prev_hash, "at": at.astimezone(dt.UTC).isoformat(), **entry}
    if scheme == KEYED:
        body["seq"] = seq
    raw = json.dumps(body, sort_keys=True, separators=(",", ":"), default=str).encode()
    if scheme == KEYED:
        if key is None:
            raise AuditKeyMissing("the audit chain key is needed for a keyed entry")
        return hmac.new(key, raw, hashlib.sha256).hexdigest()
    return hashlib.sha256(raw).hexdigest()


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


def _keys(session: Session) -> AuditKeys | None:
    keys = session.info.get(AUDIT_KEYS)
    return keys if isinstance(keys, AuditKeys) else None


def record(
    session: Session,
    principal: Principal | None,
    action: str,
    object_type: str = "",
    object_id: str | int = "",
    details: dict[str, Any] | None = None,
) -> AuditEntry:
    """Append one entry (flushes; the caller's transaction commits it, and then the signed head)."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _LOCK_KEY})
    last = session.execute(
        select(AuditEntry.seq, AuditEntry.entry_hash, AuditEntry.scheme)
        .order_by(AuditEntry.seq.desc())
        .limit(1)
    ).first()
    keys = _keys(session)
    if keys is None and last is not None and last.scheme == KEYED:
        raise AuditKeyMissing("this session has no audit keys (build it with stopnet.db.engine.sessions_for)")
    entry = AuditEntry(
        seq=(last.seq if last else 0) + 1,
        scheme=KEYED if keys is not None else PLAIN,
        at=utcnow(),
        actor_user_id=principal.user_id if principal else None,
        actor_org_id=principal.org_id if principal else None,
        actor_label=principal.label if principal else "system",
        action=action,
        object_type=object_type,
        object_id=str(object_id),
        details=json.loads(json.dumps(details or {}, default=str)),
        prev_hash=last.entry_hash if last else GENESIS,
    )
    entry.entry_hash = _digest(
        entry.scheme, keys.chain_key if keys else None, entry.prev_hash, entry.seq, entry.at, _content(entry)
    )
    session.add(entry)
    session.flush()
    if keys is not None:
        if _PENDING not in session.info:
            event.listen(session, "after_commit", _store_head)
            event.listen(session, "after_rollback", _forget_head)
        session.info[_PENDING] = (entry.seq, entry.entry_hash)
    return entry


def _store_head(session: Session) -> None:
    pending = session.info.pop(_PENDING, None)
    keys = _keys(session)
    if pending and keys is not None:
        checkpoints.store_head(keys, *pending)


def _forget_head(session: Session) -> None:
    session.info.pop(_PENDING, None)


def signed_head(session: Session, keys: AuditKeys | None = None) -> Checkpoint | None:
    """A checkpoint of the trail as it stands (None when it is empty or the keys are missing)."""
    keys = keys or _keys(session)
    if keys is None:
        return None
    last = session.execute(
        select(AuditEntry.seq, AuditEntry.entry_hash).order_by(AuditEntry.seq.desc()).limit(1)
    ).first()
    if last is None:
        return None
    return Checkpoint.sign(keys, last.seq, last.entry_hash)


def checkpoint(session: Session, keys: AuditKeys | None = None) -> Checkpoint | None:
    """Sign the current head and keep it in the audit directory (``stopnet audit checkpoint``)."""
    keys = keys or _keys(session)
    head = signed_head(session, keys)
    if head is not None and keys is not None:
        checkpoints.store_head(keys, head.count, head.head)
    return head


@dataclass(frozen=True)
class ChainProblem:
    entry_id: int  # the entry's position (seq) in the trail
    problem: str


def verify(
    session: Session, keys: AuditKeys | None = None, extra: Iterable[Checkpoint] = ()
) -> list[ChainProblem]:
    """Recompute the chain and check it against every checkpoint; return every problem (empty: intact).

    Checkpoints are those kept in the audit directory plus ``extra`` (copies from daily reports, peers).
    """
    keys = keys or _keys(session)
    problems: list[ChainProblem] = []
    prev, expected, keyed_seen = GENESIS, 1, False
    hashes: dict[int, str] = {}
    for e in _iter_entries(session):
        if e.seq != expected:
            problems.append(
                ChainProblem(expected, f"entries {expected}-{e.seq - 1} are missing (deleted)")
                if e.seq > expected
                else ChainProblem(e.seq, "position used twice (an entry was inserted)")
            )
        if e.prev_hash != prev:
            problems.append(
                ChainProblem(e.seq, "previous-hash link broken (an entry was deleted, inserted or altered)")
            )
        if e.scheme == KEYED:
            keyed_seen = True
            if keys is None:
                problems.append(ChainProblem(e.seq, "keyed entry cannot be checked without the audit key"))
            elif not hmac.compare_digest(
                _digest(KEYED, keys.chain_key, e.prev_hash, e.seq, e.at, _content(e)), e.entry_hash
            ):
                problems.append(
                    ChainProblem(e.seq, "content does not match its keyed hash (entry altered or forged)")
                )
        else:
            if keyed_seen:
                problems.append(ChainProblem(e.seq, "unkeyed entry after the chain became keyed (forged)"))
            if _digest(PLAIN, None, e.prev_hash, e.seq, e.at, _content(e)) != e.entry_hash:
                problems.append(ChainProblem(e.seq, "content does not match its hash (entry altered)"))
        hashes[e.seq] = e.entry_hash
        prev, expected = e.entry_hash, e.seq + 1
    count = expected - 1
    found = (checkpoints.read(keys.directory) if keys is not None and keys.directory else []) + list(extra)
    for cp in found:
        if keys is None or not cp.valid_for(keys.public_key):
            problems.append(
                ChainProblem(cp.count, f"checkpoint of {cp.at} is not signed by this installation")
            )
        elif cp.count > count:
            problems.append(
                ChainProblem(
                    cp.count,
                    f"trail cut: the checkpoint of {cp.at} counts {cp.count} entries, "
                    f"the database holds {count}",
                )
            )
        elif hashes.get(cp.count) != cp.head:
            problems.append(
                ChainProblem(cp.count, f"entry differs from the checkpoint of {cp.at} (rewritten)")
            )
    return problems


def entry_count(session: Session) -> int:
    return int(session.scalar(select(func.count()).select_from(AuditEntry)) or 0)


def _iter_entries(session: Session) -> Iterator[AuditEntry]:
    last = 0
    while True:
        batch = session.scalars(
            select(AuditEntry).where(AuditEntry.seq > last).order_by(AuditEntry.seq).limit(2000)
        ).all()
        if not batch:
            return
        yield from batch
        last = batch[-1].seq


# ------------------------------------------------------------------------------------------------ browsing


def _where(session: Session, f: AuditFilters) -> list[ColumnElement[bool]]:
    clauses: list[ColumnElement[bool]] = []
    if f.action:
        if f.action.endswith(("*", ".")):
            clauses.append(AuditEntry.action.startswith(f.action.rstrip("*"), autoescape=True))
        else:
            clauses.append(AuditEntry.action == f.action)
    if f.actor:
        actor = f.actor.strip()
        if actor.isdigit():
            clauses.append(AuditEntry.actor_user_id == int(actor))
        else:
            clauses.append(
                func.lower(AuditEntry.actor_label).like(contains_pattern(actor), escape=LIKE_ESCAPE)
            )
    if f.org:
        org_id = session.scalar(select(Organisation.id).where(Organisation.code == f.org.strip().upper()))
        clauses.append(AuditEntry.actor_org_id == (org_id if org_id is not None else -1))
    if f.object_type:
        clauses.append(AuditEntry.object_type == f.object_type)
    if f.object_id:
        clauses.append(AuditEntry.object_id == f.object_id)
    if f.date_from:
        clauses.append(AuditEntry.at >= dt.datetime.combine(f.date_from, dt.time(), tzinfo=dt.UTC))
    if f.date_to:
        end = dt.datetime.combine(f.date_to + dt.timedelta(days=1), dt.time(), tzinfo=dt.UTC)
        clauses.append(AuditEntry.at < end)
    return clauses


def search_entries(
    session: Session, principal: Principal, filters: AuditFilters, page: int, page_size: int
) -> AuditPage:
    """One page of the audit trail, newest first (readers: coordinators and platform administrators)."""
    policy.require_audit_reader(principal)
    if filters.date_from and filters.date_to and filters.date_from > filters.date_to:
        raise InvalidInput([FieldError("date_to", "is before date_from")], "the filters are invalid")
    where = _where(session, filters)
    total = session.scalar(select(func.count()).select_from(AuditEntry).where(*where)) or 0
    stmt = (
        select(AuditEntry, Organisation.code)
        .outerjoin(Organisation, Organisation.id == AuditEntry.actor_org_id)
        .where(*where)
        .order_by(AuditEntry.id.desc())
        .offset((page - 1) * page_size)
        .limit(page_size)
    )
    items = [
        AuditEntryOut(
            id=e.id,
            at=e.at,
            actor_label=e.actor_label,
            actor_user_id=e.actor_user_id,
            actor_org=code,
            action=e.action,
            object_type=e.object_type,
            object_id=e.object_id,
            details=e.details or {},
            prev_hash=e.prev_hash,
            entry_hash=e.entry_hash,
        )
        for e, code in session.execute(stmt).all()
    ]
    return AuditPage(items=items, total=total, page=page, page_size=page_size)
