"""REST API of sharing (``/api/v1``): the live feed (SSE), alerts, threads, messages and attachments."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Header, Query, Request, UploadFile
from fastapi.responses import JSONResponse, Response, StreamingResponse
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile as StarletteUpload

from stopnet.access import policy
from stopnet.access.principal import Principal
from stopnet.core.errors import TooLarge
from stopnet.core.pagination import PagingDep
from stopnet.db.models import Operation
from stopnet.operations.service import get_operation
from stopnet.web.deps import DB, READ, WRITE, AppSettings, CurrentPrincipal

from . import broker, feed, service
from .schemas import (
    AlertCreate,
    AlertOut,
    AlertPage,
    AttachmentOut,
    MessageCreate,
    MessageOut,
    ReadMark,
    ReadStateOut,
    ThreadCreate,
    ThreadDetail,
    ThreadOut,
)

router = APIRouter(prefix="/api/v1", tags=["sharing"])


# ------------------------------------------------------------------------------------------ live feed


def _authorise(request: Request, code: str) -> tuple[Principal, Operation]:
    """Who asks, and the operation if it may follow it (401, 403, 404 before the answer starts), with a
    short-lived session (none is held by the stream)."""
    from stopnet.web.deps import optional_principal, require_principal

    with request.app.state.sessionmaker() as session:  # reads only (a token's last use commits itself)
        principal = require_principal(optional_principal(request, session))
        policy.require_read(principal)
        return principal, get_operation(session, principal, code)


def _viewer(request: Request, principal: Principal, op: Operation) -> feed.Viewer:
    """What the principal may see of the operation's events, with a short-lived session."""
    with request.app.state.sessionmaker() as session:
        return feed.viewer_for(session, principal, op)


@router.get(
    "/operations/{code}/feed",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {}}, "description": "Server-Sent Events"}},
    dependencies=[READ],
)
async def live_feed(
    code: str,
    request: Request,
    commodity_group: Annotated[str | None, Query(max_length=16)] = None,
    region: Annotated[str | None, Query(max_length=8)] = None,
    country: Annotated[str | None, Query(max_length=2)] = None,
    channel: Annotated[str | None, Query(max_length=24)] = None,
    types: Annotated[str | None, Query(max_length=40, description="case,alert,message")] = None,
    last_event_id: Annotated[int | None, Query(ge=0, description="Replay from after this id.")] = None,
    last_event_id_header: Annotated[str | None, Header(alias="Last-Event-ID")] = None,
) -> StreamingResponse:
    """Server-Sent Events of the operation: cases and seizures reported, corrected, submitted and
    validated, alerts and their acknowledgements, messages, each only to those who may see it.

    Reconnect with ``Last-Event-ID`` (browsers do) to receive what was missed, once each.
    """
    filters = feed.FeedFilters.parse(commodity_group, region, country, channel, types)
    principal, op = await run_in_threadpool(_authorise, request, code)
    hub = broker.hub_for(request.app)
    await hub.start()
    settings = request.app.state.settings

    async def accepts() -> Any:
        viewer = await run_in_threadpool(_viewer, request, principal, op)
        return viewer.accepts(filters)

    stream = feed.event_stream(
        hub,
        op.id,
        accepts,
        feed.parse_cursor(last_event_id_header, last_event_id),
        heartbeat=settings.feed_heartbeat_seconds,
        lifetime=settings.feed_stream_seconds,
    )
    return StreamingResponse(
        stream,
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )


# ------------------------------------------------------------------------------------------ attachments


