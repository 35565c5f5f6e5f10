"""Reading uploads within strict limits: each route's file limit, and the request body limits that
an ASGI middleware enforces before any route or multipart parser sees the body (:class:`BodyLimits`)."""

from __future__ import annotations

import html
from typing import Any

from fastapi import Request, UploadFile
from fastapi.responses import HTMLResponse, JSONResponse, Response
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as SQLAlchemyTimeoutError
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import Headers

from stopnet.access.service import resolve_token
from stopnet.config import Settings
from stopnet.core.errors import FieldError, InvalidInput, ServiceError, TooLarge, Unauthenticated
from stopnet.db.models import Organisation, User

from .sessions import COOKIE, read_cookie

ALLOWED_SUFFIXES = (".csv", ".xlsx", ".txt")


async def read_upload(file: UploadFile, limit: int) -> bytes:
    name = (file.filename or "").lower()
    if not name.endswith(ALLOWED_SUFFIXES):
        raise InvalidInput(
            [FieldError("file", "only .csv and .xlsx files are accepted", value=file.filename)]
        )
    chunks = []
    size = 0
    while True:
        chunk = await file.read(1 << 20)
        if not chunk:
            break
        size += len(chunk)
        if size > limit:
            raise TooLarge(f"file larger than the limit of {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


# ------------------------------------------------------------------------------- request body limits

#: Room for the form's other fields and the multipart framing, above the largest file.
FORM_OVERHEAD_BYTES = 1024 * 1024


def body_limit(settings: Settings) -> int:
    """The most bytes of one request body: the largest upload (import or attachment) and its form."""
    return max(settings.max_upload_bytes, settings.attachment_max_bytes) + FORM_OVERHEAD_BYTES


class BodyLimits:
    """Pure ASGI middleware: a request body is read only as far as its limit, uploads only when signed in.

    - A ``multipart/form-data`` request (every upload: imports, attachments, guide and request files,
      and the page forms that carry files) is authenticated **before a byte of its body is read**: without
      a valid session or API token it is answered 401 and the body is never read, parsed or spooled.
    - Every body stops at :func:`body_limit`: a ``Content-Length`` above it is answered 413 at once; a
      chunked body is counted as it arrives and the 413 comes when it passes the limit, so at most the
      limit reaches the multipart parser (and its spooled temporary files).

    Both answers close the connection: the rest of the body is not read. The routes still check their
    own, smaller limits (an attachment, a file of a guide) with the bytes they read.
    """

    def __init__(self, app: Any, settings: Settings) -> None:
        self.app = app
        self.limit = body_limit(settings)

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        api = scope.get("path", "").startswith("/api/")
        length = headers.get("content-length", "")
        if length.isdigit() and int(length) > self.limit:
            await self._refuse(send, TooLarge(self._too_large()), api)
            return
        if headers.get("content-type", "").lower().startswith("multipart/"):
            refusal = await self._authenticate(scope)
            if refusal is not None:
                await self._refuse(send, refusal, api)
                return
        state = {"read": 0, "over": False, "started": False}

        async def limited_receive() -> Any:
            message = await receive()
            if message["type"] == "http.request":
                state["read"] += len(message.get("body", b""))
                if state["read"] > self.limit:
                    state["over"] = True
                    raise TooLarge(self._too_large())
            return message

        async def guarded_send(message: Any) -> None:
            if state["over"]:
                if message["type"] == "http.response.start" and not state["started"]:
                    state["started"] = True
                    await self._refuse(send, TooLarge(self._too_large()), api)
                return  # the app's own answer to the cut body is replaced by the 413
            if message["type"] == "http.response.start":
                state["started"] = True
            await send(message)

        try:
            await self.app(scope, limited_receive, guarded_send)
        except TooLarge:
            if not state["over"]:
                raise
            if not state["started"]:
                state["started"] = True
                await self._refuse(send, TooLarge(self._too_large()), api)

    def _too_large(self) -> str:
        return f"the request is larger than the limit of {self.limit} bytes (files and form together)"

    async def _authenticate(self, scope: Any) -> ServiceError | None:
        """None when the request carries a valid session or API token, else why it is refused. Who
        the sender is only: what it may do on the route (scopes, CSRF) is checked by the route."""
        request = Request(scope)

        def check() -> ServiceError | None:
            session = request.app.state.sessionmaker()
            try:
                if not _identified(request, session):
                    return Unauthenticated(
                        "sign in or send an API token (Authorization: Bearer ...) to upload"
                    )
                return None
            except ServiceError as e:  # a revoked or expired token
                return e
            except (DBAPIError, SQLAlchemyTimeoutError) as e:  # an outage: 503 as the app answers it
                from .app import DB_RETRY_AFTER_SECONDS, database_fault

                cause = database_fault(e)
                if cause is None:
                    raise
                return DatabaseUnavailable(
                    f"the database is unavailable ({cause}); nothing was saved, retry in a few seconds",
                    DB_RETRY_AFTER_SECONDS,
                )
            finally:
                session.rollback()
                session.close()

        return await run_in_threadpool(check)

    @staticmethod
    async def _refuse(send: Any, error: ServiceError, api: bool) -> None:
        extra = dict(getattr(error, "headers", None) or {})
        response: Response
        if api:
            response = JSONResponse(error.to_dict(), status_code=error.status_code, headers=extra)
        else:
            page = f"<!doctype html><title>{error.status_code}</title><h1>Refused</h1><p>{html.escape(error.message)}</p>"
            response = HTMLResponse(page, status_code=error.status_code, headers=extra)
        response.headers["connection"] = "close"
        await response({"type": "http"}, _no_body, send)


class DatabaseUnavailable(ServiceError):
    """The database could not be reached while checking who sends an upload."""

    status_code = 503
    code = "database_unavailable"

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.headers = {"Retry-After": str(retry_after)}


async def _no_body() -> Any:
    return {"type": "http.disconnect"}


def _identified(request: Request, session: Session) -> bool:
    """Whether the request carries a valid API token (else ``Unauthenticated``) or a live session."""
    auth = request.headers.get("authorization", "")
    if auth.lower().startswith("bearer "):
        resolve_token(session, auth[7:].strip())  # not counted here: the route's check counts it
        return True
    settings: Settings = request.app.state.settings
    data = read_cookie(request.app.state.secret, request.cookies.get(COOKIE), settings.session_hours * 3600)
    if data is None:
        return False
    user = session.get(User, data.user_id)
    if user is None or not user.is_active or user.session_epoch != data.epoch:
        return False
    org = session.get(Organisation, user.org_id)
    return org is not None and org.is_active
