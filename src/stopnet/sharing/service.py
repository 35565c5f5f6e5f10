"""Alerts, message threads, mentions, read state and attachments.

Every function takes the acting :class:`Principal` and checks it here, whatever the caller. Functions
flush; the request or command commits. Each change also records its live-feed event (``outbox``) and,
where someone must be told, its e-mails (``mail``), both written or sent only if the caller commits.

Who sees what (docs/live-feed.md):

* **alerts**: the sending organisation, the recipient organisations, and the operation's coordinators
  and platform admins (who oversee every alert). Only the sender's side sees who has acknowledged;
* **operation threads**: every participant of the operation except rights holders (and admins);
* **case threads**: whoever may read the case (``policy.can_read_case``), checked at every read;
* **attachments**: as their alert or message; before they are linked, their uploader's organisation.
"""

from __future__ import annotations

import hashlib
import mimetypes
import os
import re
import tempfile
import unicodedata
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from sqlalchemy import ColumnElement, and_, exists, false, func, or_, select, true
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from stopnet.access import policy
from stopnet.access.principal import Principal
from stopnet.audit.service import record
from stopnet.config import Settings
from stopnet.core.errors import FieldError, Forbidden, InvalidInput, NotFound, ServiceError, TooLarge
from stopnet.core.pdf import refuse_active_content
from stopnet.db.models import (
    Case,
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
    Attachment,
    Audience,
    Mention,
    Message,
    ReadState,
    Thread,
)
from stopnet.reference import get_reference

from . import mail, outbox
from .broker import max_event_id
from .schemas import (
    AlertCreate,
    AlertOut,
    AttachmentOut,
    MentionOut,
    MessageCreate,
    MessageOut,
    ReadStateOut,
    RecipientOut,
    ThreadCreate,
    ThreadDetail,
    ThreadOut,
)

EXCERPT = 200
MAX_MENTIONS = 20


class AttachmentCorrupt(ServiceError):
    """The stored bytes of an attachment no longer match its checksum."""

    status_code = 500
    code = "attachment_corrupt"


# ---------------------------------------------------------------------------------------- access


def feed_cursor(session: Session) -> int:
    """The id of the latest event committed to the live feed: a page read after it and connecting its
    stream from it (``data-cursor``) misses nothing and shows nothing twice."""
    return max_event_id(session)


def _participation(session: Session, principal: Principal, op_id: int) -> ParticipantRole | None:
    return policy.participation(session, principal, op_id)


def in_operation(session: Session, principal: Principal, op_id: int) -> bool:
    """Takes part in the operation's exchanges: every participant but rights holders, and admins."""
    role = _participation(session, principal, op_id)
    return principal.is_admin or (role is not None and role is not ParticipantRole.RIGHTS_HOLDER)


def oversees(session: Session, principal: Principal, op_id: int) -> bool:
    """The operation's coordinating unit and platform admins see every alert."""
    return principal.is_admin or (
        principal.role is Role.COORDINATOR
        and _participation(session, principal, op_id) is ParticipantRole.COORDINATOR
    )


def _require_read(principal: Principal) -> None:
    policy.require_read(principal)


def _require_write(principal: Principal) -> None:
    if principal.role is Role.RIGHTS_HOLDER:
        raise Forbidden("rights holders do not take part in the operation's alerts and messages")
    if not principal.has_scope("cases:write"):
        raise Forbidden("this API token lacks the scope cases:write")


def _require_in_operation(session: Session, principal: Principal, op_id: int) -> None:
    if not in_operation(session, principal, op_id):
        raise Forbidden("only the operation's participants take part in its alerts and messages")


# ---------------------------------------------------------------------------------------- attachments

EXTENSIONS = {
    ".pdf": "application/pdf",
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".gif": "image/gif",
    ".txt": "text/plain",
    ".csv": "text/csv",
    ".xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}


def _is_text(data: bytes) -> bool:
    if b"\x00" in data:
        return False
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


SIGNATURES = {
    "application/pdf": lambda b: b.startswith(b"%PDF-"),
    "image/png": lambda b: b.startswith(b"\x89PNG\r\n\x1a\n"),
    "image/jpeg": lambda b: b.startswith(b"\xff\xd8\xff"),
    "image/gif": lambda b: b[:6] in (b"GIF87a", b"GIF89a"),
    "text/plain": _is_text,
    "text/csv": _is_text,
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": lambda b: b.startswith(
        b"PK\x03\x04"
    ),
}


