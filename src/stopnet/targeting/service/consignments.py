"""Stored consignments: ingesting a frame or records (validated, pseudonymised, idempotent), listing
them, and loading them as a frame for scoring and training."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any

import polars as pl
from sqlalchemy import ColumnElement, and_, func, insert, select
from sqlalchemy.orm import Session

from stopnet.access.principal import Principal
from stopnet.audit.service import record
from stopnet.core.errors import FieldError, InvalidInput
from stopnet.db.models import Operation, utcnow
from stopnet.db.models.rightsholders import VerificationAnswer, VerificationRequest
from stopnet.db.models.targeting import (
    Consignment,
    InspectionOutcome,
    InspectionResult,
)
from stopnet.risk.consignments import (
    CONSIGNMENT_SCHEMA,
    ConsignmentSchemaError,
    coerce_consignments,
)

from ..schemas import (
    ConsignmentOut,
    IngestOut,
)
from .access import _org_codes, access, target_org
from .constants import CONSIGNMENT_FIELDS, RULE_SCHEMA
from .pseudonyms import _pseudonymise_frame, org_key


def _schema_error(e: ConsignmentSchemaError, what: str = "consignments") -> InvalidInput:
    return InvalidInput([FieldError(e.column or "file", e.reason)], f"the {what} do not fit the schema: {e}")


def ingest_frame(
    session: Session,
    principal: Principal,
    op: Operation,
    frame: pl.DataFrame,
    key_master: bytes,
    org_code: str | None = None,
) -> IngestOut:
    """Validate and store consignments (already stored ids are skipped: re-sending a file is harmless).

    ``sender_name``/``consignee_name`` columns are replaced by keyed pseudonyms; ``inspected``/``seized``/
    ``commodity_code`` columns, when present, are stored as inspection results (historical labels).
    """
    scope = access(session, principal, op, write=True)
    org = target_org(session, scope, org_code)
    received = frame.height
    frame = _pseudonymise_frame(frame, org_key(key_master, org.code))
    known = set(RULE_SCHEMA)
    ignored = [c for c in frame.columns if c not in known]
    try:
        frame = coerce_consignments(frame.drop(ignored), keep_extra=False)
    except ConsignmentSchemaError as e:
        raise _schema_error(e) from e
    dup = frame.get_column("consignment_id").is_duplicated()
    if dup.any():
        first = frame.get_column("consignment_id").filter(dup)[0]
        raise InvalidInput([FieldError("consignment_id", f"appears more than once in the batch: {first!r}")])
    too_long = frame.filter(pl.col("consignment_id").str.len_chars() > 64)
    if too_long.height:
        raise InvalidInput([FieldError("consignment_id", "at most 64 characters", value=too_long[0, 0])])
    frame = frame.with_columns(pl.col("arrival_date").fill_null(pl.col("declared_at").cast(pl.Date)))
    ids = frame.get_column("consignment_id").to_list()
    existing: set[str] = set()
    for start in range(0, len(ids), 900):
        existing.update(
            session.scalars(
                select(Consignment.consignment_id).where(
                    Consignment.operation_id == op.id,
                    Consignment.org_id == org.id,
                    Consignment.consignment_id.in_(ids[start : start + 900]),
                )
            )
        )
    new = frame.filter(~pl.col("consignment_id").is_in(list(existing))) if existing else frame
    now = utcnow()
    rows = []
    for r in new.select(CONSIGNMENT_FIELDS).iter_rows(named=True):
        r["declared_at"] = r["declared_at"].replace(tzinfo=dt.UTC)
        rows.append({**r, "operation_id": op.id, "org_id": org.id, "created_at": now})
    if rows:
        session.execute(insert(Consignment), rows)
    inspections = 0
    if "inspected" in new.columns and new.height:
        labelled = new.filter(pl.col("inspected").fill_null(False))
        if labelled.height:
            pk = dict(
                session.execute(
                    select(Consignment.consignment_id, Consignment.id).where(
                        Consignment.operation_id == op.id,
                        Consignment.org_id == org.id,
                        Consignment.consignment_id.in_(labelled.get_column("consignment_id").to_list()),
                    )
                ).all()
            )
            has_seized = "seized" in labelled.columns
            has_code = "commodity_code" in labelled.columns
            results = []
            for r in labelled.iter_rows(named=True):
                seized = bool(r.get("seized")) if has_seized else False
                results.append(
                    {
                        "consignment_pk": pk[r["consignment_id"]],
                        "outcome": InspectionOutcome.SEIZURE if seized else InspectionOutcome.NOTHING_FOUND,
                        "commodity_code": (r.get("commodity_code") if has_code else None) if seized else None,
                        "note": "imported with the consignments",
                        "inspected_on": r["arrival_date"],
                        "recorded_by_label": principal.label,
                        "recorded_at": now,
                    }
                )
            session.execute(insert(InspectionResult), results)
            inspections = len(results)
    record(
        session,
        principal,
        "targeting.consignments.ingest",
        "operation",
        op.code,
        {"org": org.code, "received": received, "stored": len(rows), "inspections": inspections},
    )
    session.flush()
    return IngestOut(
        operation=op.code,
        org_code=org.code,
        received=received,
        stored=len(rows),
        already_stored=len(existing),
        inspections_recorded=inspections,
        ignored_columns=ignored,
    )


def ingest_records(
    session: Session,
    principal: Principal,
    op: Operation,
    records: Sequence[Mapping[str, Any]],
    key_master: bytes,
    org_code: str | None = None,
) -> IngestOut:
    """The API batch: each record is checked like one row of a file (errors name the record)."""
    access(session, principal, op, write=True)
    allowed = set(RULE_SCHEMA) | {"sender_name", "consignee_name"}
    for i, rec in enumerate(records):
        unknown = [k for k in rec if k not in allowed]
        if unknown:
            raise InvalidInput([FieldError(unknown[0], "unknown field", row=i + 1)])
    columns = sorted({k for rec in records for k in rec})
    try:
        frame = pl.DataFrame(
            {c: [None if rec.get(c) is None else str(rec.get(c)) for rec in records] for c in columns},
            schema={c: pl.String for c in columns},
        )
    except (TypeError, ValueError) as e:  # pragma: no cover - str() of JSON values does not fail
        raise InvalidInput([FieldError("consignments", str(e))]) from e
    return ingest_frame(session, principal, op, frame, key_master, org_code)


def _consignment_out(c: Consignment, org_code: str) -> ConsignmentOut:
    return ConsignmentOut(
        id=c.id,
        org_code=org_code,
        consignment_id=c.consignment_id,
        declared_at=c.declared_at,
        arrival_date=c.arrival_date,
        channel=c.channel,
        carrier=c.carrier,
        sender_id=c.sender_id,
        consignee_id=c.consignee_id,
        origin_country=c.origin_country,
        departure_country=c.departure_country,
        destination_country=c.destination_country,
        office=c.office,
        description=c.description,
        hs_code=c.hs_code,
        declared_value=c.declared_value,
        currency=c.currency,
        weight_kg=c.weight_kg,
        quantity=c.quantity,
        marketplace=c.marketplace,
    )


def list_consignments(
    session: Session,
    principal: Principal,
    op: Operation,
    *,
    day: dt.date | None = None,
    limit: int = 200,
    offset: int = 0,
) -> tuple[list[ConsignmentOut], int]:
    scope = access(session, principal, op)
    where = [Consignment.operation_id == op.id, scope.clause(Consignment.org_id)]
    if day is not None:
        where.append(Consignment.arrival_date == day)
    total = session.scalar(select(func.count()).select_from(Consignment).where(*where)) or 0
    items = list(
        session.scalars(
            select(Consignment)
            .where(*where)
            .order_by(Consignment.arrival_date.desc(), Consignment.id)
            .limit(limit)
            .offset(offset)
        )
    )
    codes = _org_codes(session, {c.org_id for c in items})
    return [_consignment_out(c, codes[c.org_id]) for c in items], int(total)


def _load_frame(session: Session, where: Sequence[ColumnElement[bool]]) -> tuple[pl.DataFrame, list[int]]:
    """Stored consignments as a frame of the risk schema, with ``inspected``/``seized`` labels; and PKs.

    A seizure whose case the rights holder later verified as **genuine** (a verification request of the
    case answered ``genuine``, none ``counterfeit``) is labelled not seized: the goods were not
    counterfeit, so the model must not learn them as a hit.
    """
    cols = [getattr(Consignment, c) for c in CONSIGNMENT_FIELDS]
    answers = select(VerificationRequest.id).where(VerificationRequest.case_id == InspectionResult.case_id)
    cleared = and_(
        answers.where(VerificationRequest.answer == VerificationAnswer.GENUINE).exists(),
        ~answers.where(VerificationRequest.answer == VerificationAnswer.COUNTERFEIT).exists(),
    )
    rows = session.execute(
        select(Consignment.id, *cols, InspectionResult.outcome, cleared)
        .outerjoin(InspectionResult, InspectionResult.consignment_pk == Consignment.id)
        .where(*where)
        .order_by(Consignment.declared_at, Consignment.id)
    ).all()
    data: dict[str, list[Any]] = {c: [] for c in CONSIGNMENT_FIELDS}
    pks: list[int] = []
    inspected: list[bool] = []
    seized: list[bool | None] = []
    for row in rows:
        pks.append(row[0])
        for i, c in enumerate(CONSIGNMENT_FIELDS, start=1):
            v = row[i]
            if c == "declared_at" and v is not None:
                v = v.astimezone(dt.UTC).replace(tzinfo=None)
            data[c].append(v)
        outcome, genuine = row[-2], bool(row[-1])
        inspected.append(outcome is not None)
        seized.append(None if outcome is None else outcome is InspectionOutcome.SEIZURE and not genuine)
    frame = pl.DataFrame(
        {**data, "inspected": inspected, "seized": seized},
        schema={
            **CONSIGNMENT_SCHEMA,
            "inspected": pl.Boolean,
            "seized": pl.Boolean,
        },
    )
    return frame, pks
