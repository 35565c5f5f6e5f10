"""Pydantic schemas of the reporting API (never the table classes themselves)."""

from __future__ import annotations

import calendar
import datetime as dt
import functools
import re
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ModelWrapValidatorHandler,
    ValidationError,
    model_validator,
)
from pydantic_core import InitErrorDetails

from stopnet.core.validation import FieldHint, combined, problem
from stopnet.db.models import CaseStatus, Visibility
from stopnet.reference import get_reference

#: What a person is told about each field of a case or seizure (import, form and API alike).
FIELD_HINTS = {
    "reference": FieldHint(
        "Case reference",
        "letters, digits and . _ / - (starting with a letter or digit), up to 64 characters",
        "FR-2025-0001",
    ),
    "detected_on": FieldHint("Detected on", "a date within the operation", "2025-05-14"),
    "office": FieldHint("Office", "up to 200 characters"),
    "place": FieldHint("Place", "up to 200 characters"),
    "transport_mode": FieldHint("Transport mode", "a transport mode code", "AIR"),
    "is_ecommerce": FieldHint("Ordered online", "yes or no", "yes"),
    "channel": FieldHint("Channel", "a channel code", "EXPRESS"),
    "departure_country": FieldHint("Departure country", "an ISO 3166 alpha-2 code", "HK"),
    "origin_country": FieldHint("Origin country", "an ISO 3166 alpha-2 code", "CN"),
    "destination_country": FieldHint("Destination country", "an ISO 3166 alpha-2 code", "FR"),
    "transit_countries": FieldHint("Transit countries", "ISO alpha-2 codes separated by commas", "AE,NL"),
    "detection_method": FieldHint("Detection method", "a detection method code", "XRAY"),
    "concealment": FieldHint("Concealment", "a concealment code", "MISDECLARED"),
    "platform_type": FieldHint("Platform type", "a platform type code", "MARKETPLACE"),
    "platform_name": FieldHint("Platform or marketplace", "up to 200 characters", "shop.example"),
    "consignee_name": FieldHint("Consignee", "up to 200 characters"),
    "visibility": FieldHint("Visibility", "own, participants, partners or coordinator", "participants"),
    "notes": FieldHint("Notes", "up to 10,000 characters"),
    "seizures": FieldHint("Seizures", "one line per kind of goods seized"),
    "commodity_code": FieldHint("Commodity", "a commodity code", "MED-NERV"),
    "description": FieldHint("Description", "up to 2,000 characters"),
    "brand": FieldHint("Brand", "up to 120 characters"),
    "rights_holder": FieldHint("Rights holder", "up to 200 characters"),
    "hs_code": FieldHint("HS code", "4 to 10 digits", "3004"),
    "pieces": FieldHint("Pieces", "a whole number, 0 or more", "120"),
    "weight_kg": FieldHint("Weight (kg)", "a number of kg, 0 or more, up to 3 decimals", "3.25"),
    "value_amount": FieldHint("Value", "an amount, 0 or more, up to 2 decimals", "9000.50"),
    "currency": FieldHint("Currency", "an ISO 4217 code", "EUR"),
    "infringement_type": FieldHint("Infringement", "an infringement type code", "TRADEMARK"),
    "nature": FieldHint("Nature", "a nature code", "COUNTERFEIT"),
    "reason": FieldHint("Reason for the correction", "3 to 2,000 characters", "wrong weight"),
    "expected_version": FieldHint("Version", "the version number being corrected", "1"),
    "submit": FieldHint("Submit", "true or false", "true"),
}

#: The filters of case lists (page, API and exports).
FILTER_HINTS = {
    "status": FieldHint("Status", "draft, submitted or validated", "submitted"),
    "reporting_org": FieldHint("Reporting administration", "an administration's code", "FR-DGDDI"),
    "country": FieldHint("Country", "an ISO 3166 alpha-2 code", "FR"),
    "region": FieldHint("Region", "a region code", "EU"),
    "commodity_code": FieldHint("Commodity", "a commodity code", "MED-NERV"),
    "commodity_group": FieldHint("Commodity group", "a commodity group code", "MED"),
    "channel": FieldHint("Channel", "a channel code", "EXPRESS"),
    "origin": FieldHint("Origin", "an ISO 3166 alpha-2 code", "CN"),
    "destination": FieldHint("Destination", "an ISO 3166 alpha-2 code", "FR"),
    "is_ecommerce": FieldHint("Ordered online", "yes or no", "yes"),
    "date_from": FieldHint("From", "a date written YYYY-MM-DD", "2025-05-14"),
    "date_to": FieldHint("To", "a date written YYYY-MM-DD", "2025-05-30"),
    "q": FieldHint("Search", "up to 100 characters", "Nike"),
}


