"""The transactional outbox of the live feed: events are written in the caller's transaction.

``emit`` (or ``emit_case``) only records the event on the session. When the caller commits, a
``before_commit`` hook inserts every recorded event into ``outbox_event`` inside the same transaction,
so there is no event without its data and no data without its event:

* on PostgreSQL the hook first takes a transaction-level advisory lock, held until the commit ends, then
  inserts and sends ``NOTIFY stopnet_outbox`` (delivered by PostgreSQL only if the transaction commits).
  Ids are therefore allocated in commit order: once a reader has seen id N, no smaller id can appear
  later, which is what makes ``id > last_seen`` replays gap-free. The lock is held only for the insert
  and the commit itself, never for the work before it;
* on SQLite a single writer holds the database lock from its first write to its commit, which gives the
  same order (the table is AUTOINCREMENT, so ids are never reused).

After the commit an ``after_commit`` hook wakes the feed hubs of this process at once (``broker``);
other processes are woken by the NOTIFY, or find the rows on their next poll.
Events recorded inside a savepoint that is rolled back are dropped with it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy import event, insert, text
from sqlalchemy.orm import Session, SessionTransaction

from stopnet.db.models import Case, Operation, Organisation
from stopnet.db.models.sharing import Audience, OutboxEvent

CHANNEL = "stopnet_outbox"
LOCK_KEY = 0x5709_0B0C  # pg_advisory_xact_lock key of outbox writers
_PENDING = "stopnet.outbox.pending"
_WRITTEN = "stopnet.outbox.written"


@dataclass
class _Pending:
    row: dict[str, Any]
    transaction: SessionTransaction | None


def emit(
    session: Session,
    kind: str,
    *,
    operation_id: int,
    audience: Audience,
    payload: dict[str, Any],
    case: Case | None = None,
    org_ids: Iterable[int] = (),
) -> None:
    """Record an event; it is written when (and only if) the caller's transaction commits.

    ``payload`` is sent as is to every subscriber allowed to see the event: never put personal data
    (consignee names, free-text notes) in it.
    """
    row: dict[str, Any] = {
        "operation_id": operation_id,
        "kind": kind,
        "audience": audience,
        "org_ids": sorted(set(org_ids)),
        "payload": payload,
        "case_id": None,
        "case_org_id": None,
        "case_status": None,
        "case_visibility": None,
        "case_region": None,
    }
    if case is not None:
        row.update(
            case_id=case.id,
            case_org_id=case.reporting_org_id,
            case_status=case.status.value,
            case_visibility=case.visibility.value,
            case_region=case.region_code,
        )
    transaction = session.get_nested_transaction() or session.get_transaction()
    session.info.setdefault(_PENDING, []).append(_Pending(row, transaction))


def emit_case(session: Session, kind: str, case: Case) -> None:
    """``case.created`` / ``case.corrected`` / ``case.submitted`` / ``case.validated`` for ``case``."""
    emit(
        session,
        kind,
        operation_id=case.operation_id,
        audience=Audience.CASE,
        payload=case_payload(session, case),
        case=case,
    )


def case_payload(session: Session, case: Case) -> dict[str, Any]:
    """What subscribers learn about a case: no consignee, no notes, no platform name."""
    op = session.get(Operation, case.operation_id)
    org = session.get(Organisation, case.reporting_org_id)
    pieces = sum(int(s.pieces or 0) for s in case.seizures)
    weight = sum((s.weight_kg or Decimal(0) for s in case.seizures), Decimal(0))
    seizures = [
        {
            "line_no": s.line_no,
            "commodity_code": s.commodity_code,
            "commodity_group": s.commodity_group,
            "pieces": int(s.pieces or 0),
            "weight_kg": str(s.weight_kg if s.weight_kg is not None else Decimal(0)),
            "nature": s.nature,
        }
        for s in case.seizures
    ]
    return {
        "operation": op.code if op else None,
        "case": {
            "id": case.id,
            "reference": case.reference,
            "reporting_org": org.code if org else None,
            "reporting_country": case.reporting_country,
            "region": case.region_code,
            "status": case.status.value,
            "version": case.version,
            "visibility": case.visibility.value,
            "detected_on": case.detected_on.isoformat(),
            "channel": case.channel,
            "is_ecommerce": case.is_ecommerce,
            "transport_mode": case.transport_mode,
            "origin_country": case.origin_country,
            "destination_country": case.destination_country,
            "seizures": seizures,
            "total_pieces": pieces,
            "total_weight_kg": str(weight),
            "url": f"/cases/{case.id}",
        },
    }


def pending_count(session: Session) -> int:
    return len(session.info.get(_PENDING, ()))


# ------------------------------------------------------------------------------------------ hooks


@event.listens_for(Session, "before_commit")
def _write_pending(session: Session) -> None:
    pending: list[_Pending] = session.info.pop(_PENDING, [])
    if not pending:
        return
    rows = [p.row for p in pending]
    postgres = session.get_bind().dialect.name == "postgresql"
    if postgres:
        session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": LOCK_KEY})
    ids = session.scalars(insert(OutboxEvent).returning(OutboxEvent.id), rows).all()
    last = max(ids)
    if postgres:
        session.execute(text("SELECT pg_notify(:c, :p)"), {"c": CHANNEL, "p": str(last)})
    session.info[_WRITTEN] = last


@event.listens_for(Session, "after_commit")
def _wake_local(session: Session) -> None:
    last = session.info.pop(_WRITTEN, None)
    if last is not None:
        from . import broker

        broker.wake_local(last)


@event.listens_for(Session, "after_soft_rollback")
def _drop_rolled_back(session: Session, previous_transaction: SessionTransaction) -> None:
    session.info.pop(_WRITTEN, None)
    pending: list[_Pending] | None = session.info.get(_PENDING)
    if not pending:
        return
    if previous_transaction.parent is None:
        session.info.pop(_PENDING, None)
        return

    def inside(t: SessionTransaction | None) -> bool:
        while t is not None:
            if t is previous_transaction:
                return True
            t = t.parent
        return False

    session.info[_PENDING] = [p for p in pending if not inside(p.transaction)]
