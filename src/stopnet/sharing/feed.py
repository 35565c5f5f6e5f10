"""The live feed of an operation as Server-Sent Events: per-subscriber visibility, filters, replay.

A stream (``GET /api/v1/operations/{code}/feed``) goes through these steps:

1. **Who is asking** (in a thread, with a short-lived session, before the answer starts): the principal
   and the operation (401, 403, or 404 when the organisation does not take part);
2. **the first bytes** (``retry``), then, in a thread again, a :class:`Viewer` built from the same
   ``policy.case_read_clause`` that every read path uses, compiled once into a Python predicate over
   the case attributes stored with each event (:func:`compile_clause`). A clause it cannot compile
   fails closed: the stream then carries no case event.
3. **Subscribe first** to the process's hub (``broker.Hub``), so that nothing committed from now on is
   missed;
4. **then replay** from the database the events with ``id > Last-Event-ID`` (header, or the
   ``last_event_id`` query parameter on a first connection), in id order, filtered the same way;
5. **then live**: events buffered by the hub, skipping any id already sent (replay and live overlap;
   ids are strictly increasing on the wire, so nothing is sent twice).

Idle streams get a comment every ``feed_heartbeat_seconds``; a stream ends after
``feed_stream_seconds`` and the browser reconnects with ``Last-Event-ID`` (``retry`` is sent first).
A replay too long (more than :data:`REPLAY_MAX` events) or a cursor from the future (another database)
gets a ``reset`` event: reload the page, the stream goes on live.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, select
from sqlalchemy.orm import Session
from sqlalchemy.sql import elements, operators

from stopnet.access import policy
from stopnet.access.principal import Principal
from stopnet.db.models import CaseStatus, Operation, ParticipantRole, Role, Visibility
from stopnet.db.models.sharing import OutboxEvent

from .broker import COLUMNS, FETCH_BATCH, FeedEvent, Hub, Subscriber, fetch_events, max_event_id, to_event

log = logging.getLogger("stopnet.sharing.feed")

REPLAY_MAX = 10_000
RETRY_MS = 2000
FAMILIES = ("case", "alert", "message")


# ------------------------------------------------------------------------------ clause → predicate


class Unevaluable(ValueError):
    """The clause uses a construct the predicate compiler does not know."""


Value = Any
Predicate = Callable[[Mapping[str, Any]], bool | None]


def compile_clause(clause: ColumnElement[bool]) -> Callable[[Mapping[str, Any]], bool]:
    """Turn a SQL WHERE clause on ``Case`` into a Python predicate over a mapping of its columns.

    SQL's three-valued logic is kept (a comparison with NULL is unknown, and unknown is not true), so
    the predicate agrees with the database. Supported: AND, OR, NOT, =, !=, IN, NOT IN, IS [NOT] NULL,
    TRUE, FALSE; anything else raises :class:`Unevaluable`.
    """
    pred = _compile(clause)
    return lambda row: pred(row) is True


def _operand(el: Any) -> Callable[[Mapping[str, Any]], Value]:
    if isinstance(el, elements.Grouping):
        return _operand(el.element)
    if isinstance(el, elements.BindParameter):
        value = el.effective_value
        if isinstance(value, (list, tuple, set, frozenset)):
            frozen = tuple(_plain(v) for v in value)
            return lambda row: frozen
        plain = _plain(value)
        return lambda row: plain
    if isinstance(el, elements.Null):
        return lambda row: None
    if isinstance(el, elements.ClauseList):  # IN (a, b, c) rendered as a list of binds
        parts = [_operand(c) for c in el.clauses]
        return lambda row: tuple(p(row) for p in parts)
    if isinstance(el, elements.ColumnElement) and getattr(el, "table", None) is not None:
        key = str(el.key)
        return lambda row: _plain(row.get(key))
    raise Unevaluable(f"cannot evaluate operand {el!r}")


def _plain(v: Any) -> Any:
    return v.value if hasattr(v, "value") and not isinstance(v, (str, int)) else v


def _compile(el: Any) -> Predicate:
    if isinstance(el, elements.True_):
        return lambda row: True
    if isinstance(el, elements.False_):
        return lambda row: False
    if isinstance(el, elements.Grouping):
        return _compile(el.element)
    if isinstance(el, elements.AsBoolean):
        inner = _compile(el.element)
        if el.operator is operators.is_true:
            return inner
        if el.operator is operators.is_false:
            return lambda row: _not(inner(row))
        raise Unevaluable(f"cannot evaluate {el!r}")
    if isinstance(el, elements.UnaryExpression) and el.operator is operators.inv:
        inner = _compile(el.element)
        return lambda row: _not(inner(row))
    if isinstance(el, elements.BooleanClauseList) or (
        isinstance(el, elements.ClauseList) and el.operator in (operators.and_, operators.or_)
    ):
        parts = [_compile(c) for c in el.clauses]
        if el.operator is operators.and_:
            return lambda row: _and(p(row) for p in parts)
        if el.operator is operators.or_:
            return lambda row: _or(p(row) for p in parts)
        raise Unevaluable(f"cannot evaluate {el!r}")
    if isinstance(el, elements.BinaryExpression):
        op = el.operator
        left, right = _operand(el.left), _operand(el.right)
        if op is operators.eq:
            return lambda row: _cmp(left(row), right(row), True)
        if op is operators.ne:
            return lambda row: _cmp(left(row), right(row), False)
        if op is operators.in_op:
            return lambda row: _in(left(row), right(row))
        if op is operators.not_in_op:
            return lambda row: _not(_in(left(row), right(row)))
        if op is operators.is_:
            return lambda row: left(row) is None if right(row) is None else _cmp(left(row), right(row), True)
        if op is operators.is_not:
            return lambda row: (
                left(row) is not None if right(row) is None else _not(_cmp(left(row), right(row), True))
            )
        raise Unevaluable(f"cannot evaluate operator {op!r}")
    raise Unevaluable(f"cannot evaluate {el!r}")


def _not(v: bool | None) -> bool | None:
    return None if v is None else not v


def _cmp(a: Any, b: Any, equal: bool) -> bool | None:
    if a is None or b is None:
        return None
    return (a == b) if equal else (a != b)


def _in(a: Any, values: Any) -> bool | None:
    if a is None:
        return None
    values = tuple(values)
    if a in values:
        return True
    return None if any(v is None for v in values) else False


def _and(values: Any) -> bool | None:
    unknown = False
    for v in values:
        if v is False:
            return False
        if v is None:
            unknown = True
    return None if unknown else True


def _or(values: Any) -> bool | None:
    unknown = False
    for v in values:
        if v is True:
            return True
        if v is None:
            unknown = True
    return None if unknown else False


# ------------------------------------------------------------------------------ viewer and filters


@dataclass(frozen=True)
class FeedFilters:
    """A subscriber's own filters (empty: everything it may see)."""

    commodity_group: str | None = None
    region: str | None = None
    country: str | None = None
    channel: str | None = None
    types: frozenset[str] = frozenset()

    @classmethod
    def parse(
        cls,
        commodity_group: str | None = None,
        region: str | None = None,
        country: str | None = None,
        channel: str | None = None,
        types: str | None = None,
    ) -> FeedFilters:
        def clean(v: str | None, upper: bool) -> str | None:
            v = (v or "").strip()
            if not v:
                return None
            return v.upper() if upper else v.lower()

        kinds = frozenset(t.strip().lower() for t in (types or "").split(",") if t.strip())
        unknown = kinds - set(FAMILIES)
        if unknown:
            from stopnet.core.errors import FieldError, InvalidInput

            raise InvalidInput(
                [FieldError("types", f"unknown event types; choose from {', '.join(FAMILIES)}", value=types)]
            )
        return cls(
            commodity_group=clean(commodity_group, False),
            region=clean(region, True),
            country=clean(country, True),
            channel=clean(channel, True),
            types=kinds,
        )

    @property
    def on_cases(self) -> bool:
        return any((self.commodity_group, self.region, self.country, self.channel))

    def match(self, ev: FeedEvent) -> bool:
        if self.types and ev.family not in self.types:
            return False
        if ev.case is None or not self.on_cases:
            return True  # alerts and operation messages are not filtered by case attributes
        if self.commodity_group and self.commodity_group not in ev.groups:
            return False
        if self.region and ev.region != self.region:
            return False
        if self.country and ev.country != self.country:
            return False
        return not (self.channel and ev.channel != self.channel)


