"""Alerts: published to chosen administrations, acknowledged by their recipients, overseen by the
coordinators."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import exists, func, select
from sqlalchemy.orm import Session

from stopnet.access import policy
from stopnet.access.principal import Principal
from stopnet.audit.service import record
from stopnet.config import Settings
from stopnet.core.errors import FieldError, Forbidden, InvalidInput, NotFound
from stopnet.db.models import (
    Operation,
    Organisation,
    Participant,
    ParticipantRole,
    Role,
    User,
    utcnow,
)
from stopnet.db.models.sharing import (
    Alert,
    AlertRecipient,
    AlertScope,
    Audience,
)
from stopnet.reference import get_reference

from .. import mail, outbox
from ..schemas import (
    AlertCreate,
    AlertOut,
    RecipientOut,
)
from .access import _alert_visible, _participation, _require_read, _require_write, alert_read_clause, oversees
from .attachments import _attachments_of, _link_attachments, attachment_out


def require_alert_publisher(session: Session, principal: Principal, op_id: int) -> None:
    role = _participation(session, principal, op_id)
    ok = principal.is_admin or (
        (principal.role is Role.COORDINATOR and role is ParticipantRole.COORDINATOR)
        or (principal.role is Role.ANALYST and role is ParticipantRole.RILO)
    )
    if not ok:
        raise Forbidden("only the operation's coordinators and regional analysts (RILO) publish alerts")
    if not principal.has_scope("cases:write"):
        raise Forbidden("this API token lacks the scope cases:write")


def _recipients(session: Session, principal: Principal, op: Operation, data: AlertCreate) -> list[int]:
    rows = session.execute(
        select(Organisation.id, Organisation.code, Organisation.region_code, Participant.role)
        .join(Participant, Participant.org_id == Organisation.id)
        .where(Participant.operation_id == op.id, Organisation.is_active)
    ).all()
    eligible = {
        code: (org_id, region)
        for org_id, code, region, role in rows
        if role is not ParticipantRole.RIGHTS_HOLDER and org_id != principal.org_id
    }
    if data.scope is AlertScope.OPERATION:
        ids = [org_id for org_id, _ in eligible.values()]
    elif data.scope is AlertScope.REGION:
        regions = {r.code for r in get_reference().regions}
        if data.region not in regions:
            raise InvalidInput(
                [FieldError("region", "unknown WCO region", value=data.region)], "invalid alert"
            )
        ids = [org_id for org_id, region in eligible.values() if region == data.region]
    else:
        unknown = [c for c in data.administrations if c not in eligible]
        if unknown:
            raise InvalidInput(
                [
                    FieldError("administrations", "not a participant of this operation", value=c)
                    for c in unknown
                ],
                "invalid alert",
            )
        ids = [eligible[c][0] for c in dict.fromkeys(data.administrations)]
    if not ids:
        raise InvalidInput([FieldError("scope", "nobody would receive this alert")], "invalid alert")
    return ids


def publish_alert(
    session: Session, principal: Principal, op: Operation, data: AlertCreate, settings: Settings
) -> Alert:
    require_alert_publisher(session, principal, op.id)
    recipients = _recipients(session, principal, op, data)
    alert = Alert(
        operation_id=op.id,
        sender_org_id=principal.org_id,
        sender_user_id=principal.user_id,
        kind=data.kind,
        scope=data.scope,
        region_code=data.region,
        title=data.title,
        body=data.body,
        created_at=utcnow(),
        recipients=[AlertRecipient(org_id=o) for o in recipients],
    )
    session.add(alert)
    session.flush()
    files = _link_attachments(session, principal, op.id, data.attachments, alert_id=alert.id)
    record(
        session,
        principal,
        "alert.publish",
        "alert",
        alert.id,
        {"op": op.code, "scope": data.scope.value, "recipients": len(recipients), "attachments": len(files)},
    )
    outbox.emit(
        session,
        "alert.published",
        operation_id=op.id,
        audience=Audience.ORGS,
        org_ids=[principal.org_id, *recipients],
        payload={
            "operation": op.code,
            "alert": {
                "id": alert.id,
                "kind": alert.kind.value,
                "scope": alert.scope.value,
                "region": alert.region_code,
                "title": alert.title,
                "sender_org": principal.org_code,
                "recipients": len(recipients),
                "attachments": len(files),
                "url": f"/alerts/{alert.id}",
            },
        },
    )
    users = session.execute(
        select(User.email).where(User.org_id.in_(recipients), User.is_active).order_by(User.email)
    ).scalars()
    url = mail.link(settings, f"/alerts/{alert.id}")
    body = (
        f"{principal.org_code} published an alert ({alert.kind.value.replace('_', ' ')}) in {op.code}:\n\n"
        f"{alert.title}\n\n{alert.body}\n\n"
        f"{len(files)} attachment(s). Read and acknowledge it: {url}\n"
    )
    mail.queue(
        session,
        settings,
        [mail.Mail(e, f"[stopnet {op.code}] Alert: {alert.title}", body) for e in users],
    )
    return alert


def _alert_query(
    session: Session, principal: Principal, op: Operation, unacknowledged: bool, sent: bool
) -> Any:
    stmt = select(Alert).where(Alert.operation_id == op.id, alert_read_clause(session, principal, op.id))
    if unacknowledged:
        stmt = stmt.where(
            exists().where(
                AlertRecipient.alert_id == Alert.id,
                AlertRecipient.org_id == principal.org_id,
                AlertRecipient.acknowledged_at.is_(None),
            )
        )
    if sent:
        stmt = stmt.where(Alert.sender_org_id == principal.org_id)
    return stmt


def list_alerts(
    session: Session,
    principal: Principal,
    op: Operation,
    *,
    unacknowledged: bool = False,
    sent: bool = False,
    page: int = 1,
    page_size: int = 50,
) -> tuple[list[AlertOut], int]:
    """Alerts of the operation the principal may read, newest first.

    ``unacknowledged``: those its organisation has yet to acknowledge; ``sent``: those it sent.
    """
    _require_read(principal)
    stmt = _alert_query(session, principal, op, unacknowledged, sent)
    total = session.scalar(select(func.count()).select_from(stmt.order_by(None).subquery())) or 0
    alerts = session.scalars(
        stmt.order_by(Alert.created_at.desc(), Alert.id.desc())
        .offset((page - 1) * page_size)
        .limit(page_size)
    ).all()
    return alerts_out(session, principal, op, alerts), total


def _load_alert(session: Session, principal: Principal, alert_id: int) -> Alert:
    policy.require_record_read(principal)
    alert = session.get(Alert, alert_id)
    if alert is None or not _alert_visible(session, principal, alert):
        raise NotFound(f"no alert {alert_id}")
    return alert


def get_alert(session: Session, principal: Principal, alert_id: int) -> AlertOut:
    alert = _load_alert(session, principal, alert_id)
    op = session.get_one(Operation, alert.operation_id)
    return alerts_out(session, principal, op, [alert])[0]


def acknowledge_alert(session: Session, principal: Principal, alert_id: int) -> AlertOut:
    """Acknowledge an alert for the principal's organisation (once; again is a no-op)."""
    alert = _load_alert(session, principal, alert_id)
    _require_write(principal)
    rec = session.scalar(
        select(AlertRecipient).where(
            AlertRecipient.alert_id == alert.id, AlertRecipient.org_id == principal.org_id
        )
    )
    if rec is None:
        raise Forbidden("your organisation is not a recipient of this alert")
    op = session.get_one(Operation, alert.operation_id)
    if rec.acknowledged_at is None:
        rec.acknowledged_at = utcnow()
        rec.acknowledged_by_id = principal.user_id
        session.flush()
        record(session, principal, "alert.acknowledge", "alert", alert.id, {"org": principal.org_code})
        pending = session.scalar(
            select(func.count()).where(
                AlertRecipient.alert_id == alert.id, AlertRecipient.acknowledged_at.is_(None)
            )
        )
        outbox.emit(
            session,
            "alert.acknowledged",
            operation_id=op.id,
            audience=Audience.ORGS,
            org_ids=[alert.sender_org_id, principal.org_id],
            payload={
                "operation": op.code,
                "alert": {"id": alert.id, "title": alert.title, "url": f"/alerts/{alert.id}"},
                "org": principal.org_code,
                "pending": int(pending or 0),
            },
        )
    return alerts_out(session, principal, op, [alert])[0]


