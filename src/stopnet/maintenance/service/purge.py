"""Data protection: the retention policy of each operation and the purge of expired personal data.

The only personal data a case holds is the consignee's name (``case_report.consignee_name``, shown to the
reporting administration only; docs/permissions.md). An operation's coordinator or a platform admin sets
how long it is kept (``operation.personal_data_retention_days``; None: no policy, nothing is purged).
:func:`purge_personal_data` (``stopnet purge --operation CODE``) then, for every case of the operation
recorded more than that many days ago:

* replaces the name by a **pseudonym** (``case_report.consignee_pseudonym``): HMAC-SHA256 under the
  reporting administration's key, derived from ``STOPNET_PSEUDONYM_KEY`` the same way as the consignments
  of the risk engine, so repeat consignees stay linkable (and match the risk data) without a name;
* erases the name from every stored version of the case (``case_version.snapshot``) and from the stored
  answers of ``Idempotency-Key`` retries (``idempotency_record.response``);
* stamps ``case_report.personal_data_purged_at`` and writes one audit entry with the counts.

``dry_run`` counts the same things and changes nothing. Functions flush; the caller commits. The
schemas (:class:`RetentionUpdate`, :class:`PurgeReport`, :class:`DataProtectionOut`) are in
:mod:`stopnet.maintenance.schemas`.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from stopnet.access import policy
from stopnet.access.principal import Principal
from stopnet.audit.service import record
from stopnet.core.errors import Forbidden
from stopnet.core.progress import ProgressCallback
from stopnet.db.models import (
    Case,
    CaseVersion,
    IdempotencyRecord,
    Operation,
    Organisation,
    ParticipantRole,
    Role,
    utcnow,
)
from stopnet.maintenance.schemas import DataProtectionOut, PurgeReport, RetentionUpdate

CHUNK = 500  # cases per round trip


# ------------------------------------------------------------------------------------------ permissions


def require_data_protection_manager(session: Session, principal: Principal, op: Operation) -> None:
    """Platform admins, and the coordinators of the operation's coordinating unit."""
    coordinator = principal.role is Role.COORDINATOR and (
        policy.participation(session, principal, op.id) is ParticipantRole.COORDINATOR
    )
    if not (principal.role is Role.ADMIN or coordinator):
        raise Forbidden("only the operation's coordinator or a platform admin manages its personal data")
    if not principal.has_scope("cases:write"):
        raise Forbidden("this API token lacks the scope cases:write")


# ------------------------------------------------------------------------------------------ policy


def set_retention(session: Session, principal: Principal, op: Operation, data: RetentionUpdate) -> Operation:
    require_data_protection_manager(session, principal, op)
    before = op.personal_data_retention_days
    op.personal_data_retention_days = data.personal_data_retention_days
    record(
        session,
        principal,
        "operation.retention_set",
        "operation",
        op.code,
        {"personal_data_retention_days": [before, op.personal_data_retention_days]},
    )
    session.flush()
    return op


def overview(
    session: Session, principal: Principal, op: Operation, now: dt.datetime | None = None
) -> DataProtectionOut:
    require_data_protection_manager(session, principal, op)
    purged = session.scalar(
        select(func.count())
        .select_from(Case)
        .where(Case.operation_id == op.id, Case.personal_data_purged_at.is_not(None))
    )
    return DataProtectionOut(
        operation=op.code,
        personal_data_retention_days=op.personal_data_retention_days,
        cases_purged=int(purged or 0),
        pending=purge_personal_data(session, principal, op, dry_run=True, now=now),
    )


# ------------------------------------------------------------------------------------------ purge


def consignee_pseudonym(master: bytes, org_code: str, name: str) -> str:
    """The pseudonym of a consignee's name for one administration (as the risk engine computes it)."""
    from stopnet.risk.consignments import pseudonymise
    from stopnet.targeting.service import org_key

    return pseudonymise(name, org_key(master, org_code))


def _scrub(snapshot: dict[str, Any], pseudonym: str | None) -> dict[str, Any] | None:
    """The snapshot without the name (None when it held none)."""
    if not str(snapshot.get("consignee_name") or "").strip():
        return None
    out = dict(snapshot)
    out["consignee_name"] = ""
    if pseudonym:
        out["consignee_pseudonym"] = pseudonym
    return out


def purge_personal_data(
    session: Session,
    principal: Principal,
    op: Operation,
    *,
    master_key: bytes | None = None,
    dry_run: bool = False,
    now: dt.datetime | None = None,
    progress: ProgressCallback | None = None,
) -> PurgeReport:
    """Pseudonymise the consignees of the operation's cases older than its retention policy.

    ``master_key``: ``STOPNET_PSEUDONYM_KEY`` (see ``core.keys.pseudonym_master``); needed unless
    ``dry_run``. ``progress(cases done, cases to examine)`` follows the cases.
    """
    require_data_protection_manager(session, principal, op)
    days = op.personal_data_retention_days
    report = PurgeReport(
        operation=op.code,
        personal_data_retention_days=days,
        cutoff=None,
        dry_run=dry_run,
        cases_examined=0,
        consignee_names_removed=0,
        case_versions_scrubbed=0,
        idempotency_records_scrubbed=0,
    )
    if days is None:
        return report
    if not dry_run and not master_key:
        raise ValueError("a pseudonym master key is required to purge")
    now = now or utcnow()
    report.cutoff = now - dt.timedelta(days=days)
    ids = list(
        session.scalars(
            select(Case.id)
            .where(
                Case.operation_id == op.id,
                Case.created_at < report.cutoff,
                or_(Case.personal_data_purged_at.is_(None), Case.consignee_name != ""),
            )
            .order_by(Case.id)
        )
    )
    report.cases_examined = len(ids)
    org_codes = {oid: code for oid, code in session.execute(select(Organisation.id, Organisation.code))}
    named: dict[int, str | None] = {}  # case id -> its pseudonym (None: no name left to replace)
    for start in range(0, len(ids), CHUNK):
        chunk = ids[start : start + CHUNK]
        cases = session.scalars(select(Case).where(Case.id.in_(chunk))).all()
        for case in cases:
            name = case.consignee_name.strip()
            pseudonym = None
            if name:
                report.consignee_names_removed += 1
                if not dry_run:
                    assert master_key is not None
                    pseudonym = consignee_pseudonym(master_key, org_codes[case.reporting_org_id], name)
                    case.consignee_pseudonym = pseudonym
                    case.consignee_name = ""
            if not dry_run:
                case.personal_data_purged_at = now
            named[case.id] = pseudonym or case.consignee_pseudonym
        for version in session.scalars(select(CaseVersion).where(CaseVersion.case_id.in_(chunk))):
            scrubbed = _scrub(version.snapshot, named.get(version.case_id))
            if scrubbed is not None:
                report.case_versions_scrubbed += 1
                if not dry_run:
                    version.snapshot = scrubbed
        session.flush()
        if progress is not None:
            progress(start + len(chunk), len(ids))
    if ids:
        stored = session.scalars(
            select(IdempotencyRecord).where(IdempotencyRecord.path.like("/api/v1/operations/%/cases"))
        )
        for rec in stored:
            case_id = rec.response.get("id") if isinstance(rec.response, dict) else None
            if case_id in named:
                scrubbed = _scrub(rec.response, None)
                if scrubbed is not None:
                    report.idempotency_records_scrubbed += 1
                    if not dry_run:
                        rec.response = scrubbed
    if not dry_run:
        record(
            session,
            principal,
            "personal_data.purged",
            "operation",
            op.code,
            report.model_dump(mode="json", exclude={"operation", "dry_run"}),
        )
        session.flush()
    return report
