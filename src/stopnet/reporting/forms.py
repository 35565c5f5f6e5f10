"""Turning HTML form posts into reporting schemas (and back, to refill a form)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from stopnet.core.errors import FieldError

from .schemas import FIELD_HINTS, CaseOut

CASE_FORM_FIELDS = (
    "reference",
    "detected_on",
    "office",
    "place",
    "transport_mode",
    "is_ecommerce",
    "channel",
    "departure_country",
    "origin_country",
    "destination_country",
    "transit_countries",
    "detection_method",
    "concealment",
    "platform_type",
    "platform_name",
    "consignee_name",
    "visibility",
    "notes",
)
SEIZURE_FORM_FIELDS = (
    "commodity_code",
    "description",
    "brand",
    "rights_holder",
    "hs_code",
    "pieces",
    "weight_kg",
    "value_amount",
    "currency",
    "infringement_type",
    "nature",
)
MAX_LINES = 50

_LINE_FIELD = re.compile(r"^s-(\d+)-(\w+)$")
_LINE = re.compile(r"^seizure line (\d+)$")


def form_to_payload(form: dict[str, str]) -> dict[str, Any]:
    """Flat form fields (``s-0-pieces`` …) to the nested payload of the API schemas."""
    payload: dict[str, Any] = {k: form[k] for k in CASE_FORM_FIELDS if form.get(k, "").strip() != ""}
    payload["is_ecommerce"] = form.get("is_ecommerce") in ("on", "true", "yes", "1")
    seizures = []
    for i in range(MAX_LINES):
        line = {k: form.get(f"s-{i}-{k}", "").strip() for k in SEIZURE_FORM_FIELDS}
        if not any(v for k, v in line.items() if k not in ("infringement_type", "nature")):
            continue
        seizures.append({k: v for k, v in line.items() if v != ""})
    payload["seizures"] = seizures
    return payload


def case_to_form(case: CaseOut) -> dict[str, str]:
    data = case.model_dump(mode="json")
    form = {k: "" if data.get(k) is None else str(data[k]) for k in CASE_FORM_FIELDS if k in data}
    form["transit_countries"] = ",".join(case.transit_countries)
    form["is_ecommerce"] = "on" if case.is_ecommerce else ""
    form["consignee_name"] = case.consignee_name or ""
    for i, s in enumerate(data["seizures"]):
        for k in SEIZURE_FORM_FIELDS:
            form[f"s-{i}-{k}"] = "" if s.get(k) is None else str(s[k])
    return form


def form_field(loc: tuple[Any, ...]) -> str:
    """The form input a validation error is about: ``s-0-pieces``, ``origin_country``, ``seizure line 2``."""
    if len(loc) >= 2 and loc[0] == "seizures" and isinstance(loc[1], int):
        return f"s-{loc[1]}-{loc[2]}" if len(loc) > 2 else f"seizure line {loc[1] + 1}"
    return ".".join(str(p) for p in loc) or "form"


def form_label(name: str, key: str = "") -> str:
    """What the officer reads for a field (:func:`field_label`), as the error messages name it."""
    return field_label(name)


def field_label(name: str) -> str:
    """``s-0-pieces`` → ``Seizure line 1, Pieces``; ``origin_country`` → ``Origin country``."""
    m = _LINE_FIELD.match(name)
    if m:
        key = m.group(2)
        hint = FIELD_HINTS.get(key)
        return f"Seizure line {int(m.group(1)) + 1}, {hint.label if hint else key.replace('_', ' ')}"
    if _LINE.match(name):
        return name.capitalize()
    hint = FIELD_HINTS.get(name)
    return hint.label if hint else name.replace("_", " ").capitalize()


def field_anchor(name: str) -> str:
    """The id of the input an error is about (a whole seizure line points at its commodity)."""
    m = _LINE.match(name)
    if m:
        return f"f-s-{int(m.group(1)) - 1}-commodity_code"
    if name == "seizures":
        return "f-s-0-commodity_code"
    return f"f-{name}"


def errors_by_field(errors: Sequence[FieldError]) -> dict[str, list[str]]:
    """Error messages keyed by form field (``s-0-pieces``), and by line (``s-0``) for a whole line."""
    out: dict[str, list[str]] = {}
    for e in errors:
        m = _LINE.match(e.field)
        key = f"s-{int(m.group(1)) - 1}" if m else ("s-0" if e.field == "seizures" else e.field)
        out.setdefault(key, []).append(e.message)
    return out
