"""HTML pages of sharing (each with its JSON twin): live activity, alerts, conversations."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response
from pydantic import ValidationError
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from stopnet.access.principal import Principal
from stopnet.core.errors import FieldError, InvalidInput, ServiceError
from stopnet.core.validation import field_errors
from stopnet.db.models import Operation
from stopnet.db.models.sharing import AlertKind, AlertScope
from stopnet.operations import service as operations
from stopnet.reference import get_reference
from stopnet.web.deps import DB, READ, SESSION_ONLY, CurrentPrincipal
from stopnet.web.pages import render, require_csrf

from . import feed, service
from .api import check_length, read_limited
from .schemas import MAX_ATTACHMENTS, AlertCreate, MessageCreate, ThreadCreate

router = APIRouter(include_in_schema=False)

KIND_LABELS = {
    AlertKind.CONCEALMENT.value: "New concealment method",
    AlertKind.FALSIFIED_MEDICINE.value: "Dangerous falsified medicine",
    AlertKind.SHIPPER.value: "Shipper to watch",
    AlertKind.OTHER.value: "Other",
}
FILTERS = ("commodity_group", "region", "country", "channel")
Files = list[tuple[str | None, str | None, bytes]]


def _errors(exc: ServiceError | ValidationError) -> list[FieldError]:
    if isinstance(exc, InvalidInput):
        return exc.errors
    if isinstance(exc, ValidationError):
        return field_errors(exc)
    return [FieldError("form", exc.message)]


# ------------------------------------------------------------------------------------------ live


@router.get("/operations/{code}/live", dependencies=[READ])
def live_page(code: str, request: Request, db: DB, principal: CurrentPrincipal) -> Response:
    """The operation's activity as it happens: cases, seizures, alerts and messages (live.js)."""
    op = operations.get_operation(db, principal, code)
    values = {k: request.query_params.get(k, "").strip()[:24] for k in FILTERS}
    filters = feed.FeedFilters.parse(**{k: v or None for k, v in values.items()})
    cursor, events = feed.recent_events(db, principal, op, filters, limit=40)
    ctx = {
        "op": op,
        "events": events,
        "cursor": cursor,
        "fv": values,
        "ref": get_reference(),
        "feed_query": urlencode({k: v for k, v in values.items() if v}),
        "unread": service.unread_total(db, principal, op),
    }
    return render(
        request, "sharing/live.html", ctx, json={"cursor": cursor, "events": events}, principal=principal
    )


# ------------------------------------------------------------------------------------------ alerts


def _alerts_context(db: Session, principal: Principal, op: Operation, request: Request) -> dict[str, Any]:
    unack = request.query_params.get("unacknowledged") in ("1", "true", "on")
    sent = request.query_params.get("sent") in ("1", "true", "on")
    items, total = service.list_alerts(db, principal, op, unacknowledged=unack, sent=sent, page_size=200)
    can_publish = True
    try:
        service.require_alert_publisher(db, principal, op.id)
    except ServiceError:
        can_publish = False
    members = []
    if can_publish:
        detail = operations.to_detail(db, op)
        members = [
            p
            for p in detail.participants
            if p.role.value != "rights_holder" and p.org_code != principal.org_code
        ]
    return {
        "op": op,
        "alerts": items,
        "total": total,
        "unacknowledged": unack,
        "sent": sent,
        "can_publish": can_publish,
        "members": members,
        "kinds": KIND_LABELS,
        "scopes": [s.value for s in AlertScope],
        "ref": get_reference(),
        "errors": [],
        "form": {},
    }


@router.get("/operations/{code}/alerts", dependencies=[READ])
def alerts_page(code: str, request: Request, db: DB, principal: CurrentPrincipal) -> Response:
    op = operations.get_operation(db, principal, code)
    ctx = _alerts_context(db, principal, op, request)
    return render(request, "sharing/alerts.html", ctx, json=ctx["alerts"], principal=principal)


async def _files(request: Request, form: Any, limit: int) -> Files:
    files = [f for f in form.getlist("files") if isinstance(f, UploadFile) and f.filename]
    if len(files) > MAX_ATTACHMENTS:
        raise InvalidInput([FieldError("files", f"at most {MAX_ATTACHMENTS} files")])
    return [(f.filename, f.content_type, await read_limited(f, limit)) for f in files]


def _in_session(request: Request, work: Callable[[Session], Any]) -> Any:
    session = request.app.state.sessionmaker()
    try:
        result = work(session)
        session.commit()
        return result
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


def _store_files(
    session: Session, principal: Principal, op: Operation, request: Request, files: Files
) -> list[int]:
    settings = request.app.state.settings
    return [service.store_attachment(session, principal, op, n, t, d, settings).id for n, t, d in files]


