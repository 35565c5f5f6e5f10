"""The application factory."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.middleware.base import BaseHTTPMiddleware, RequestResponseEndpoint

from stopnet import __version__
from stopnet.config import Settings, get_settings
from stopnet.core.errors import FieldError, InvalidInput, ServiceError, Unauthenticated
from stopnet.db.engine import make_engine, make_sessionmaker

from .sessions import secret_key
from .templating import templates

log = logging.getLogger("stopnet.web")
STATIC = Path(__file__).parent / "static"

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; font-src 'self'; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)


class SecurityHeaders(BaseHTTPMiddleware):
    def __init__(self, app: Any, secure: bool) -> None:
        super().__init__(app)
        self.secure = secure

    async def dispatch(self, request: Request, call_next: RequestResponseEndpoint) -> Response:
        response = await call_next(request)
        h = response.headers
        h.setdefault("Content-Security-Policy", CSP)
        h.setdefault("X-Content-Type-Options", "nosniff")
        h.setdefault("X-Frame-Options", "DENY")
        h.setdefault("Referrer-Policy", "same-origin")
        h.setdefault("Permissions-Policy", "camera=(), microphone=(), geolocation=()")
        h.setdefault("Cross-Origin-Opener-Policy", "same-origin")
        if self.secure:
            h.setdefault("Strict-Transport-Security", "max-age=31536000; includeSubDomains")
        if request.url.path.startswith("/api/") or "text/html" in h.get("content-type", ""):
            h.setdefault("Cache-Control", "no-store")
        return response


def _wants_html(request: Request) -> bool:
    return not request.url.path.startswith("/api/") and "text/html" in request.headers.get("accept", "")


def _field_name(loc: tuple[Any, ...]) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header")]
    return ".".join(parts) or "request"


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    app = FastAPI(
        title="stopnet",
        version=__version__,
        description="Joint customs operations against counterfeit and falsified goods sold online.",
        openapi_url="/openapi.json",
        docs_url="/api/docs",
        redoc_url=None,
    )
    engine = make_engine(settings.database_url, echo=settings.sql_echo)
    app.state.settings = settings
    app.state.engine = engine
    app.state.sessionmaker = make_sessionmaker(engine)
    app.state.secret = secret_key(settings)
    app.add_middleware(SecurityHeaders, secure=settings.secure_cookies)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.exception_handler(ServiceError)
    async def service_error(request: Request, exc: ServiceError) -> Response:
        if _wants_html(request):
            if isinstance(exc, Unauthenticated):
                return RedirectResponse(f"/login?next={request.url.path}", status_code=303)
            return templates.TemplateResponse(
                request, "error.html", {"error": exc, "principal": None}, status_code=exc.status_code
            )
        return JSONResponse(exc.to_dict(), status_code=exc.status_code)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> Response:
        errors = [
            FieldError(_field_name(tuple(e["loc"])), str(e["msg"]).removeprefix("Value error, "))
            for e in exc.errors()
        ]
        return JSONResponse(InvalidInput(errors, "the request is invalid").to_dict(), status_code=422)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> Response:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        body = {"error": "internal", "detail": "internal error; it has been logged"}
        if _wants_html(request):
            return HTMLResponse("<h1>Internal error</h1><p>It has been logged.</p>", status_code=500)
        return JSONResponse(body, status_code=500)

    from stopnet.access.views import router as access_views
    from stopnet.operations.api import router as operations_api
    from stopnet.reference.api import router as reference_api
    from stopnet.reporting.api import router as reporting_api
    from stopnet.reporting.views import router as reporting_views

    app.include_router(operations_api)
    app.include_router(reporting_api)
    app.include_router(reference_api)
    app.include_router(access_views)
    app.include_router(reporting_views)

    @app.get("/healthz", include_in_schema=False)
    def healthz() -> dict[str, str]:
        return {"status": "ok", "version": __version__}

    return app
