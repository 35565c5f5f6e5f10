"""Pydantic's validation errors in a person's words: the one place they become :class:`FieldError`.

Each problem keeps the field's machine name (``field``), gets a stable ``code`` (``not_a_number``,
``bad_format``, ...) and a message naming the field's label, what was found and what is expected, with
an example ("HS code: '91' has 2 digits; give 4 to 10 digits, e.g. 3004"); pydantic's own text never
reaches a user. The importer, the HTML forms and the API's request errors all convert through here.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError
from pydantic_core import InitErrorDetails, PydanticCustomError

from .errors import FieldError


@dataclass(frozen=True)
class FieldHint:
    """What a person is told about a field: its label, what it takes and an example."""

    label: str
    expected: str = ""
    example: str = ""


#: pydantic's error types, grouped under the stable code the API gives for them
_CODES: dict[str, str] = {
    "missing": "required",
    "string_too_short": "too_short",
    "string_too_long": "too_long",
    "too_long": "too_many",
    "too_short": "too_few",
    "string_pattern_mismatch": "bad_format",
    "int_parsing": "not_a_whole_number",
    "int_type": "not_a_whole_number",
    "int_from_float": "not_a_whole_number",
    "int_parsing_size": "too_large",
    "decimal_parsing": "not_a_number",
    "decimal_type": "not_a_number",
    "float_parsing": "not_a_number",
    "float_type": "not_a_number",
    "finite_number": "not_a_number",
    "decimal_max_places": "too_many_decimals",
    "decimal_max_digits": "too_large",
    "decimal_whole_digits": "too_large",
    "greater_than_equal": "too_small",
    "greater_than": "too_small",
    "less_than_equal": "too_large",
    "less_than": "too_large",
    "date_parsing": "not_a_date",
    "date_type": "not_a_date",
    "date_from_datetime_parsing": "not_a_date",
    "date_from_datetime_inexact": "not_a_date",
    "datetime_parsing": "not_a_date",
    "datetime_type": "not_a_date",
    "datetime_from_date_parsing": "not_a_date",
    "bool_parsing": "not_yes_no",
    "bool_type": "not_yes_no",
    "enum": "not_allowed",
    "literal_error": "not_allowed",
    "extra_forbidden": "unknown_field",
    "model_type": "wrong_type",
    "model_attributes_type": "wrong_type",
    "dict_type": "wrong_type",
    "list_type": "wrong_type",
    "tuple_type": "wrong_type",
    "set_type": "wrong_type",
    "string_type": "wrong_type",
    "json_invalid": "not_json",
    "value_error": "invalid",
    "assertion_error": "invalid",
}
_OURS: set[str] = set()  # the codes of :func:`problem`
_EXAMPLE_DATE = "2025-05-14"


def problem(code: str, message: str) -> PydanticCustomError:
    """An error for a validator to raise: its ``code`` reaches the API as it is, its message (in a
    person's words, without the field's label) the user."""
    _OURS.add(code)
    return PydanticCustomError(code, "{text}", {"text": message})


def _shown(value: Any) -> str:
    """The value as the user typed it, quoted and cut short."""
    text = value if isinstance(value, str) else str(value)
    return repr(text if len(text) <= 40 else text[:40] + "...")


def _typed(err: Mapping[str, Any]) -> str | None:
    """The input as text, when it is a plain value (not a whole object or list)."""
    value = err.get("input")
    if value is None or isinstance(value, dict | list | tuple):
        return None
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)[:200]


def _wanted(hint: FieldHint) -> str:
    if hint.expected and hint.example:
        return f"give {hint.expected}, e.g. {hint.example}"
    if hint.expected:
        return f"give {hint.expected}"
    return f"e.g. {hint.example}" if hint.example else ""


def describe(err: Mapping[str, Any], hint: FieldHint) -> tuple[str, str]:
    """The code and the readable text (without the label) of one pydantic error."""
    kind = str(err.get("type", ""))
    ctx: Mapping[str, Any] = err.get("ctx") or {}
    code = kind if kind in _OURS else _CODES.get(kind, "invalid")
    raw = err.get("input")
    typed = _typed(err)
    shown = _shown(typed) if typed is not None else "what was sent"
    wanted = _wanted(hint)
    tail = f"; {wanted}" if wanted else ""
    if kind == "missing":
        text = f"required{tail}"
    elif kind == "string_too_short":
        text = (
            f"required{tail}"
            if not typed
            else f"{shown} is too short; at least {ctx.get('min_length')} characters"
        )
    elif kind == "string_too_long":
        text = f"{len(typed or '')} characters; at most {ctx.get('max_length')}"
    elif kind == "too_long":
        text = f"{_count(raw)} given; at most {ctx.get('max_length')}"
    elif kind == "too_short":
        text = f"at least {ctx.get('min_length')} needed{tail}"
    elif kind == "string_pattern_mismatch":
        digits = (
            f" has {len(typed)} digit{'s' if len(typed) != 1 else ''}" if typed and typed.isdigit() else ""
        )
        text = f"{shown}{digits or ' does not fit'}{tail}"
    elif code == "not_a_whole_number":
        text = f"{shown} is not a whole number{tail}"
    elif code == "not_a_number":
        text = f"{shown} is not a number{tail}"
    elif kind == "decimal_max_places":
        places = ctx.get("decimal_places")
        text = f"{shown} has more than {places} decimal{'s' if places != 1 else ''}{tail}"
    elif kind == "greater_than_equal":
        text = f"{shown} is below {ctx.get('ge')}{tail}"
    elif kind == "greater_than":
        text = f"{shown} is too small; give more than {ctx.get('gt')}"
    elif kind == "less_than":
        text = f"{shown} is too large; give less than {ctx.get('lt')}"
    elif kind in ("less_than_equal", "int_parsing_size", "decimal_max_digits", "decimal_whole_digits"):
        bound = ctx.get("le")
        text = f"{shown} is too large" + (f"; at most {bound}" if bound is not None else "")
    elif code == "not_a_date":
        text = f"{shown} is not a date; write YYYY-MM-DD, e.g. {hint.example or _EXAMPLE_DATE}"
    elif code == "not_yes_no":
        text = f"{shown} is not yes or no"
    elif code == "not_allowed":
        text = f"{shown} is not one of {ctx.get('expected')}"
    elif kind == "extra_forbidden":
        text = "is not a field of this form or request"
    elif kind in ("model_type", "model_attributes_type", "dict_type"):
        text = "give an object of named fields (a JSON object)"
    elif kind in ("list_type", "tuple_type", "set_type"):
        text = f"{shown} is not a list{tail}"
    elif kind in ("value_error", "assertion_error"):
        text = str(ctx.get("error", "")) or f"{shown} is not accepted{tail}"
    elif kind in _OURS:
        text = str(err.get("msg", ""))  # raised by :func:`problem`: already in a person's words
    else:
        text = f"{shown} is not accepted{tail}"
    return code, text


def _count(value: Any) -> int:
    return len(value) if isinstance(value, list | tuple | str | dict) else 0


def _default_name(loc: tuple[Any, ...]) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header", "form")]
    return ".".join(parts) or "request"


def _default_label(name: str, key: str, hints: Mapping[str, FieldHint]) -> str:
    hint = hints.get(key)
    if hint is not None:
        return hint.label
    return key.replace("_", " ").capitalize() if key else "This form"


def field_errors(
    errors: ValidationError | Iterable[Mapping[str, Any]],
    hints: Mapping[str, FieldHint] | None = None,
    *,
    name: Callable[[tuple[Any, ...]], str] = _default_name,
    label: Callable[[str, str], str] | None = None,
    row: int | None = None,
) -> list[FieldError]:
    """Pydantic's errors as readable :class:`FieldError` s.

    ``hints`` (by field name, the last text part of an error's location) give labels, expectations and
    examples; ``name`` turns a location into the field's machine name (default: its parts joined by
    dots, without ``body``/``query``); ``label(name, key)`` overrides the label shown.
    """
    hints = hints or {}
    items = errors.errors() if isinstance(errors, ValidationError) else errors
    out: list[FieldError] = []
    for err in items:
        loc = tuple(err.get("loc", ()))
        key = next((str(p) for p in reversed(loc) if isinstance(p, str)), "")
        field = name(loc)
        hint = hints.get(key, FieldHint(""))
        shown = label(field, key) if label is not None else _default_label(field, key, hints)
        code, text = describe(err, hint)
        out.append(FieldError(field, f"{shown}: {text}", row, _typed(err), code))
    return out


def combined(title: str, error: ValidationError | None, extra: Iterable[InitErrorDetails]) -> ValidationError:
    """One :class:`ValidationError` holding ``error``'s problems and ``extra`` ones (a model's rules
    across fields, checked on what was typed even when a field is wrong)."""
    details: list[InitErrorDetails] = []
    for err in error.errors() if error is not None else ():
        kind = err["type"]
        if kind in _OURS:
            details.append(
                InitErrorDetails(type=problem(kind, err["msg"]), loc=err["loc"], input=err["input"])
            )
        else:
            item = InitErrorDetails(type=kind, loc=err["loc"], input=err["input"])
            if "ctx" in err:
                item["ctx"] = err["ctx"]
            details.append(item)
    details.extend(extra)
    return ValidationError.from_exception_data(title, details)


def rule_error(title: str, field: str, code: str, message: str, value: Any = None) -> ValidationError:
    """A model's rule across fields broken, put on the field the user should change (for a model
    validator to raise, so that the form marks that field)."""
    return combined(title, None, [InitErrorDetails(type=problem(code, message), loc=(field,), input=value)])