@router.post("/operations/{code}/alerts", dependencies=[SESSION_ONLY])
async def publish_alert_form(code: str, request: Request, principal: CurrentPrincipal) -> Response:
    settings = request.app.state.settings
    check_length(request, settings.attachment_max_bytes, MAX_ATTACHMENTS)
    form = await request.form(max_files=MAX_ATTACHMENTS + 1, max_fields=1000)
    require_csrf(request, str(form.get("csrf_token") or ""))
    values = {
        "kind": str(form.get("kind") or ""),
        "title": str(form.get("title") or ""),
        "body": str(form.get("body") or ""),
        "scope": str(form.get("scope") or "operation"),
        "region": str(form.get("region") or "") or None,
        "administrations": [str(v) for v in form.getlist("administrations") if str(v).strip()],
    }
    early: ServiceError | None = None
    try:
        files = await _files(request, form, settings.attachment_max_bytes)
    except ServiceError as e:
        files, early = [], e

    def work(session: Session) -> Any:
        op = operations.get_operation(session, principal, code)
        try:
            if early is not None:
                raise early
            data = AlertCreate.model_validate(values)
            ids = _store_files(session, principal, op, request, files)
            data = data.model_copy(update={"attachments": ids})
            return service.publish_alert(session, principal, op, data, settings).id
        except (InvalidInput, ValidationError) as e:
            session.rollback()
            ctx = _alerts_context(session, principal, op, request)
            ctx.update(errors=_errors(e), form=values)
            return ctx

    result = await run_in_threadpool(_in_session, request, work)
    if isinstance(result, dict):
        return render(request, "sharing/alerts.html", result, principal=principal, status_code=422)
    return RedirectResponse(f"/alerts/{result}", status_code=303)


@router.get("/alerts/{alert_id}", dependencies=[READ])
def alert_page(alert_id: int, request: Request, db: DB, principal: CurrentPrincipal) -> Response:
    alert = service.get_alert(db, principal, alert_id)
    ctx = {"alert": alert, "kinds": KIND_LABELS}
    return render(request, "sharing/alert.html", ctx, json=alert, principal=principal)


@router.post("/alerts/{alert_id}/ack", dependencies=[SESSION_ONLY])
async def acknowledge_form(alert_id: int, request: Request, principal: CurrentPrincipal) -> Response:
    form = await request.form(max_files=0, max_fields=10)
    require_csrf(request, str(form.get("csrf_token") or ""))
    await run_in_threadpool(_in_session, request, lambda s: service.acknowledge_alert(s, principal, alert_id))
    return RedirectResponse(f"/alerts/{alert_id}", status_code=303)


# ------------------------------------------------------------------------------------------ threads


@router.get("/operations/{code}/threads", dependencies=[READ])
def threads_page(code: str, request: Request, db: DB, principal: CurrentPrincipal) -> Response:
    op = operations.get_operation(db, principal, code)
    threads = service.list_threads(db, principal, op)
    ctx = {
        "op": op,
        "threads": threads,
        "can_post": service.in_operation(db, principal, op.id),
        "errors": [],
        "form": {},
    }
    return render(request, "sharing/threads.html", ctx, json=threads, principal=principal)


@router.post("/operations/{code}/threads", dependencies=[SESSION_ONLY])
async def create_thread_form(code: str, request: Request, principal: CurrentPrincipal) -> Response:
    settings = request.app.state.settings
    check_length(request, settings.attachment_max_bytes, MAX_ATTACHMENTS)
    form = await request.form(max_files=MAX_ATTACHMENTS + 1, max_fields=100)
    require_csrf(request, str(form.get("csrf_token") or ""))
    values = {"title": str(form.get("title") or ""), "body": str(form.get("body") or "")}
    early: ServiceError | None = None
    try:
        files = await _files(request, form, settings.attachment_max_bytes)
    except ServiceError as e:
        files, early = [], e

    def work(session: Session) -> Any:
        op = operations.get_operation(session, principal, code)
        try:
            if early is not None:
                raise early
            data = ThreadCreate.model_validate(values)
            data = data.model_copy(
                update={"attachments": _store_files(session, principal, op, request, files)}
            )
            return service.create_thread(session, principal, op, data, settings).id
        except (InvalidInput, ValidationError) as e:
            session.rollback()
            threads = service.list_threads(session, principal, op)
            return {"op": op, "threads": threads, "can_post": True, "errors": _errors(e), "form": values}

    result = await run_in_threadpool(_in_session, request, work)
    if isinstance(result, dict):
        return render(request, "sharing/threads.html", result, principal=principal, status_code=422)
    return RedirectResponse(f"/threads/{result}", status_code=303)


def _thread_context(db: Session, principal: Principal, thread_id: int) -> dict[str, Any]:
    detail = service.thread_detail(db, principal, thread_id)
    first_unread = next((m.id for m in detail.messages if m.id > detail.last_read_message_id), None)
    return {
        "thread": detail,
        "first_unread": first_unread,
        # the page marks what it shows read by a POST once loaded (htmx), never by its GET
        "mark_read": principal.user_id is not None and first_unread is not None,
        "errors": [],
        "form": {},
        "post_url": f"/threads/{thread_id}/messages",
    }


