"""Turning HTML form posts into reporting schemas (and back, to refill a form)."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from stopnet.core.errors import FieldError

from .schemas import CaseOut

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


def validation_errors(e: ValidationError) -> list[FieldError]:
    out = []
    for err in e.errors():
        loc = list(err["loc"])
        if len(loc) >= 2 and loc[0] == "seizures" and isinstance(loc[1], int):
            name = f"s-{loc[1]}-{loc[2]}" if len(loc) > 2 else f"seizure line {loc[1] + 1}"
        else:
            name = ".".join(str(p) for p in loc) or "form"
        out.append(FieldError(name, err["msg"].removeprefix("Value error, ")))
    return out
