"""The application factory."""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, RedirectResponse, Response
from sqlalchemy.exc import DataError, DBAPIError, OperationalError
from sqlalchemy.exc import TimeoutError as SQLAlchemyTimeoutError
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware.gzip import GZipMiddleware

from stopnet import __version__
from stopnet.config import Settings, get_settings
from stopnet.core.errors import FieldError, InvalidInput, ServiceError, Unauthenticated
from stopnet.core.keys import session_info
from stopnet.core.validation import FieldHint, field_errors
from stopnet.db.engine import make_engine, make_sessionmaker

from . import docs as api_docs
from . import openapi
from .assets import STATIC, static_files
from .sessions import secret_key
from .templating import templates
from .uploads import BodyLimits

log = logging.getLogger("stopnet.web")

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; font-src 'self'; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)


def security_headers(path: str, content_type: bytes, secure: bool) -> list[tuple[bytes, bytes]]:
    """The headers every answer carries (CSP without inline scripts, frame denial, no sniffing, ...)."""
    headers = [
        (b"content-security-policy", CSP.encode()),
        (b"x-content-type-options", b"nosniff"),
        (b"x-frame-options", b"DENY"),
        (b"referrer-policy", b"same-origin"),
        (b"permissions-policy", b"camera=(), microphone=(), geolocation=()"),
        (b"cross-origin-opener-policy", b"same-origin"),
    ]
    if secure:
        headers.append((b"strict-transport-security", b"max-age=31536000; includeSubDomains"))
    if path.startswith("/api/") or b"text/html" in content_type:
        headers.append((b"cache-control", b"no-store"))
    return headers


class SecurityHeaders:
    """Pure ASGI middleware adding :func:`security_headers` to every HTTP answer.

    Not a Starlette ``BaseHTTPMiddleware``: that one copies every chunk of a streaming answer through an
    extra task and memory stream, which multiplied the live feed's delivery latency (docs/benchmarks.md).
    """

    def __init__(self, app: Any, secure: bool = False) -> None:
        self.app = app
        self.secure = secure

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope.get("path", "")

        async def send_with_headers(message: Any) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {k.lower() for k, _ in headers}
                ctype = next((v for k, v in headers if k.lower() == b"content-type"), b"")
                headers += [(k, v) for k, v in security_headers(path, ctype, self.secure) if k not in present]
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)


def _wants_html(request: Request) -> bool:
    return not request.url.path.startswith("/api/") and "text/html" in request.headers.get("accept", "")


async def _html_invalid(request: Request, error: InvalidInput) -> Response:
    """The error page for a browser's request that could not be read: each problem in words."""
    return templates.TemplateResponse(
        request,
        "error.html",
        {"error": error, "principal": await _principal_or_none(request), "back": _same_site_referer(request)},
        status_code=422,
    )


def _same_site_referer(request: Request) -> str:
    """The page a refused request came from, when it is one of this site's (for a "back" link)."""
    referer = request.headers.get("referer", "")
    base = str(request.base_url)
    return referer.removeprefix(base.rstrip("/")) if referer.startswith(base) else ""


def _field_hints() -> dict[str, FieldHint]:
    """The labels, expectations and examples of the request fields, by field name."""
    from stopnet.reporting.schemas import FIELD_HINTS

    return FIELD_HINTS


def _field_name(loc: tuple[Any, ...]) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header")]
    return ".".join(parts) or "request"


DB_RETRY_AFTER_SECONDS = 2
OUT_OF_RANGE = {"22001", "22003", "22008"}  # SQLSTATE: string too long, number or date out of range


def database_fault(exc: BaseException) -> str | None:
    """Why the database could not answer, when it is a transient outage a retry can get past; else None.

    A lost or refused connection (PostgreSQL restarted, network cut), a server shutting down, a busy
    SQLite file or an exhausted connection pool are retryable: the transaction was rolled back, so the
    client can send the same request again (with the same ``Idempotency-Key`` for creates).
    """
    if isinstance(exc, SQLAlchemyTimeoutError):
        return "connection pool exhausted"
    if not isinstance(exc, DBAPIError):
        return None
    if exc.connection_invalidated:
        return "connection to the database lost"
    if isinstance(exc, OperationalError):
        message = str(exc.orig).lower()
        if "locked" in message or "busy" in message:
            return "database busy"
        if "no such" in message or "syntax error" in message:  # SQLite reports schema errors this way
            return None
        return "database unreachable"
    return None