@router.get("/threads/{thread_id}", dependencies=[READ])
def thread_page(thread_id: int, request: Request, db: DB, principal: CurrentPrincipal) -> Response:
    """The conversation; a GET changes nothing, the page then posts its read mark (below)."""
    ctx = _thread_context(db, principal, thread_id)
    return render(request, "sharing/thread.html", ctx, json=ctx["thread"], principal=principal)


@router.post("/threads/{thread_id}/read", dependencies=[SESSION_ONLY])
def mark_thread_read(
    thread_id: int,
    request: Request,
    db: DB,
    principal: CurrentPrincipal,
    csrf_token: Annotated[str, Form(max_length=100)] = "",
    upto: Annotated[int | None, Form(ge=0)] = None,
) -> Response:
    """Mark the thread read up to the last message the page showed (sent by htmx once it is loaded;
    without JavaScript, by the page's "Mark as read" button)."""
    require_csrf(request, csrf_token)
    service.mark_read(db, principal, thread_id, upto)
    db.commit()
    if request.headers.get("hx-request"):
        return Response(status_code=204)
    return RedirectResponse(f"/threads/{thread_id}", status_code=303)


async def _post_form(
    request: Request,
    post: Callable[[Session, MessageCreate, Files], str],
    on_error: Callable[[Session], dict[str, Any]],
) -> Response:
    settings = request.app.state.settings
    check_length(request, settings.attachment_max_bytes, MAX_ATTACHMENTS)
    form = await request.form(max_files=MAX_ATTACHMENTS + 1, max_fields=100)
    require_csrf(request, str(form.get("csrf_token") or ""))
    values = {"body": str(form.get("body") or "")}
    early: ServiceError | None = None
    try:
        files = await _files(request, form, settings.attachment_max_bytes)
    except ServiceError as e:
        files, early = [], e

    def work(session: Session) -> Any:
        try:
            if early is not None:
                raise early
            return post(session, MessageCreate.model_validate(values), files)
        except (InvalidInput, ValidationError) as e:
            session.rollback()
            ctx = on_error(session)
            ctx.update(errors=_errors(e), form=values)
            return ctx

    result = await run_in_threadpool(_in_session, request, work)
    if isinstance(result, dict):
        return render(
            request, "sharing/thread.html", result, principal=request.state.principal, status_code=422
        )
    return RedirectResponse(result, status_code=303)


@router.post("/threads/{thread_id}/messages", dependencies=[SESSION_ONLY])
async def post_message_form(thread_id: int, request: Request, principal: CurrentPrincipal) -> Response:
    settings = request.app.state.settings
    request.state.principal = principal

    def post(session: Session, data: MessageCreate, files: Files) -> str:
        op = service.thread_operation(session, principal, thread_id)
        data = data.model_copy(update={"attachments": _store_files(session, principal, op, request, files)})
        msg = service.post_message(session, principal, thread_id, data, settings)
        return f"/threads/{thread_id}#m{msg.id}"

    return await _post_form(request, post, lambda s: _thread_context(s, principal, thread_id))


@router.get("/cases/{case_id}/thread", dependencies=[READ])
def case_thread_page(case_id: int, request: Request, db: DB, principal: CurrentPrincipal) -> Response:
    """The case's conversation (an empty one with its form before the first message)."""
    thread = service.case_thread(db, principal, case_id)
    if thread is not None:
        return RedirectResponse(f"/threads/{thread.id}", status_code=303)
    ctx = _empty_case_thread(db, principal, case_id)
    return render(request, "sharing/thread.html", ctx, json=None, principal=principal)


def _empty_case_thread(db: Session, principal: Principal, case_id: int) -> dict[str, Any]:
    case = service.visible_case(db, principal, case_id)
    op = db.get_one(Operation, case.operation_id)
    return {
        "thread": None,
        "case": {"id": case.id, "reference": case.reference, "operation": op.code},
        "first_unread": None,
        "errors": [],
        "form": {},
        "post_url": f"/cases/{case_id}/thread/messages",
    }


@router.post("/cases/{case_id}/thread/messages", dependencies=[SESSION_ONLY])
async def post_case_message_form(case_id: int, request: Request, principal: CurrentPrincipal) -> Response:
    settings = request.app.state.settings

    request.state.principal = principal

    def post(session: Session, data: MessageCreate, files: Files) -> str:
        case = service.visible_case(session, principal, case_id)
        op = session.get_one(Operation, case.operation_id)
        data = data.model_copy(update={"attachments": _store_files(session, principal, op, request, files)})
        msg = service.post_case_message(session, principal, case_id, data, settings)
        return f"/threads/{msg.thread_id}#m{msg.id}"

    def on_error(session: Session) -> dict[str, Any]:
        thread = service.case_thread(session, principal, case_id)
        if thread is not None:
            ctx = _thread_context(session, principal, thread.id)
            ctx["post_url"] = f"/cases/{case_id}/thread/messages"
            return ctx
        return _empty_case_thread(session, principal, case_id)

    return await _post_form(request, post, on_error)