@functools.cache
def _codes(kind: str) -> frozenset[str]:
    """The valid codes of a reference kind, as a set (read once: the bulk importer checks millions)."""
    return frozenset(get_reference().codes(kind))


def _unknown(kind: str, label: str, value: str) -> Exception:
    codes = sorted(_codes(kind))
    listed = (
        f"give one of {', '.join(codes)}"
        if len(codes) <= 12
        else f"give a code of the reference list, e.g. {', '.join(codes[:3])}"
    )
    return problem("unknown_code", f"{value!r} is not a {label} code; {listed}")


def _code(kind: str, label: str, *, optional: bool = False) -> AfterValidator:
    def check(value: str | None) -> str | None:
        if value is None and optional:
            return None
        assert value is not None
        value = value.strip().upper()
        if value not in _codes(kind):
            raise _unknown(kind, label, value)
        return value

    return AfterValidator(check)


def _blank_to_none(value: Any) -> Any:
    if isinstance(value, str) and not value.strip():
        return None
    return value


def _country(value: str | None) -> str | None:
    if value is None:
        return None
    value = value.strip().upper()
    if value not in _codes("countries"):
        raise problem(
            "unknown_code", f"{value!r} is not a country code; give an ISO 3166 alpha-2 code, e.g. FR"
        )
    return value