async def read_limited(file: StarletteUpload, limit: int) -> bytes:
    chunks, size = [], 0
    while True:
        chunk = await file.read(1 << 20)
        if not chunk:
            break
        size += len(chunk)
        if size > limit:
            raise TooLarge(f"attachment larger than the limit of {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def check_length(request: Request, limit: int, files: int = 1) -> None:
    """Refuse before reading when the request is obviously too large."""
    length = request.headers.get("content-length")
    if length and length.isdigit() and int(length) > limit * max(1, files) + 1024 * 1024:
        raise TooLarge(f"attachment larger than the limit of {limit} bytes")


@router.post(
    "/operations/{code}/attachments", response_model=AttachmentOut, status_code=201, dependencies=[WRITE]
)
async def upload_attachment(
    code: str, file: UploadFile, request: Request, settings: AppSettings
) -> JSONResponse:
    """Upload a file (size and type limited); then name its id in an alert's or a message's ``attachments``."""
    check_length(request, settings.attachment_max_bytes)
    data = await read_limited(file, settings.attachment_max_bytes)

    def store() -> AttachmentOut:
        from stopnet.web.deps import optional_principal, require_principal

        session = request.app.state.sessionmaker()
        try:
            principal = require_principal(optional_principal(request, session))
            op = get_operation(session, principal, code)
            att = service.store_attachment(
                session, principal, op, file.filename, file.content_type, data, settings
            )
            out = service.attachment_out(att)
            session.commit()
            return out
        except BaseException:
            session.rollback()
            raise
        finally:
            session.close()

    out = await run_in_threadpool(store)
    return JSONResponse(out.model_dump(mode="json"), status_code=201, headers={"Location": out.url})


def attachment_response(att: Any, data: bytes) -> Response:
    import base64
    import hashlib

    digest = base64.b64encode(hashlib.sha256(data).digest()).decode()
    name = quote(att.filename)
    return Response(
        data,
        media_type=att.content_type,
        headers={
            "Content-Disposition": f"attachment; filename*=UTF-8''{name}",
            "Repr-Digest": f"sha-256=:{digest}:",
            "X-Checksum-SHA256": att.sha256,
            "ETag": f'"{att.sha256}"',
            "Cache-Control": "private, no-store",
        },
    )


@router.get("/attachments/{attachment_id}", response_class=Response, dependencies=[READ])
def download_attachment(
    attachment_id: int, db: DB, principal: CurrentPrincipal, settings: AppSettings
) -> Response:
    """The file, verified against its SHA-256 (``X-Checksum-SHA256``, ``Repr-Digest``)."""
    att, data = service.read_attachment(db, principal, attachment_id, settings)
    return attachment_response(att, data)


# ------------------------------------------------------------------------------------------ alerts


@router.get("/operations/{code}/alerts", response_model=AlertPage, dependencies=[READ])
def list_alerts(
    code: str,
    paging: PagingDep,
    db: DB,
    principal: CurrentPrincipal,
    unacknowledged: bool = False,
    sent: bool = False,
) -> AlertPage:
    """Alerts the caller may read; ``unacknowledged``: its organisation's to acknowledge; ``sent``: its own."""
    op = get_operation(db, principal, code)
    items, total = service.list_alerts(
        db,
        principal,
        op,
        unacknowledged=unacknowledged,
        sent=sent,
        page=paging.page,
        page_size=paging.page_size,
    )
    return AlertPage(items=items, total=total, page=paging.page, page_size=paging.page_size)


@router.post("/operations/{code}/alerts", response_model=AlertOut, status_code=201, dependencies=[WRITE])
def publish_alert(
    code: str, body: AlertCreate, db: DB, principal: CurrentPrincipal, settings: AppSettings
) -> JSONResponse:
    """Publish an alert (coordinators and RILO analysts) to the operation, a region or administrations."""
    op = get_operation(db, principal, code)
    alert = service.publish_alert(db, principal, op, body, settings)
    out = service.alerts_out(db, principal, op, [alert])[0]
    db.commit()
    return JSONResponse(
        out.model_dump(mode="json"), status_code=201, headers={"Location": f"/api/v1/alerts/{alert.id}"}
    )


@router.get("/alerts/{alert_id}", response_model=AlertOut, dependencies=[READ])
def get_alert(alert_id: int, db: DB, principal: CurrentPrincipal) -> AlertOut:
    return service.get_alert(db, principal, alert_id)


@router.post("/alerts/{alert_id}/ack", response_model=AlertOut, dependencies=[WRITE])
def acknowledge_alert(alert_id: int, db: DB, principal: CurrentPrincipal) -> AlertOut:
    """Acknowledge receipt for the caller's organisation (idempotent)."""
    out = service.acknowledge_alert(db, principal, alert_id)
    db.commit()
    return out


# ------------------------------------------------------------------------------------------ threads


@router.get("/operations/{code}/threads", response_model=list[ThreadOut], dependencies=[READ])
def list_threads(code: str, db: DB, principal: CurrentPrincipal) -> list[ThreadOut]:
    """Operation and case conversations the caller may read, with unread counts."""
    op = get_operation(db, principal, code)
    return service.list_threads(db, principal, op)


@router.post("/operations/{code}/threads", response_model=ThreadDetail, status_code=201, dependencies=[WRITE])
def create_thread(
    code: str, body: ThreadCreate, db: DB, principal: CurrentPrincipal, settings: AppSettings
) -> JSONResponse:
    op = get_operation(db, principal, code)
    thread = service.create_thread(db, principal, op, body, settings)
    out = service.thread_detail(db, principal, thread.id)
    db.commit()
    return JSONResponse(
        out.model_dump(mode="json"), status_code=201, headers={"Location": f"/api/v1/threads/{thread.id}"}
    )


@router.get("/threads/{thread_id}", response_model=ThreadDetail, dependencies=[READ])
def get_thread(
    thread_id: int, db: DB, principal: CurrentPrincipal, limit: Annotated[int, Query(ge=1, le=1000)] = 200
) -> ThreadDetail:
    return service.thread_detail(db, principal, thread_id, limit=limit)


@router.post(
    "/threads/{thread_id}/messages", response_model=MessageOut, status_code=201, dependencies=[WRITE]
)
def post_message(
    thread_id: int, body: MessageCreate, db: DB, principal: CurrentPrincipal, settings: AppSettings
) -> JSONResponse:
    """Post a message; ``@name`` mentions (e-mail local part, or the whole address) notify by e-mail."""
    msg = service.post_message(db, principal, thread_id, body, settings)
    out = _message_out(db, principal, msg.thread_id, msg.id)
    db.commit()
    return JSONResponse(out.model_dump(mode="json"), status_code=201)


@router.post("/threads/{thread_id}/read", response_model=ReadStateOut, dependencies=[READ])
def mark_read(thread_id: int, body: ReadMark, db: DB, principal: CurrentPrincipal) -> ReadStateOut:
    out = service.mark_read(db, principal, thread_id, body.last_read_message_id)
    db.commit()
    return out


@router.get("/cases/{case_id}/thread", response_model=ThreadDetail, dependencies=[READ])
def get_case_thread(case_id: int, db: DB, principal: CurrentPrincipal) -> ThreadDetail:
    """The conversation of a case (404 until its first message, or if the case is not visible)."""
    thread = service.case_thread(db, principal, case_id)
    if thread is None:
        from stopnet.core.errors import NotFound

        raise NotFound(f"case {case_id} has no conversation yet")
    return service.thread_detail(db, principal, thread.id)


@router.post(
    "/cases/{case_id}/thread/messages", response_model=MessageOut, status_code=201, dependencies=[WRITE]
)
def post_case_message(
    case_id: int, body: MessageCreate, db: DB, principal: CurrentPrincipal, settings: AppSettings
) -> JSONResponse:
    """Post to a case's conversation (opened by the first message); only those who may read the case see it."""
    msg = service.post_case_message(db, principal, case_id, body, settings)
    out = _message_out(db, principal, msg.thread_id, msg.id)
    db.commit()
    return JSONResponse(out.model_dump(mode="json"), status_code=201)


def _message_out(db: DB, principal: CurrentPrincipal, thread_id: int, message_id: int) -> MessageOut:
    detail = service.thread_detail(db, principal, thread_id, limit=50)
    return next(m for m in detail.messages if m.id == message_id)