@dataclass(frozen=True)
class Viewer:
    """What one principal may see of one operation's events (decided once, when the stream opens)."""

    org_id: int
    case_visible: Callable[[Mapping[str, Any]], bool]
    in_operation: bool  # operation threads: participants except rights holders, and admins
    oversees: bool  # coordinators of the operation and admins see every alert

    def can_see(self, ev: FeedEvent) -> bool:
        if ev.audience == "case":
            return ev.case is not None and self.case_visible(ev.case)
        if ev.audience == "orgs":
            return self.oversees or self.org_id in ev.org_ids
        if ev.audience == "operation":
            return self.in_operation
        return False

    def accepts(self, filters: FeedFilters) -> Callable[[FeedEvent], bool]:
        return lambda ev: self.can_see(ev) and filters.match(ev)


_CASE_TYPES = {"status": CaseStatus, "visibility": Visibility}


def viewer_for(session: Session, principal: Principal, op: Operation) -> Viewer:
    """The visibility of ``principal`` in ``op``, from the policy's own clause."""
    clause = policy.case_read_clause(session, principal, op.id)
    try:
        visible = compile_clause(clause)
    except Unevaluable:
        log.error("case_read_clause cannot be evaluated in Python; the feed carries no case event")

        def visible(row: Mapping[str, Any]) -> bool:
            return False

    def case_visible(attrs: Mapping[str, Any]) -> bool:
        row = dict(attrs)
        for key, enum_cls in _CASE_TYPES.items():
            if row.get(key) is not None:
                row[key] = enum_cls(row[key])
        return visible(row)

    role = policy.participation(session, principal, op.id)
    in_operation = principal.is_admin or (role is not None and role is not ParticipantRole.RIGHTS_HOLDER)
    oversees = principal.is_admin or (
        principal.role is Role.COORDINATOR and role is ParticipantRole.COORDINATOR
    )
    return Viewer(principal.org_id, case_visible, in_operation, oversees)


