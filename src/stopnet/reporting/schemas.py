"""Pydantic schemas of the reporting API (never the table classes themselves)."""

from __future__ import annotations

import datetime as dt
import functools
from decimal import Decimal
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, model_validator

from stopnet.db.models import CaseStatus, Visibility
from stopnet.reference import get_reference


@functools.cache
def _codes(kind: str) -> frozenset[str]:
    """The valid codes of a reference kind, as a set (read once: the bulk importer checks millions)."""
    return frozenset(get_reference().codes(kind))


def _code(kind: str, label: str, *, optional: bool = False) -> AfterValidator:
    def check(value: str | None) -> str | None:
        if value is None and optional:
            return None
        assert value is not None
        value = value.strip().upper()
        if value not in _codes(kind):
            raise ValueError(f"unknown {label} code {value!r}")
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
        raise ValueError(f"unknown country code {value!r} (ISO 3166 alpha-2 expected)")
    return value


def _countries(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        value = [v for v in value.replace(";", ",").replace(" ", ",").split(",") if v]
    if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
        # a TypeError here would escape validation as a server error
        raise ValueError(
            "a list of country codes (ISO 3166 alpha-2), or one text of codes separated by , or ;"
        )
    out = []
    for v in value:
        c = _country(v)
        assert c is not None
        out.append(c)
    if len(out) > 10:
        raise ValueError("at most 10 transit countries")
    return out


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
    weight_kg: Decimal = Field(default=Decimal(0), ge=0, le=Decimal("100000000"), decimal_places=3)
    value_amount: Decimal | None = Field(default=None, ge=0, le=Decimal("1e13"), decimal_places=2)
    currency: Currency = None
    infringement_type: InfringementType = "TRADEMARK"
    nature: Nature = "COUNTERFEIT"

    @model_validator(mode="after")
    def _quantities(self) -> SeizureIn:
        if self.pieces == 0 and self.weight_kg == 0:
            raise ValueError("a seizure needs pieces or weight_kg greater than zero")
        if self.value_amount is not None and self.currency is None:
            raise ValueError("currency is required when value_amount is given")
        return self


class CaseAttributes(BaseModel):
    """Fields of a case a reporter sets (and may later correct), without its seizures."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    detected_on: dt.date = Field(description="Date of the interception; must fall within the operation.")
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
