"""Fan-out of live-feed events inside one worker process, and the wake-up signal across processes.

Each application (one per worker process) has one :class:`Hub`. The hub is the only reader of new outbox
rows in its process: it reads ``outbox_event`` rows with ``id > last_id`` (in a thread, never on the
event loop), turns each into a :class:`FeedEvent` (wire bytes built once), and appends it to the buffer
of every subscriber of the operation allowed to see it. Subscribers are SSE streams (``feed.py``).

The hub reads when it is woken:

* ``local`` broker (SQLite default): by the ``after_commit`` hook of a session of the same process
  (:func:`wake_local`), and every ``feed_poll_seconds`` (which also picks up other processes' rows);
* ``postgres`` broker: also by ``LISTEN stopnet_outbox`` on a dedicated psycopg async connection;
  the NOTIFY is sent by the committing transaction itself (``outbox.py``). Since the hub reads rows by
  id, a lost notification (listener reconnecting, say) only delays delivery until the next poll.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from stopnet.config import Settings
from stopnet.db.models.sharing import OutboxEvent

from .outbox import CHANNEL

log = logging.getLogger("stopnet.sharing.broker")

FETCH_BATCH = 1000
SUBSCRIBER_BUFFER = 5000  # events buffered for one slow stream before it falls back to a replay
BATCH_SECONDS = 0.05  # shortest interval between two reads of the outbox by one hub


@dataclass(slots=True, eq=False)
class FeedEvent:
    """One outbox row, ready to be matched against subscribers and written to their streams."""

    id: int
    operation_id: int
    kind: str
    audience: str
    case: dict[str, Any] | None
    org_ids: frozenset[int]
    region: str | None
    country: str | None
    channel: str | None
    groups: frozenset[str]
    data: dict[str, Any]
    wire: bytes

    @property
    def family(self) -> str:
        return self.kind.split(".", 1)[0]


def to_event(row: Any) -> FeedEvent:
    """Build a :class:`FeedEvent` from an ``outbox_event`` row (ORM object or Row)."""
    payload = dict(row.payload or {})
    case_info = payload.get("case") if isinstance(payload.get("case"), dict) else None
    data = {
        "id": row.id,
        "type": row.kind,
        "at": row.created_at.isoformat() if row.created_at else None,
        **payload,
    }
    body = json.dumps(data, separators=(",", ":"), ensure_ascii=False, default=str)
    wire = f"id: {row.id}\nevent: {row.kind}\ndata: {body}\n\n".encode()
    case_attrs = None
    if row.case_id is not None:
        case_attrs = {
            "id": row.case_id,
            "operation_id": row.operation_id,
            "reporting_org_id": row.case_org_id,
            "status": row.case_status,
            "visibility": row.case_visibility,
            "region_code": row.case_region,
        }
    groups: frozenset[str] = frozenset()
    region = country = channel = None
    if case_info is not None:
        groups = frozenset(s.get("commodity_group") for s in case_info.get("seizures", ()) if s)
        region = case_info.get("region")
        country = case_info.get("reporting_country")
        channel = case_info.get("channel")
    audience = row.audience.value if hasattr(row.audience, "value") else str(row.audience)
    return FeedEvent(
        id=row.id,
        operation_id=row.operation_id,
        kind=row.kind,
        audience=audience,
        case=case_attrs,
        org_ids=frozenset(row.org_ids or ()),
        region=region,
        country=country,
        channel=channel,
        groups=groups,
        data=data,
        wire=wire,
    )


COLUMNS = (
    OutboxEvent.id,
    OutboxEvent.operation_id,
    OutboxEvent.kind,
    OutboxEvent.audience,
    OutboxEvent.case_id,
    OutboxEvent.case_org_id,
    OutboxEvent.case_status,
    OutboxEvent.case_visibility,
    OutboxEvent.case_region,
    OutboxEvent.org_ids,
    OutboxEvent.payload,
    OutboxEvent.created_at,
)


def fetch_events(
    session: Session, after: int, *, operation_id: int | None = None, limit: int = FETCH_BATCH
) -> list[FeedEvent]:
    """Outbox rows with ``id > after`` in id order (of one operation, or all)."""
    stmt = select(*COLUMNS).where(OutboxEvent.id > after)
    if operation_id is not None:
        stmt = stmt.where(OutboxEvent.operation_id == operation_id)
    rows = session.execute(stmt.order_by(OutboxEvent.id).limit(limit)).all()
    return [to_event(r) for r in rows]


def max_event_id(session: Session) -> int:
    return int(session.scalar(select(func.max(OutboxEvent.id))) or 0)


class Subscriber:
    """The buffer of one SSE stream: the hub appends, the stream drains."""

    __slots__ = ("accepts", "buffer", "event", "operation_id", "overflowed", "start_id", "ticks")

    def __init__(self, operation_id: int, accepts: Callable[[FeedEvent], bool], start_id: int) -> None:
        self.operation_id = operation_id
        self.accepts = accepts
        self.start_id = start_id
        self.buffer: deque[FeedEvent] = deque()
        self.event = asyncio.Event()
        self.overflowed = False
        self.ticks = 0  # heartbeats since the stream last wrote

    def push(self, ev: FeedEvent) -> None:
        """Buffer an event (the hub sets ``event`` once per batch, not once per event)."""
        if len(self.buffer) >= SUBSCRIBER_BUFFER:
            # too slow: drop the buffer; the stream replays from the database from its last id
            self.buffer.clear()
            self.overflowed = True
        else:
            self.buffer.append(ev)

    def tick(self) -> None:
        self.ticks += 1
        self.event.set()


def broker_kind(settings: Settings) -> str:
    kind = settings.feed_broker.strip().lower()
    if kind == "auto":
        return "postgres" if make_url(settings.database_url).get_backend_name() == "postgresql" else "local"
    if kind not in ("local", "postgres"):
        raise ValueError(f"unknown feed_broker {settings.feed_broker!r}: auto, local or postgres")
    return kind


class Hub:
    """Reads new outbox rows once per process and fans them out to this process's subscribers."""

    def __init__(self, factory: sessionmaker[Session], settings: Settings) -> None:
        self.factory = factory
        self.settings = settings
        self.kind = broker_kind(settings)
        self.last_id = 0
        self.subscribers: dict[int, set[Subscriber]] = {}
        self.loop: asyncio.AbstractEventLoop | None = None
        self._wake: asyncio.Event | None = None
        self._start_lock = threading.Lock()
        self._started: asyncio.Future[None] | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self.listening = False
        self.stats = {"fetches": 0, "events": 0, "notifications": 0}

    # -- lifecycle

    async def start(self) -> None:
        """Start reading (once; concurrent callers wait for the first)."""
        loop = asyncio.get_running_loop()
        with self._start_lock:
            first = self._started is None
            if first:
                self._started = loop.create_future()
        assert self._started is not None
        if not first:
            await asyncio.shield(self._started)
            return
        try:
            self.loop = loop
            self._wake = asyncio.Event()
            self.last_id = await asyncio.to_thread(self._max_id)
            self._tasks.append(loop.create_task(self._pump(), name="stopnet-feed-pump"))
            self._tasks.append(loop.create_task(self._ticker(), name="stopnet-feed-ticker"))
            if self.kind == "postgres":
                self._tasks.append(loop.create_task(self._listen(), name="stopnet-feed-listen"))
            _HUBS.add(self)
            self._started.set_result(None)
        except BaseException as e:
            self._started.set_exception(e)
            with self._start_lock:
                self._started = None
            raise

    async def stop(self) -> None:
        for t in self._tasks:
            t.cancel()
        for t in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await t
        self._tasks.clear()
        _HUBS.discard(self)

    def _max_id(self) -> int:
        with self.factory() as s:
            return max_event_id(s)

    # -- subscribers

    def subscribe(self, operation_id: int, accepts: Callable[[FeedEvent], bool]) -> Subscriber:
        """Register a stream; it receives every matching event with ``id > sub.start_id``."""
        sub = Subscriber(operation_id, accepts, self.last_id)
        self.subscribers.setdefault(operation_id, set()).add(sub)
        return sub

    def unsubscribe(self, sub: Subscriber) -> None:
        subs = self.subscribers.get(sub.operation_id)
        if subs is not None:
            subs.discard(sub)
            if not subs:
                del self.subscribers[sub.operation_id]

    @property
    def subscriber_count(self) -> int:
        return sum(len(s) for s in self.subscribers.values())

    # -- waking and reading

    def wake(self) -> None:
        """Ask the hub to read new rows (from the event loop's thread)."""
        if self._wake is not None:
            self._wake.set()

    def wake_threadsafe(self) -> None:
        loop = self.loop
        if loop is None or loop.is_closed():
            return
        with contextlib.suppress(RuntimeError):  # the loop is shutting down
            loop.call_soon_threadsafe(self.wake)

    async def _ticker(self) -> None:
        """One timer for every stream of the process: heartbeats and stream lifetimes are counted in
        ticks, so that an idle stream costs no timer of its own."""
        interval = max(0.05, float(self.settings.feed_heartbeat_seconds))
        while True:
            await asyncio.sleep(interval)
            for subs in list(self.subscribers.values()):
                for sub in list(subs):
                    sub.tick()

    async def _pump(self) -> None:
        assert self._wake is not None
        poll = max(0.05, float(self.settings.feed_poll_seconds))
        last_read = 0.0
        while True:
            woken = False
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(poll):
                    await self._wake.wait()
                woken = True
            # under load, read at most every BATCH_SECONDS: commits arriving meanwhile are read and
            # written to each stream together (one write per stream instead of one per event)
            pause = last_read + BATCH_SECONDS - time.monotonic()
            if woken and pause > 0:
                await asyncio.sleep(pause)
            self._wake.clear()
            last_read = time.monotonic()
            try:
                found = await self._read_new()
                if not found and not woken:
                    await self._check_rewound()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("reading the outbox failed; retrying")
                await asyncio.sleep(min(poll, 1.0))

    async def _read_new(self) -> int:
        found = 0
        while True:
            events = await asyncio.to_thread(self._fetch, self.last_id)
            self.stats["fetches"] += 1
            touched: set[Subscriber] = set()
            for ev in events:
                self._dispatch(ev, touched)
                self.last_id = ev.id
            for sub in touched:
                sub.event.set()
            found += len(events)
            self.stats["events"] += len(events)
            if len(events) < FETCH_BATCH:
                return found

    async def _check_rewound(self) -> None:
        """Ids never go back, except when the outbox is emptied with its sequence reset (a restored or
        truncated database): then start again from its current end."""
        newest = await asyncio.to_thread(self._max_id)
        if newest < self.last_id:
            log.warning(
                "outbox ids went back from %s to %s; following the new sequence", self.last_id, newest
            )
            self.last_id = newest

    def _fetch(self, after: int) -> list[FeedEvent]:
        with self.factory() as s:
            return fetch_events(s, after)

    def _dispatch(self, ev: FeedEvent, touched: set[Subscriber]) -> None:
        for sub in self.subscribers.get(ev.operation_id, ()):
            try:
                ok = sub.accepts(ev)
            except Exception:  # a broken filter must not stop the others: fail closed
                log.exception("feed filter failed on event %s", ev.id)
                ok = False
            if ok:
                sub.push(ev)
                touched.add(sub)

    async def _listen(self) -> None:
        """LISTEN on a dedicated async connection; every notification wakes the pump."""
        import psycopg

        url = make_url(self.settings.database_url)
        conninfo = url.set(drivername="postgresql").render_as_string(hide_password=False)
        backoff = 0.5
        while True:
            try:
                conn = await psycopg.AsyncConnection.connect(conninfo, autocommit=True)
                async with conn:
                    await conn.execute(f"LISTEN {CHANNEL}")
                    self.listening = True
                    backoff = 0.5
                    self.wake()  # catch up with whatever committed while we were not listening
                    async for _note in conn.notifies():
                        self.stats["notifications"] += 1
                        self.wake()
            except asyncio.CancelledError:
                self.listening = False
                raise
            except Exception as e:
                self.listening = False
                log.warning("LISTEN %s failed (%s); polling until it reconnects", CHANNEL, e)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 10.0)


_HUBS: weakref.WeakSet[Hub] = weakref.WeakSet()


def wake_local(_last_id: int | None = None) -> None:
    """Called after a commit that wrote outbox rows: wake every hub of this process."""
    for hub in list(_HUBS):
        hub.wake_threadsafe()


_HUB_LOCK = threading.Lock()


def hub_for(app: Any) -> Hub:
    """The hub of a FastAPI application (created on first use)."""
    hub: Hub | None = getattr(app.state, "feed_hub", None)
    if hub is None:
        with _HUB_LOCK:
            hub = getattr(app.state, "feed_hub", None)
            if hub is None:
                hub = Hub(app.state.sessionmaker, app.state.settings)
                app.state.feed_hub = hub
    return hub