def allowed_types(settings: Settings) -> set[str]:
    return {t.strip().lower() for t in settings.attachment_types.split(",") if t.strip()}


def clean_filename(name: str | None) -> str:
    """The base name only, without control characters, at most 255 characters."""
    base = re.split(r"[\\/]", name or "")[-1]
    base = "".join(c for c in unicodedata.normalize("NFC", base) if unicodedata.category(c)[0] != "C")
    base = base.strip().strip(".") or "attachment"
    if len(base) > 255:
        stem, dot, ext = base.rpartition(".")
        base = (stem[: 255 - len(ext) - 1] + dot + ext) if dot and len(ext) < 16 else base[:255]
    return base


def detect_type(filename: str, declared: str | None, data: bytes, settings: Settings) -> str:
    """The content type of an upload: from its name, agreeing with what was declared and its bytes."""
    allowed = allowed_types(settings)
    ext = os.path.splitext(filename)[1].lower()
    by_name = EXTENSIONS.get(ext) or mimetypes.guess_type(filename)[0]
    declared = (declared or "").split(";")[0].strip().lower()
    if declared in ("", "application/octet-stream"):
        declared = ""
    ctype = by_name or declared
    accepted = ", ".join(sorted(allowed))
    if not ctype or ctype not in allowed:
        raise InvalidInput(
            [FieldError("file", f"this type of file is not accepted (accepted: {accepted})", value=filename)],
            "attachment refused",
        )
    if declared and declared != ctype:
        raise InvalidInput(
            [FieldError("file", f"the file is declared as {declared} but named as {ctype}", value=filename)],
            "attachment refused",
        )
    check = SIGNATURES.get(ctype)
    if check is None or not check(data):
        raise InvalidInput(
            [FieldError("file", f"the file's content is not {ctype}", value=filename)], "attachment refused"
        )
    if ctype == "application/pdf":
        refuse_active_content(filename, data)
    return ctype


def storage_root(settings: Settings) -> Path:
    return Path(settings.data_dir).resolve()


def _write_blob(settings: Settings, sha: str, data: bytes) -> str:
    """Store the bytes under data_dir/attachments/<aa>/<sha256> (atomically; once per content)."""
    rel = f"attachments/{sha[:2]}/{sha}"
    path = storage_root(settings) / rel
    if path.exists() and path.stat().st_size == len(data):
        return rel
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".upload-")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o640)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return rel


def store_attachment(
    session: Session,
    principal: Principal,
    op: Operation,
    filename: str | None,
    declared_type: str | None,
    data: bytes,
    settings: Settings,
) -> Attachment:
    """Check and store an upload; it stays private to its organisation until an alert or message uses it."""
    _require_write(principal)
    _require_in_operation(session, principal, op.id)
    if len(data) > settings.attachment_max_bytes:
        raise TooLarge(f"attachment larger than the limit of {settings.attachment_max_bytes} bytes")
    name = clean_filename(filename)
    if not data:
        raise InvalidInput([FieldError("file", "the file is empty", value=name)], "attachment refused")
    ctype = detect_type(name, declared_type, data, settings)
    sha = hashlib.sha256(data).hexdigest()
    rel = _write_blob(settings, sha, data)
    att = Attachment(
        operation_id=op.id,
        org_id=principal.org_id,
        uploaded_by_id=principal.user_id,
        filename=name,
        content_type=ctype,
        size=len(data),
        sha256=sha,
        storage_path=rel,
    )
    session.add(att)
    session.flush()
    record(session, principal, "attachment.upload", "attachment", att.id, {"sha256": sha, "size": len(data)})
    return att


def attachment_out(a: Attachment) -> AttachmentOut:
    return AttachmentOut(
        id=a.id,
        filename=a.filename,
        content_type=a.content_type,
        size=a.size,
        sha256=a.sha256,
        url=f"/api/v1/attachments/{a.id}",
        created_at=a.created_at,
    )