def _routers() -> list[Any]:
    """Each domain's API and page routers; imported here, when an application is made."""
    from stopnet.access import admin_views as access_admin_views
    from stopnet.access import api as access_api
    from stopnet.access import views as access_views
    from stopnet.analytics import api as analytics_api
    from stopnet.analytics import views as analytics_views
    from stopnet.audit import api as audit_api
    from stopnet.audit import views as audit_views
    from stopnet.maintenance import api as data_protection_api
    from stopnet.operations import api as operations_api
    from stopnet.operations import views as operations_views
    from stopnet.reference import api as reference_api
    from stopnet.reporting import api as reporting_api
    from stopnet.reporting import views as reporting_views
    from stopnet.reports import api as reports_api
    from stopnet.reports import views as reports_views
    from stopnet.rightsholders import api as rightsholders_api
    from stopnet.rightsholders import views as rightsholders_views
    from stopnet.sharing import api as sharing_api
    from stopnet.sharing import views as sharing_views
    from stopnet.targeting import api as targeting_api
    from stopnet.targeting import views as targeting_views

    modules = [
        operations_api,
        data_protection_api,
        reporting_api,
        reference_api,
        access_api,
        audit_api,
        analytics_api,
        sharing_api,
        rightsholders_api,
        access_views,
        access_admin_views,
        audit_views,
        operations_views,
        reporting_views,
        analytics_views,
        sharing_views,
        rightsholders_views,
        reports_api,
        reports_views,
        targeting_api,
        targeting_views,
    ]
    return [m.router for m in modules]


