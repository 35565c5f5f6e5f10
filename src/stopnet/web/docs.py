"""The API reference pages, served from this site only: Swagger UI at ``/docs`` and ReDoc at ``/redoc``.

FastAPI's own pages load their scripts from a CDN, which the site's CSP (and a closed network) blocks.
Here Swagger UI comes from the ``fastapi-swagger`` package and ReDoc from ``static/vendor`` (version and
licence in ``redoc-LICENSE.txt``), both under hashed ``/static`` URLs, started by ``static/apidocs.js``
(no inline script). ReDoc styles itself with ``<style>`` elements it writes at run time, so ``/redoc``
alone allows inline styles (never inline scripts). ``/api/docs``, the old address, redirects to ``/docs``.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from .deps import MaybePrincipal
from .pages import render

router = APIRouter(include_in_schema=False)

#: the site's CSP (web/app.py) with inline styles allowed, for ReDoc's run-time <style> elements
REDOC_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; "
    "font-src 'self'; connect-src 'self'; worker-src 'self' blob:; object-src 'none'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'"
)


@router.get("/docs")
def swagger_ui(request: Request, principal: MaybePrincipal) -> Response:
    return render(
        request, "apidocs/swagger.html", {"openapi_url": request.app.openapi_url}, principal=principal
    )


@router.get("/redoc")
def redoc(request: Request, principal: MaybePrincipal) -> Response:
    response = render(
        request, "apidocs/redoc.html", {"openapi_url": request.app.openapi_url}, principal=principal
    )
    response.headers["content-security-policy"] = REDOC_CSP
    return response


@router.get("/api/docs")
def old_swagger_address() -> RedirectResponse:
    return RedirectResponse("/docs", status_code=308)