def _link_attachments(
    session: Session,
    principal: Principal,
    op_id: int,
    ids: Sequence[int],
    *,
    alert_id: int | None = None,
    message_id: int | None = None,
) -> list[Attachment]:
    if not ids:
        return []
    wanted = list(dict.fromkeys(ids))
    found = {a.id: a for a in session.scalars(select(Attachment).where(Attachment.id.in_(wanted)))}
    errors = []
    for i in wanted:
        a = found.get(i)
        usable = (
            a is not None
            and a.operation_id == op_id
            and a.org_id == principal.org_id
            and (principal.user_id is None or a.uploaded_by_id == principal.user_id)
            and a.alert_id is None
            and a.message_id is None
        )
        if not usable:
            errors.append(
                FieldError(
                    "attachments", "no such unused attachment of yours in this operation", value=str(i)
                )
            )
    if errors:
        raise InvalidInput(errors, "attachments cannot be used")
    out = [found[i] for i in wanted]
    for a in out:
        a.alert_id = alert_id
        a.message_id = message_id
    session.flush()
    return out


def _attachments_of(
    session: Session, *, alert_ids: Iterable[int] = (), message_ids: Iterable[int] = ()
) -> dict[tuple[str, int], list[Attachment]]:
    conds = []
    alert_ids, message_ids = list(alert_ids), list(message_ids)
    if alert_ids:
        conds.append(Attachment.alert_id.in_(alert_ids))
    if message_ids:
        conds.append(Attachment.message_id.in_(message_ids))
    out: dict[tuple[str, int], list[Attachment]] = {}
    if not conds:
        return out
    for a in session.scalars(select(Attachment).where(or_(*conds)).order_by(Attachment.id)):
        key = ("alert", a.alert_id) if a.alert_id is not None else ("message", a.message_id or 0)
        out.setdefault(key, []).append(a)
    return out


def get_attachment(session: Session, principal: Principal, attachment_id: int) -> Attachment:
    """The attachment, if its alert or message is visible to the principal (404 otherwise)."""
    _require_read(principal)
    a = session.get(Attachment, attachment_id)
    if a is None:
        raise NotFound(f"no attachment {attachment_id}")
    if a.alert_id is not None:
        alert = session.get(Alert, a.alert_id)
        visible = alert is not None and _alert_visible(session, principal, alert)
    elif a.message_id is not None:
        msg = session.get(Message, a.message_id)
        thread = session.get(Thread, msg.thread_id) if msg else None
        visible = thread is not None and can_read_thread(session, principal, thread)
    else:
        visible = a.org_id == principal.org_id
    if not visible:
        raise NotFound(f"no attachment {attachment_id}")
    return a


def read_attachment(
    session: Session, principal: Principal, attachment_id: int, settings: Settings
) -> tuple[Attachment, bytes]:
    """The attachment and its bytes, verified against the stored size and SHA-256."""
    a = get_attachment(session, principal, attachment_id)
    path = storage_root(settings) / a.storage_path
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise AttachmentCorrupt(f"the file of attachment {a.id} is missing from storage") from None
    if len(data) != a.size or hashlib.sha256(data).hexdigest() != a.sha256:
        raise AttachmentCorrupt(f"the file of attachment {a.id} does not match its checksum")
    return a, data


# ---------------------------------------------------------------------------------------- alerts


def alert_read_clause(session: Session, principal: Principal, op_id: int) -> ColumnElement[bool]:
    """A WHERE clause on :class:`Alert` selecting the alerts ``principal`` may read in one operation."""
    if oversees(session, principal, op_id):
        return true()
    if not in_operation(session, principal, op_id):
        return false()
    return or_(
        Alert.sender_org_id == principal.org_id,
        exists().where(AlertRecipient.alert_id == Alert.id, AlertRecipient.org_id == principal.org_id),
    )


def _alert_visible(session: Session, principal: Principal, alert: Alert) -> bool:
    clause = alert_read_clause(session, principal, alert.operation_id)
    return bool(session.scalar(select(true()).where(Alert.id == alert.id, clause)))


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


# ---------------------------------------------------------------------------------------- threads


def can_read_thread(session: Session, principal: Principal, thread: Thread) -> bool:
    """Whether the principal's role reads the thread (its callers checked the token's scope)."""
    if thread.case_id is not None:
        case = session.get(Case, thread.case_id)
        return case is not None and policy.can_read_case(session, principal, case)
    return in_operation(session, principal, thread.operation_id)


def _load_thread(session: Session, principal: Principal, thread_id: int) -> Thread:
    policy.require_record_read(principal)
    thread = session.get(Thread, thread_id)
    if thread is None or not can_read_thread(session, principal, thread):
        raise NotFound(f"no thread {thread_id}")
    return thread