def recent_events(
    session: Session,
    principal: Principal,
    op: Operation,
    filters: FeedFilters,
    *,
    limit: int = 40,
    scan: int = 2000,
) -> tuple[int, list[dict[str, Any]]]:
    """The cursor to open the feed with, then the latest events the principal may see (newest first).

    The cursor is read first, so that an event committed while the page is built is replayed by the
    stream rather than lost.
    """
    policy.require_read(principal)
    cursor = max_event_id(session)
    accepts = viewer_for(session, principal, op).accepts(filters)
    rows = session.execute(
        select(*COLUMNS)
        .where(OutboxEvent.operation_id == op.id, OutboxEvent.id <= cursor)
        .order_by(OutboxEvent.id.desc())
        .limit(scan)
    ).all()
    shown = []
    for r in rows:
        ev = to_event(r)
        if accepts(ev):
            shown.append(ev.data)
            if len(shown) >= limit:
                break
    return cursor, shown


# ------------------------------------------------------------------------------ the stream


def parse_cursor(header: str | None, query: int | None) -> int | None:
    """``Last-Event-ID`` (sent by browsers on reconnection) wins over the ``last_event_id`` parameter."""
    if header is not None:
        header = header.strip()
        if header.isdigit():
            return int(header)
    return query


def _replay_page(hub: Hub, operation_id: int, after: int) -> tuple[list[FeedEvent], int]:
    with hub.factory() as s:
        return fetch_events(s, after, operation_id=operation_id, limit=FETCH_BATCH), max_event_id(s)


def _reset(last: int, reason: str) -> bytes:
    data = json.dumps({"type": "reset", "reason": reason, "id": last})
    return f"id: {last}\nevent: reset\ndata: {data}\n\n".encode()


async def _replay(hub: Hub, sub: Subscriber, after: int) -> AsyncIterator[tuple[bytes, int]]:
    """Yield (chunk, new cursor) for the events after ``after`` of the subscriber's operation."""
    scanned = 0
    last = after
    while True:
        events, newest = await asyncio.to_thread(_replay_page, hub, sub.operation_id, last)
        if last > newest:
            yield _reset(newest, "unknown cursor"), newest
            return
        if scanned + len(events) > REPLAY_MAX:
            yield _reset(newest, "too far behind"), newest
            return
        scanned += len(events)
        chunk = [ev.wire for ev in events if sub.accepts(ev)]
        if events:
            last = events[-1].id
        if chunk:
            yield b"".join(chunk), last
        if len(events) < FETCH_BATCH:
            if not chunk and last != after:
                yield b"", last
            return


async def event_stream(
    hub: Hub,
    operation_id: int,
    accepts: Callable[[], Awaitable[Callable[[FeedEvent], bool]]],
    since: int | None,
    *,
    heartbeat: float,
    lifetime: float,
) -> AsyncIterator[bytes]:
    """The bytes of one SSE stream: subscribe, replay what was missed, then live events.

    The first bytes (``retry``) go out before ``accepts()`` decides what the subscriber may see (the
    caller has authenticated it already): a hundred streams opened at once are all answered sooner.
    The stream waits only on its subscriber's event, set by the hub when events arrive and on every
    heartbeat tick (``Hub._ticker``): no timer per stream.
    """
    yield f"retry: {RETRY_MS}\n: stopnet live feed\n\n".encode()
    sub = hub.subscribe(operation_id, await accepts())
    max_ticks = max(1, int(lifetime / max(heartbeat, 0.05)))
    lived = 0
    try:
        last = sub.start_id if since is None else since
        sent = last  # the last id written on the wire
        if since is not None:
            async for chunk, cursor in _replay(hub, sub, since):
                last = cursor
                if chunk:
                    yield chunk
                    sent = last
        while True:
            await sub.event.wait()
            sub.event.clear()
            if sub.overflowed:
                sub.overflowed = False
                sub.buffer.clear()
                async for chunk, cursor in _replay(hub, sub, last):
                    last = cursor
                    if chunk:
                        yield chunk
                        sent = last
                continue
            out = []
            while sub.buffer:
                ev = sub.buffer.popleft()
                if ev.id > last:
                    out.append(ev.wire)
                    last = ev.id
            ticks, sub.ticks = sub.ticks, 0
            lived += ticks
            if out:
                yield b"".join(out)
                sent = last
            if lived >= max_ticks:
                return  # the browser reconnects with Last-Event-ID
            if ticks and not out:
                # idle for a heartbeat: keep the connection alive and move the browser's cursor past
                # events it may not see, so that a reconnection does not replay them for nothing
                cursor = max(last, hub.last_id)
                if cursor > sent:
                    last = sent = cursor
                    yield f"id: {cursor}\n: keep-alive\n\n".encode()
                else:
                    yield b": keep-alive\n\n"
    finally:
        hub.unsubscribe(sub)
