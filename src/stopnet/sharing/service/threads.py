"""Message threads of an operation and of a case: messages, mentions and read state."""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import and_, false, func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from stopnet.access import policy
from stopnet.access.principal import Principal
from stopnet.audit.service import record
from stopnet.config import Settings
from stopnet.core.errors import Forbidden, NotFound
from stopnet.db.models import (
    Case,
    Operation,
    Organisation,
    User,
    utcnow,
)
from stopnet.db.models.sharing import (
    Audience,
    Mention,
    Message,
    ReadState,
    Thread,
)

from .. import mail, outbox
from ..schemas import (
    MentionOut,
    MessageCreate,
    MessageOut,
    ReadStateOut,
    ThreadCreate,
    ThreadDetail,
    ThreadOut,
)
from .access import _require_in_operation, _require_read, _require_write, can_read_thread, in_operation
from .alerts import _names, _orgs
from .attachments import _attachments_of, _link_attachments, attachment_out
from .constants import EXCERPT, MAX_MENTIONS


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