def visible_case(session: Session, principal: Principal, case_id: int) -> Case:
    policy.require_record_read(principal)
    case = session.get(Case, case_id)
    if case is None or not policy.can_read_case(session, principal, case):
        raise NotFound(f"no case {case_id}")
    return case


def create_thread(
    session: Session, principal: Principal, op: Operation, data: ThreadCreate, settings: Settings
) -> Thread:
    """A new conversation of the operation, with its first message."""
    _require_write(principal)
    _require_in_operation(session, principal, op.id)
    now = utcnow()
    thread = Thread(
        operation_id=op.id,
        title=data.title,
        created_by_id=principal.user_id,
        created_by_org_id=principal.org_id,
        created_at=now,
        last_message_at=now,
    )
    session.add(thread)
    session.flush()
    record(session, principal, "thread.create", "thread", thread.id, {"op": op.code})
    _post(
        session,
        principal,
        op,
        thread,
        None,
        MessageCreate(body=data.body, attachments=data.attachments),
        settings,
    )
    return thread


def case_thread(session: Session, principal: Principal, case_id: int) -> Thread | None:
    """The conversation of a case (None before its first message); 404 if the case is not visible."""
    visible_case(session, principal, case_id)
    return session.scalar(select(Thread).where(Thread.case_id == case_id))


def post_case_message(
    session: Session, principal: Principal, case_id: int, data: MessageCreate, settings: Settings
) -> Message:
    """Post to the conversation of a case, opening it with the first message."""
    case = visible_case(session, principal, case_id)
    _require_write(principal)
    thread = session.scalar(select(Thread).where(Thread.case_id == case.id))
    if thread is None:
        now = utcnow()
        try:
            with session.begin_nested():
                thread = Thread(
                    operation_id=case.operation_id,
                    case_id=case.id,
                    title=f"Case {case.reference}",
                    created_by_id=principal.user_id,
                    created_by_org_id=principal.org_id,
                    created_at=now,
                    last_message_at=now,
                )
                session.add(thread)
                session.flush()
        except IntegrityError:  # opened at the same moment by someone else
            thread = session.scalar(select(Thread).where(Thread.case_id == case.id))
            if thread is None:
                raise
    op = session.get_one(Operation, case.operation_id)
    return _post(session, principal, op, thread, case, data, settings)


def thread_operation(session: Session, principal: Principal, thread_id: int) -> Operation:
    thread = _load_thread(session, principal, thread_id)
    return session.get_one(Operation, thread.operation_id)


def post_message(
    session: Session, principal: Principal, thread_id: int, data: MessageCreate, settings: Settings
) -> Message:
    thread = _load_thread(session, principal, thread_id)
    _require_write(principal)
    op = session.get_one(Operation, thread.operation_id)
    case = session.get(Case, thread.case_id) if thread.case_id is not None else None
    return _post(session, principal, op, thread, case, data, settings)


MENTION = re.compile(r"(?<![\w.@+%-])@([A-Za-z0-9._%+-]+(?:@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+)?)")


def mentioned_handles(body: str) -> list[str]:
    """``@name`` (the part of an e-mail address before ``@``) or ``@name@example.org``, in order."""
    out: list[str] = []
    for m in MENTION.finditer(body):
        h = m.group(1).rstrip(".").lower()
        if h and h not in out:
            out.append(h)
    return out[:MAX_MENTIONS]


def _resolve_mentions(
    session: Session, thread: Thread, handles: list[str], author_id: int | None
) -> list[tuple[User, Organisation]]:
    if not handles:
        return []
    from stopnet.access.service import principal_for

    locals_ = {h for h in handles if "@" not in h}
    fulls = {h for h in handles if "@" in h}
    conds = []
    if fulls:
        conds.append(func.lower(User.email).in_(fulls))
    for h in locals_:
        escaped = h.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        conds.append(func.lower(User.email).like(escaped + "@%", escape="\\"))
    rows = session.execute(
        select(User, Organisation)
        .join(Organisation, Organisation.id == User.org_id)
        .where(User.is_active, Organisation.is_active, or_(*conds))
    ).all()
    chosen: dict[int, tuple[User, Organisation]] = {}
    for h in handles:
        if "@" in h:
            match = [(u, o) for u, o in rows if u.email.lower() == h]
        else:
            match = [(u, o) for u, o in rows if u.email.lower().split("@", 1)[0] == h]
        if len(match) != 1:  # unknown or ambiguous: write the whole address
            continue
        u, o = match[0]
        if u.id == author_id or u.id in chosen:
            continue
        if can_read_thread(session, principal_for(u, o), thread):
            chosen[u.id] = (u, o)
    return list(chosen.values())