async def _principal_or_none(request: Request) -> Any:
    """The signed-in principal for an error page's navigation, or None; never raises."""
    from .deps import optional_principal

    def lookup() -> Any:
        session = request.app.state.sessionmaker()
        try:
            return optional_principal(request, session)
        finally:
            session.close()

    try:
        return await run_in_threadpool(lookup)
    except Exception:
        return None


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    app = FastAPI(
        title="stopnet",
        version=__version__,
        description="Joint customs operations against counterfeit and falsified goods sold online.",
        openapi_url="/openapi.json",
        docs_url=None,  # served by web/docs.py from this site's files: /docs and /redoc
        redoc_url=None,
    )
    engine = make_engine(settings.database_url, echo=settings.sql_echo)
    app.state.settings = settings
    app.state.engine = engine
    app.state.sessionmaker = make_sessionmaker(engine, info=session_info(settings))
    app.state.secret = secret_key(settings)
    app.add_middleware(BodyLimits, settings=settings)  # inside SecurityHeaders: its refusals get them too
    app.add_middleware(SecurityHeaders, secure=settings.secure_cookies)
    # outermost: compresses pages, JSON and static files; never the live feed (text/event-stream is
    # excluded by Starlette, so each event still goes out as it is sent)
    app.add_middleware(GZipMiddleware, minimum_size=1024, compresslevel=6)
    app.mount("/static", static_files, name="static")

    @app.exception_handler(ServiceError)
    async def service_error(request: Request, exc: ServiceError) -> Response:
        if _wants_html(request):
            if isinstance(exc, Unauthenticated):
                target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
                return RedirectResponse(f"/login?next={quote(target, safe='/')}", status_code=303)
            return templates.TemplateResponse(
                request,
                "error.html",
                {"error": exc, "principal": await _principal_or_none(request)},
                status_code=exc.status_code,
                headers=getattr(exc, "headers", None),
            )
        return JSONResponse(exc.to_dict(), status_code=exc.status_code, headers=getattr(exc, "headers", None))

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> Response:
        errors = field_errors(exc.errors(), _field_hints(), name=_field_name)
        if _wants_html(request):  # a person with a browser: the site's page, in words, never JSON
            return await _html_invalid(request, InvalidInput(errors, "the form could not be read"))
        return JSONResponse(InvalidInput(errors, "the request is invalid").to_dict(), status_code=422)

    @app.exception_handler(OverflowError)
    @app.exception_handler(DataError)
    async def value_out_of_range(request: Request, exc: Exception) -> Response:
        # A value of the request beyond what the database column holds: an id past 2**31 - 1 on
        # PostgreSQL (SQLSTATE 22003), past 2**63 - 1 on SQLite (its driver raises OverflowError), a
        # text too long (22001) or a date out of range (22008). The input is at fault, not the server.
        if isinstance(exc, DataError) and getattr(exc.orig, "sqlstate", None) not in OUT_OF_RANGE:
            raise exc  # another data error: a 500 like any other
        log.warning("value out of range on %s %s: %s", request.method, request.url.path, exc)
        message = "a number or date given is larger than what can be stored; check what was typed"
        error = InvalidInput([FieldError("request", message, code="out_of_range")], "the request is invalid")
        if _wants_html(request):
            return await _html_invalid(request, error)
        return JSONResponse(error.to_dict(), status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        # Starlette's own refusals (unknown path, wrong method, a body that is not JSON) in the body
        # shape of every other error: {"error", "detail"}
        code = {400: "bad_request", 404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "error")
        if _wants_html(request):  # a person with a browser gets the site's error page
            error = ServiceError(str(exc.detail))
            error.status_code, error.code = exc.status_code, code
            return templates.TemplateResponse(
                request,
                "error.html",
                {"error": error, "principal": await _principal_or_none(request)},
                status_code=exc.status_code,
                headers=exc.headers,
            )
        return JSONResponse({"error": code, "detail": str(exc.detail)}, exc.status_code, exc.headers)

    @app.exception_handler(DBAPIError)
    @app.exception_handler(SQLAlchemyTimeoutError)
    async def database_unavailable(request: Request, exc: Exception) -> Response:
        cause = database_fault(exc)
        if cause is None:  # a programming or data error, not an outage: a 500 like any other
            raise exc
        log.warning("database unavailable on %s %s (%s): %s", request.method, request.url.path, cause, exc)
        detail = f"the database is unavailable ({cause}); nothing was saved, retry in a few seconds"
        headers = {"Retry-After": str(DB_RETRY_AFTER_SECONDS)}
        if _wants_html(request):
            return HTMLResponse(
                f"<h1>Service unavailable</h1><p>{detail}.</p>", status_code=503, headers=headers
            )
        body = {"error": "database_unavailable", "cause": cause, "detail": detail}
        return JSONResponse(body, status_code=503, headers=headers)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> Response:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        body = {"error": "internal", "detail": "internal error; it has been logged"}
        # answered by Starlette's ServerErrorMiddleware, outside SecurityHeaders: set the headers here
        response: Response
        if _wants_html(request):
            response = HTMLResponse("<h1>Internal error</h1><p>It has been logged.</p>", status_code=500)
        else:
            response = JSONResponse(body, status_code=500)
        ctype = response.headers.get("content-type", "").encode()
        for k, v in security_headers(request.url.path, ctype, settings.secure_cookies):
            response.headers[k.decode()] = v.decode()
        return response

    for router in _routers():
        app.include_router(router)
    app.include_router(api_docs.router)
    openapi.install(app)  # document the error answers every route gives
    from .deps import PUBLIC

    @app.get("/favicon.ico", include_in_schema=False, dependencies=[PUBLIC])
    def favicon() -> FileResponse:
        return FileResponse(STATIC / "favicon.ico", headers={"Cache-Control": "public, max-age=86400"})

    @app.get("/healthz", include_in_schema=False, dependencies=[PUBLIC])
    def healthz() -> dict[str, str]:
        return {"status": "ok", "version": __version__}

    return app
