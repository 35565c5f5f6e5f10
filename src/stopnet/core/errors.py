"""Service-layer errors; the web layer maps each to an HTTP status and a JSON body."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


class ServiceError(Exception):
    status_code = 400
    code = "error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def to_dict(self) -> dict[str, Any]:
        return {"error": self.code, "detail": self.message}


class NotFound(ServiceError):
    status_code = 404
    code = "not_found"


class Forbidden(ServiceError):
    status_code = 403
    code = "forbidden"


class Unauthenticated(ServiceError):
    status_code = 401
    code = "unauthenticated"


class Conflict(ServiceError):
    status_code = 409
    code = "conflict"


class TooLarge(ServiceError):
    status_code = 413
    code = "too_large"


@dataclass(frozen=True)
class FieldError:
    """One problem with one field; ``row`` is the 1-based data row of an import file (header is row 1).

    ``field`` is the machine name, ``message`` the text a person reads, ``code`` the problem's stable
    name for programs (``required``, ``not_a_number``, ... see stopnet.core.validation).
    """

    field: str
    message: str
    row: int | None = None
    value: str | None = None
    code: str = "invalid"

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"field": self.field, "code": self.code, "message": self.message}
        if self.row is not None:
            out["row"] = self.row
        if self.value is not None:
            out["value"] = self.value
        return out

    def __str__(self) -> str:
        where = f"row {self.row}, " if self.row is not None else ""
        got = f" (got {self.value!r})" if self.value is not None else ""
        return f"{where}{self.field}: {self.message}{got}"


class InvalidInput(ServiceError):
    """The input breaks one or more rules; every problem is listed."""

    status_code = 422
    code = "invalid"

    def __init__(self, errors: list[FieldError], summary: str = "invalid input") -> None:
        super().__init__(summary)
        self.errors = errors
        self.summary = summary

    def to_dict(self) -> dict[str, Any]:
        return {"error": self.code, "detail": self.summary, "errors": [e.to_dict() for e in self.errors]}

    def __str__(self) -> str:
        return self.summary + "".join(f"\n  - {e}" for e in self.errors)