def _post(
    session: Session,
    principal: Principal,
    op: Operation,
    thread: Thread,
    case: Case | None,
    data: MessageCreate,
    settings: Settings,
) -> Message:
    now = utcnow()
    msg = Message(
        thread_id=thread.id,
        author_user_id=principal.user_id,
        author_org_id=principal.org_id,
        body=data.body,
        created_at=now,
    )
    session.add(msg)
    session.flush()
    files = _link_attachments(session, principal, op.id, data.attachments, message_id=msg.id)
    mentioned = _resolve_mentions(session, thread, mentioned_handles(data.body), principal.user_id)
    for u, _o in mentioned:
        session.add(Mention(message_id=msg.id, user_id=u.id))
    thread.last_message_at = now
    if principal.user_id is not None:
        _set_read(session, thread.id, principal.user_id, msg.id)
    session.flush()
    author = _author_name(session, principal)
    payload = {
        "operation": op.code,
        "message": {
            "id": msg.id,
            "thread_id": thread.id,
            "thread_title": thread.title,
            "case_id": thread.case_id,
            "author": author,
            "author_org": principal.org_code,
            "excerpt": data.body[:EXCERPT],
            "mentions": [u.id for u, _ in mentioned],
            "attachments": len(files),
            "url": f"/threads/{thread.id}#m{msg.id}",
        },
    }
    if case is not None:
        outbox.emit(
            session, "message.posted", operation_id=op.id, audience=Audience.CASE, payload=payload, case=case
        )
    else:
        outbox.emit(
            session, "message.posted", operation_id=op.id, audience=Audience.OPERATION, payload=payload
        )
    url = mail.link(settings, f"/threads/{thread.id}#m{msg.id}")
    mail.queue(
        session,
        settings,
        [
            mail.Mail(
                u.email,
                f"[stopnet {op.code}] {author} mentioned you in “{thread.title}”",
                f"{author} ({principal.org_code}) mentioned you in “{thread.title}”:\n\n{data.body}\n\n"
                f"{len(files)} attachment(s). Reply: {url}\n",
            )
            for u, _o in mentioned
        ],
    )
    return msg


def _author_name(session: Session, principal: Principal) -> str:
    if principal.user_id is not None:
        name = session.scalar(select(User.display_name).where(User.id == principal.user_id))
        if name:
            return name
    return principal.label or principal.org_code


def _set_read(session: Session, thread_id: int, user_id: int, message_id: int) -> ReadState:
    state = session.scalar(
        select(ReadState).where(ReadState.thread_id == thread_id, ReadState.user_id == user_id)
    )
    if state is None:
        state = ReadState(
            thread_id=thread_id, user_id=user_id, last_read_message_id=message_id, updated_at=utcnow()
        )
        session.add(state)
    else:
        state.last_read_message_id = message_id
        state.updated_at = utcnow()
    return state


def _unread_clause(user_id: int | None) -> Any:
    """Count of messages of Thread not yet read by ``user_id`` (and not written by them)."""
    last_read = (
        select(ReadState.last_read_message_id)
        .where(ReadState.thread_id == Thread.id, ReadState.user_id == user_id)
        .correlate(Thread)
        .scalar_subquery()
    )
    mine = Message.author_user_id == user_id if user_id is not None else false()
    return (
        select(func.count(Message.id))
        .where(
            Message.thread_id == Thread.id,
            Message.id > func.coalesce(last_read, 0),
            or_(Message.author_user_id.is_(None), ~mine),
        )
        .correlate(Thread)
        .scalar_subquery()
    )


def _count_clause() -> Any:
    return (
        select(func.count(Message.id))
        .where(Message.thread_id == Thread.id)
        .correlate(Thread)
        .scalar_subquery()
    )


def list_threads(
    session: Session, principal: Principal, op: Operation, *, limit: int = 200
) -> list[ThreadOut]:
    """Conversations of the operation the principal may read (operation threads, visible cases'), latest first."""
    _require_read(principal)
    visible_cases = select(Case.id).where(
        Case.operation_id == op.id, policy.case_read_clause(session, principal, op.id)
    )
    conds = [and_(Thread.case_id.is_not(None), Thread.case_id.in_(visible_cases))]
    if in_operation(session, principal, op.id):
        conds.append(Thread.case_id.is_(None))
    rows = session.execute(
        select(Thread, _count_clause(), _unread_clause(principal.user_id))
        .where(Thread.operation_id == op.id, or_(*conds))
        .order_by(Thread.last_message_at.desc(), Thread.id.desc())
        .limit(limit)
    ).all()
    refs = _case_refs(session, {t.case_id for t, _, _ in rows if t.case_id})
    return [_thread_out(op, t, refs, count, unread) for t, count, unread in rows]


