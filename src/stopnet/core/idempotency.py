"""``Idempotency-Key`` support for API creates: the first response is stored and replayed on retries."""

from __future__ import annotations

import hashlib
import json
from typing import Any, Protocol

from sqlalchemy import select
from sqlalchemy.orm import Session

from stopnet.core.errors import Conflict, FieldError, InvalidInput
from stopnet.db.models import IdempotencyRecord


class Principal(Protocol):
    """Whoever sends the request: keys are kept per organisation (``access.principal.Principal`` is one)."""

    @property
    def org_id(self) -> int: ...


def request_hash(body: Any) -> str:
    return hashlib.sha256(json.dumps(body, sort_keys=True, default=str).encode()).hexdigest()


def check_key(key: str) -> str:
    key = key.strip()
    if not 1 <= len(key) <= 128 or not key.isprintable():
        raise InvalidInput([FieldError("Idempotency-Key", "must be 1 to 128 printable characters")])
    return key


def find(
    session: Session, principal: Principal, key: str, method: str, path: str, body_hash: str
) -> IdempotencyRecord | None:
    rec = session.scalar(
        select(IdempotencyRecord).where(
            IdempotencyRecord.org_id == principal.org_id, IdempotencyRecord.key == key
        )
    )
    if rec is None:
        return None
    if rec.request_hash != body_hash or rec.path != path or rec.method != method:
        raise Conflict("this Idempotency-Key was already used with a different request")
    return rec


def store(
    session: Session,
    principal: Principal,
    key: str,
    method: str,
    path: str,
    body_hash: str,
    status_code: int,
    response: dict[str, Any],
) -> None:
    session.add(
        IdempotencyRecord(
            org_id=principal.org_id,
            key=key,
            method=method,
            path=path,
            request_hash=body_hash,
            status_code=status_code,
            response=response,
        )
    )
    session.flush()