def _names(session: Session, user_ids: set[int]) -> dict[int, str]:
    if not user_ids:
        return {}
    return dict(session.execute(select(User.id, User.display_name).where(User.id.in_(user_ids))).all())


def _orgs(session: Session, org_ids: set[int]) -> dict[int, Organisation]:
    if not org_ids:
        return {}
    return {o.id: o for o in session.scalars(select(Organisation).where(Organisation.id.in_(org_ids)))}


def alerts_out(
    session: Session, principal: Principal, op: Operation, alerts: Sequence[Alert]
) -> list[AlertOut]:
    if not alerts:
        return []
    ids = [a.id for a in alerts]
    recs: dict[int, list[AlertRecipient]] = {}
    for r in session.scalars(
        select(AlertRecipient).where(AlertRecipient.alert_id.in_(ids)).order_by(AlertRecipient.id)
    ):
        recs.setdefault(r.alert_id, []).append(r)
    orgs = _orgs(session, {a.sender_org_id for a in alerts} | {r.org_id for rs in recs.values() for r in rs})
    users = _names(
        session,
        {a.sender_user_id for a in alerts if a.sender_user_id}
        | {r.acknowledged_by_id for rs in recs.values() for r in rs if r.acknowledged_by_id},
    )
    files = _attachments_of(session, alert_ids=ids)
    overseer = oversees(session, principal, op.id)
    out = []
    for a in alerts:
        rs = recs.get(a.id, [])
        mine = next((r for r in rs if r.org_id == principal.org_id), None)
        sender_side = overseer or a.sender_org_id == principal.org_id
        out.append(
            AlertOut(
                id=a.id,
                operation=op.code,
                kind=a.kind,
                scope=a.scope,
                region=a.region_code,
                title=a.title,
                body=a.body,
                sender_org=orgs[a.sender_org_id].code,
                sender=users.get(a.sender_user_id) if a.sender_user_id else None,
                created_at=a.created_at,
                attachments=[attachment_out(f) for f in files.get(("alert", a.id), [])],
                is_sender=sender_side,
                acknowledged_at=mine.acknowledged_at if mine else None,
                can_acknowledge=mine is not None
                and mine.acknowledged_at is None
                and principal.has_scope("cases:write"),
                recipient_count=len(rs),
                pending_count=sum(1 for r in rs if r.acknowledged_at is None) if sender_side else None,
                recipients=[
                    RecipientOut(
                        org=orgs[r.org_id].code,
                        org_name=orgs[r.org_id].name,
                        acknowledged_at=r.acknowledged_at,
                        acknowledged_by=users.get(r.acknowledged_by_id) if r.acknowledged_by_id else None,
                    )
                    for r in rs
                ]
                if sender_side
                else None,
            )
        )
    return out