def _case_refs(session: Session, ids: set[int | None]) -> dict[int, str]:
    real = {i for i in ids if i is not None}
    if not real:
        return {}
    return dict(session.execute(select(Case.id, Case.reference).where(Case.id.in_(real))).all())


def _thread_out(op: Operation, t: Thread, refs: dict[int, str], count: int, unread: int) -> ThreadOut:
    return ThreadOut(
        id=t.id,
        operation=op.code,
        case_id=t.case_id,
        case_reference=refs.get(t.case_id) if t.case_id else None,
        title=t.title,
        created_at=t.created_at,
        last_message_at=t.last_message_at,
        message_count=int(count or 0),
        unread=int(unread or 0),
        url=f"/threads/{t.id}",
    )


def thread_detail(
    session: Session, principal: Principal, thread_id: int, *, limit: int = 200
) -> ThreadDetail:
    """The thread and its latest ``limit`` messages, oldest first."""
    thread = _load_thread(session, principal, thread_id)
    op = session.get_one(Operation, thread.operation_id)
    count, unread = session.execute(
        select(_count_clause(), _unread_clause(principal.user_id))
        .select_from(Thread)
        .where(Thread.id == thread.id)
    ).one()
    msgs = list(
        reversed(
            session.scalars(
                select(Message).where(Message.thread_id == thread.id).order_by(Message.id.desc()).limit(limit)
            ).all()
        )
    )
    ids = [m.id for m in msgs]
    mentions: dict[int, list[tuple[str, str]]] = {}
    if ids:
        for mid, name, code in session.execute(
            select(Mention.message_id, User.display_name, Organisation.code)
            .join(User, User.id == Mention.user_id)
            .join(Organisation, Organisation.id == User.org_id)
            .where(Mention.message_id.in_(ids))
            .order_by(Mention.id)
        ):
            mentions.setdefault(mid, []).append((name, code))
    names = _names(session, {m.author_user_id for m in msgs if m.author_user_id})
    orgs = _orgs(session, {m.author_org_id for m in msgs})
    files = _attachments_of(session, message_ids=ids)
    last_read = 0
    if principal.user_id is not None:
        last_read = (
            session.scalar(
                select(ReadState.last_read_message_id).where(
                    ReadState.thread_id == thread.id, ReadState.user_id == principal.user_id
                )
            )
            or 0
        )
    base = _thread_out(op, thread, _case_refs(session, {thread.case_id}), count, unread)
    return ThreadDetail(
        **base.model_dump(),
        last_read_message_id=last_read,
        messages=[
            MessageOut(
                id=m.id,
                thread_id=m.thread_id,
                author=names.get(m.author_user_id) if m.author_user_id else None,
                author_org=orgs[m.author_org_id].code,
                body=m.body,
                created_at=m.created_at,
                mentions=[MentionOut(user=n, org=c) for n, c in mentions.get(m.id, [])],
                attachments=[attachment_out(f) for f in files.get(("message", m.id), [])],
            )
            for m in msgs
        ],
    )


def mark_read(
    session: Session, principal: Principal, thread_id: int, upto: int | None = None
) -> ReadStateOut:
    """Mark the thread read up to ``upto`` (default: its latest message)."""
    thread = _load_thread(session, principal, thread_id)
    if principal.user_id is None:
        raise Forbidden("read state is kept per user; this token has no user")
    latest = session.scalar(select(func.max(Message.id)).where(Message.thread_id == thread.id)) or 0
    target = latest if upto is None else min(upto, latest)
    _set_read(session, thread.id, principal.user_id, target)
    session.flush()
    unread = session.scalar(
        select(_unread_clause(principal.user_id)).select_from(Thread).where(Thread.id == thread.id)
    )
    return ReadStateOut(thread_id=thread.id, last_read_message_id=target, unread=int(unread or 0))


def unread_total(session: Session, principal: Principal, op: Operation) -> int:
    return sum(t.unread for t in list_threads(session, principal, op))