def _countries(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        value = [v for v in value.replace(";", ",").replace(" ", ",").split(",") if v]
    if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
        # a TypeError here would escape validation as a server error
        raise problem("wrong_type", "give country codes (ISO 3166 alpha-2) separated by commas, e.g. AE,NL")
    out = []
    for v in value:
        c = _country(v)
        assert c is not None
        out.append(c)
    if len(out) > 10:
        raise problem("too_many", f"{len(out)} countries given; at most 10")
    return out


_DAY_FIRST = re.compile(r"^(\d{1,2})[/.-](\d{1,2})[/.-](\d{4})$")
_YEAR_FIRST = re.compile(r"^(\d{4})[/.-](\d{1,2})[/.-](\d{1,2})$")


def _date_in(value: Any) -> Any:
    """A date written ``21/05/2025`` (or with dots or dashes) read when it is unambiguous; ``2025/5/14``
    too. ``05/06/2025`` could be either way round: refused, naming the expected format."""
    if not isinstance(value, str) or (len(value) == 10 and value[4] == "-"):
        return value  # not text, or ISO already (the usual cell): pydantic reads it
    text = value.strip()
    m = _YEAR_FIRST.match(text)
    if m:
        year, month, day = map(int, m.groups())
    else:
        m = _DAY_FIRST.match(text)
        if not m:
            return value  # ISO or not a date at all: pydantic decides, the message names the format
        a, b, year = map(int, m.groups())
        if a > 12 or a == b:
            day, month = a, b
        elif b > 12:
            day, month = b, a
        else:
            raise problem(
                "ambiguous_date",
                f"{text!r} could be {a} {calendar.month_name[b]} or {b} {calendar.month_name[a]}; "
                f"write YYYY-MM-DD, e.g. {year}-{b:02d}-{a:02d}",
            )
    try:
        return dt.date(year, month, day)
    except ValueError:
        raise problem(
            "not_a_date", f"{text!r} is not a day of the calendar; write YYYY-MM-DD, e.g. 2025-05-14"
        ) from None


def read_date(value: Any) -> dt.date | None:
    """The date a cell or form field holds, as the schema reads it; None if it holds none."""
    if isinstance(value, dt.date):
        return value
    try:
        read = _date_in(value)
        return read if isinstance(read, dt.date) else dt.date.fromisoformat(str(read).strip())
    except (ValueError, TypeError):
        return None


_THOUSANDS_POINT = re.compile(r"^-?\d{1,3}(\.\d{3})+,\d+$")  # 1.234,5
_THOUSANDS_COMMA = re.compile(r"^-?\d{1,3}(,\d{3})+\.\d+$")  # 1,234.5


def _decimal_in(value: Any) -> Any:
    """A number written with a decimal comma (``2,35``, as French or Spanish Excel writes it) read when it
    is unambiguous; ``1,234`` (a thousands separator or three decimals?) is refused."""
    if not isinstance(value, str) or "," not in value:
        return value
    text = value.strip()
    compact = re.sub(r"[\s\u00a0\u202f]", "", text)
    if "." not in compact and compact.count(",") == 1:
        whole, frac = compact.split(",")
        if len(frac) != 3 or whole.lstrip("-") in ("", "0"):
            return f"{whole or '0'}.{frac}"
        raise problem(
            "ambiguous_number",
            f"{text!r} could be {whole}{frac} or {whole}.{frac}; write it without a thousands separator "
            f"and with a point for decimals, e.g. {whole}.{frac}",
        )
    if _THOUSANDS_POINT.match(compact):
        return compact.replace(".", "").replace(",", ".")
    if _THOUSANDS_COMMA.match(compact):
        return compact.replace(",", "")
    raise problem(
        "not_a_number", f"{text!r} is not a number; write digits with a point for decimals, e.g. 2.35"
    )


Country = Annotated[str | None, BeforeValidator(_blank_to_none), AfterValidator(_country)]
Text200 = Annotated[str, Field(max_length=200)]
CommodityCode = Annotated[str, _code("commodities", "commodity")]
TransportMode = Annotated[str, _code("transport_modes", "transport mode")]
Channel = Annotated[str, _code("channels", "channel")]
DetectionMethod = Annotated[str, _code("detection_methods", "detection method")]
Concealment = Annotated[str, _code("concealments", "concealment")]
InfringementType = Annotated[str, _code("infringement_types", "infringement type")]
Nature = Annotated[str, _code("natures", "nature")]
Currency = Annotated[
    str | None, BeforeValidator(_blank_to_none), _code("currencies", "currency", optional=True)
]
PlatformType = Annotated[
    str | None, BeforeValidator(_blank_to_none), _code("platform_types", "platform type", optional=True)
]


class SeizureIn(BaseModel):
    """One line of goods seized in a case."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    commodity_code: CommodityCode = Field(description="Commodity category (see /api/v1/reference).")
    description: str = Field(default="", max_length=2000)
    brand: str = Field(default="", max_length=120)
    rights_holder: str = Field(default="", max_length=200)
    hs_code: str = Field(
        default="", max_length=12, pattern=r"^(\d{4,10})?$", description="HS code, 4-10 digits."
    )
    pieces: int = Field(default=0, ge=0, le=10_000_000_000, description="Number of items seized.")
    weight_kg: Annotated[Decimal, BeforeValidator(_decimal_in)] = Field(
        default=Decimal(0), ge=0, le=Decimal("100000000"), decimal_places=3
    )
    value_amount: Annotated[Decimal | None, BeforeValidator(_decimal_in)] = Field(
        default=None, ge=0, le=Decimal("1e13"), decimal_places=2
    )
    currency: Currency = None
    infringement_type: InfringementType = "TRADEMARK"
    nature: Nature = "COUNTERFEIT"

    @model_validator(mode="wrap")
    @classmethod
    def _quantities(cls, data: Any, handler: ModelWrapValidatorHandler[SeizureIn]) -> SeizureIn:
        """Pieces or weight, and a currency with a value: checked on what was typed when a field is
        wrong too, so that every problem of a line is named at once."""
        try:
            seizure = handler(data)
        except ValidationError as e:
            extra = _seizure_rules(data) if isinstance(data, dict) else []
            if not extra:
                raise
            raise combined(cls.__name__, e, extra) from None
        if (seizure.pieces == 0 and seizure.weight_kg == 0) or (
            seizure.value_amount is not None and seizure.currency is None
        ):
            values = {k: getattr(seizure, k) for k in ("pieces", "weight_kg", "value_amount", "currency")}
            raise combined(cls.__name__, None, _seizure_rules(values))
        return seizure


_NO_QUANTITY = "no pieces and no weight; give the number of pieces or the weight in kg (or both), e.g. 120"
_NO_CURRENCY = "required when a value is given; give an ISO 4217 code, e.g. EUR"


def _amount(value: Any) -> Decimal | None:
    """A quantity as typed, or None when it cannot be read (its own field error says so)."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return Decimal(0)
    try:
        read = _decimal_in(value)
        return Decimal(str(read).strip())
    except (InvalidOperation, ValueError, ArithmeticError):
        return None


def _seizure_rules(data: dict[str, Any]) -> list[InitErrorDetails]:
    """The rules across a seizure's fields, on raw or validated values."""
    out: list[InitErrorDetails] = []
    pieces, weight = _amount(data.get("pieces")), _amount(data.get("weight_kg"))
    if pieces == 0 and weight == 0:
        out.append(
            InitErrorDetails(
                type=problem("needs_quantity", _NO_QUANTITY), loc=("pieces",), input=data.get("pieces")
            )
        )
    value, currency = data.get("value_amount"), data.get("currency")
    if value is not None and str(value).strip() and (currency is None or not str(currency).strip()):
        out.append(
            InitErrorDetails(type=problem("needs_currency", _NO_CURRENCY), loc=("currency",), input=currency)
        )
    return out


class CaseAttributes(BaseModel):
    """Fields of a case a reporter sets (and may later correct), without its seizures."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    detected_on: Annotated[dt.date, BeforeValidator(_date_in)] = Field(
        description="Date of the interception; must fall within the operation."
    )
    office: str = Field(default="", max_length=200, description="Customs office or place of control.")
    place: str = Field(default="", max_length=200)
    transport_mode: TransportMode
    is_ecommerce: bool = Field(description="The goods were ordered online (e-commerce).")
    channel: Channel
    departure_country: Country = None
    origin_country: Country = None
    destination_country: Country = None
    transit_countries: Annotated[list[str], BeforeValidator(_countries)] = Field(default_factory=list)
    detection_method: DetectionMethod
    concealment: Concealment = "NONE"
    platform_type: PlatformType = None
    platform_name: str = Field(default="", max_length=200, description="Marketplace or website, when known.")
    consignee_name: str = Field(
        default="", max_length=200, description="Personal data: never shared outside."
    )
    notes: str = Field(default="", max_length=10_000)
    visibility: Visibility | None = Field(
        default=None, description="Who may read the case; default: the operation's."
    )


Reference = Annotated[
    str,
    Field(
        min_length=1,
        max_length=64,
        pattern=r"^[A-Za-z0-9][A-Za-z0-9._/-]*$",
        description="The administration's own case reference, unique within the operation.",
    ),
]


class CaseFields(CaseAttributes):
    seizures: list[SeizureIn] = Field(min_length=1, max_length=500)


class CaseRow(CaseAttributes):
    """The case columns of one import row."""

    reference: Reference


class CaseCreate(CaseFields):
    reference: Reference
    submit: bool = Field(default=True, description="Submit at once (false keeps a draft).")


class CaseCorrection(CaseFields):
    expected_version: int = Field(ge=1, description="The version being corrected (optimistic concurrency).")
    reason: str = Field(min_length=3, max_length=2000, description="Why the case is corrected.")


class VersionRef(BaseModel):
    expected_version: int = Field(ge=1)


class SeizureOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    line_no: int
    commodity_code: str
    commodity_group: str
    description: str
    brand: str
    rights_holder: str
    hs_code: str
    pieces: int
    weight_kg: Decimal
    value_amount: Decimal | None
    currency: str | None
    infringement_type: str
    nature: str


class CaseOut(BaseModel):
    id: int
    operation: str
    reporting_org: str
    reporting_country: str
    region_code: str | None
    reference: str
    status: CaseStatus
    version: int
    visibility: Visibility
    detected_on: dt.date
    office: str
    place: str
    transport_mode: str
    is_ecommerce: bool
    channel: str
    departure_country: str | None
    origin_country: str | None
    destination_country: str | None
    transit_countries: list[str]
    detection_method: str
    concealment: str
    platform_type: str | None
    platform_name: str
    consignee_name: str | None = Field(description="Only shown to the reporting administration.")
    notes: str
    created_at: dt.datetime
    updated_at: dt.datetime
    submitted_at: dt.datetime | None
    validated_at: dt.datetime | None
    seizures: list[SeizureOut]
    total_pieces: int
    total_weight_kg: Decimal


class CasePage(BaseModel):
    items: list[CaseOut]
    total: int
    page: int
    page_size: int
    pages: int = Field(default=1, description="Number of pages (at least 1); a page past it is empty.")
    sort: str = Field(default="-detected_on", description="The order: a key, prefixed - for descending.")


class CaseVersionOut(BaseModel):
    version: int
    action: str
    reason: str
    changed_at: dt.datetime
    changed_by: str | None
    snapshot: dict[str, Any]


class CaseFilters(BaseModel):
    """Filters of case lists, shared by the API, the pages and exports."""

    model_config = ConfigDict(extra="forbid")

    status: CaseStatus | None = None
    reporting_org: str | None = None
    country: str | None = None
    region: str | None = None
    commodity_code: str | None = None
    commodity_group: str | None = None
    channel: str | None = None
    origin: str | None = Field(default=None, description="Country of origin of the goods (ISO 3166 alpha-2).")
    destination: str | None = Field(default=None, description="Destination country (ISO 3166 alpha-2).")
    is_ecommerce: bool | None = None
    date_from: dt.date | None = None
    date_to: dt.date | None = None
    q: str | None = Field(default=None, max_length=100, description="Text in reference, brand or notes.")


class ImportErrorOut(BaseModel):
    row: int | None
    field: str
    message: str
    value: str | None = None


class ImportResult(BaseModel):
    batch_id: int | None
    filename: str
    sha256: str
    rows: int
    cases_created: int
    seizures_created: int
    rows_unchanged: int
    already_imported: bool
