"""The OpenAPI document, with the error answers every JSON route really gives.

FastAPI documents only each route's success and a 422 in its own ``HTTPValidationError`` shape. stopnet
answers every error, validation included, with one body (``stopnet.core.errors``: ``error``, ``detail``
and, for invalid input, ``errors``), and any route may refuse a caller (401, 403), miss a record (404) or
be rate limited (429). This documents those answers, so that clients generated from the document, and
the schema fuzzing of tests/reliability/test_api_fuzz.py, see the API as it behaves.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

ERROR_SCHEMA: dict[str, Any] = {
    "title": "Error",
    "type": "object",
    "required": ["error", "detail"],
    "properties": {
        "error": {
            "type": "string",
            "description": "Machine-readable kind: invalid, unauthenticated, forbidden, not_found, "
            "conflict, too_large, rate_limited, ...",
        },
        "detail": {"type": "string", "description": "What went wrong, for a person."},
        "errors": {
            "type": "array",
            "description": "With ``invalid``: every problem found, each naming its field.",
            "items": {"$ref": "#/components/schemas/FieldError"},
        },
    },
}
FIELD_ERROR_SCHEMA: dict[str, Any] = {
    "title": "FieldError",
    "type": "object",
    "required": ["field", "code", "message"],
    "properties": {
        "field": {"type": "string", "description": "The field's machine name (``seizures.0.pieces``)."},
        "code": {
            "type": "string",
            "description": "The problem, stable for programs: required, not_a_number, not_a_date, "
            "bad_format, too_long, unknown_code, outside_operation, needs_quantity, ... (invalid: other)",
        },
        "message": {
            "type": "string",
            "description": "For a person: the field's label, what is wrong, an example.",
        },
        "row": {"type": "integer", "description": "Data row of an import file (the header is row 1)."},
        "value": {"type": "string"},
    },
}
ANY_ROUTE = {
    "400": "Bad request",
    "401": "Not signed in and no valid API token",
    "403": "The caller may not do this",
    "404": "No such record, or not one the caller may see",
    "422": "The request is invalid; every problem is listed",
    "429": "Too many requests; retry after the time in Retry-After",
    "503": "The database is unavailable; nothing was saved, retry after the time in Retry-After",
}
WRITE_ROUTE = {
    "409": "Conflicts with the stored state (duplicate, stale version, wrong status)",
    "413": "The request or its file is larger than the limit",
}
WRITES = {"post", "put", "patch", "delete"}


def _error_response(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
    }


def with_error_responses(spec: dict[str, Any]) -> dict[str, Any]:
    """``spec`` with the shared error answers on every ``/api/`` operation (in place; returned)."""
    schemas = spec.setdefault("components", {}).setdefault("schemas", {})
    schemas["Error"] = ERROR_SCHEMA
    schemas["FieldError"] = FIELD_ERROR_SCHEMA
    for path, item in spec.get("paths", {}).items():
        if not path.startswith("/api/"):
            continue
        for method, operation in item.items():
            if not isinstance(operation, dict) or "responses" not in operation:
                continue
            responses = operation["responses"]
            wanted = ANY_ROUTE | (WRITE_ROUTE if method in WRITES else {})
            for status, description in wanted.items():
                current = responses.get(status)
                # FastAPI's own 422 describes a body stopnet never sends: replace it
                if current is None or "HTTPValidationError" in str(current):
                    responses[status] = _error_response(description)
    if "#/components/schemas/HTTPValidationError" not in str(spec.get("paths")):
        schemas.pop("HTTPValidationError", None)
        schemas.pop("ValidationError", None)
    return spec


def install(app: FastAPI) -> None:
    """Serve :func:`with_error_responses` of the generated document at the app's ``openapi_url``."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = with_error_responses(
                get_openapi(
                    title=app.title,
                    version=app.version,
                    openapi_version=app.openapi_version,
                    description=app.description,
                    routes=app.routes,
                )
            )
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
