"""Pydantic schemas of the rights-holder API (never the table classes themselves)."""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, model_validator

from stopnet.core.validation import rule_error
from stopnet.db.models.rightsholders import (
    BrandStatus,
    GuideKind,
    VerificationAnswer,
    VerificationStatus,
)
from stopnet.reference import get_reference

_HS = re.compile(r"^\d{4,10}$")
_TERRITORY = re.compile(r"^(\*|[A-Z0-9]{2,8})$")


def _blank_to_none(value: Any) -> Any:
    if isinstance(value, str) and not value.strip():
        return None
    return value


def _lines(value: Any) -> Any:
    """A list given as text: one item per line (or separated by ``;``)."""
    if isinstance(value, str):
        value = [v for v in re.split(r"[\n;]", value)]
    if isinstance(value, list):
        return [str(v).strip() for v in value if str(v).strip()]
    return value


def _codes(value: Any) -> Any:
    """HS codes given as text: separated by spaces, commas or semicolons; dots are ignored."""
    if isinstance(value, str):
        value = re.split(r"[\s,;]+", value)
    if isinstance(value, list):
        return [str(v).strip().replace(".", "") for v in value if str(v).strip()]
    return value


def _check_hs(values: list[str]) -> list[str]:
    out: list[str] = []
    for v in values:
        if not _HS.match(v):
            raise ValueError(f"HS code {v!r} is not 4 to 10 digits")
        if v not in out:
            out.append(v)
    if len(out) > 40:
        raise ValueError("at most 40 HS codes")
    return out


def _country(value: str | None) -> str | None:
    if value is None:
        return None
    value = value.strip().upper()
    if not get_reference().has("countries", value):
        raise ValueError(f"unknown country code {value!r} (ISO 3166 alpha-2 expected)")
    return value


def _territory(value: str) -> str:
    value = value.strip().upper() or "*"
    if not _TERRITORY.match(value):
        raise ValueError("a territory is * (everywhere), a country code (FR), EU, WO or a region code")
    return value


Lines = Annotated[list[Annotated[str, Field(max_length=200)]], BeforeValidator(_lines)]
HsCodes = Annotated[list[str], BeforeValidator(_codes), AfterValidator(_check_hs)]
Country = Annotated[str | None, BeforeValidator(_blank_to_none), AfterValidator(_country)]
Territory = Annotated[str, AfterValidator(_territory), Field(max_length=8)]
OptDate = Annotated[dt.date | None, BeforeValidator(_blank_to_none)]
OptInt = Annotated[int | None, BeforeValidator(_blank_to_none)]


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


# ---------------------------------------------------------------------------------------------- brands


class TrademarkIn(_In):
    mark: str = Field(
        min_length=1, max_length=200, description="The mark as registered (word or figurative)."
    )
    registration_number: str = Field(min_length=1, max_length=64)
    territory: Territory = Field(description="Where it is registered: a country code, EU or WO.")
    office: str = Field(default="", max_length=64, description="Registering office (EUIPO, INPI, WIPO, …).")
    classes: str = Field(default="", max_length=64, description="Nice classes, e.g. '5, 25'.")
    registered_on: OptDate = None
    expires_on: OptDate = None


class RepresentativeIn(_In):
    name: str = Field(min_length=1, max_length=200)
    firm: str = Field(default="", max_length=200)
    email: str = Field(default="", max_length=254)
    phone: str = Field(default="", max_length=64)
    mandate: str = Field(default="", max_length=200, description="e.g. the application for action.")
    territories: str = Field(default="", max_length=120)


class BrandCreate(_In):
    name: str = Field(min_length=1, max_length=120)
    description: str = Field(default="", max_length=5000)
    product_lines: Lines = Field(default_factory=list, max_length=100)
    hs_codes: HsCodes = Field(default_factory=list)
    aliases: Lines = Field(
        default_factory=list,
        max_length=50,
        description="Other spellings officers may type in seizure reports (the name is always one).",
    )
    trademarks: list[TrademarkIn] = Field(min_length=1, max_length=200)
    representatives: list[RepresentativeIn] = Field(default_factory=list, max_length=50)


class BrandDecision(_In):
    decision: Literal["approved", "rejected"]
    note: str = Field(default="", max_length=2000)


class TrademarkOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    mark: str
    registration_number: str
    territory: str
    office: str
    classes: str
    registered_on: dt.date | None
    expires_on: dt.date | None


class RepresentativeOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    name: str
    firm: str
    email: str
    phone: str
    mandate: str
    territories: str


class ContactIn(_In):
    territory: Territory = "*"
    name: str = Field(min_length=1, max_length=200)
    function: str = Field(default="", max_length=200)
    email: str = Field(default="", max_length=254)
    phone: str = Field(default="", max_length=64)
    channel: str = Field(default="", max_length=200, description="How to reach them (e-mail, portal, …).")
    languages: str = Field(default="", max_length=64, description="e.g. 'en, fr'.")
    response_hours: OptInt = Field(default=None, ge=1, le=24 * 60, description="Usual response time.")

    @model_validator(mode="after")
    def _reachable(self) -> ContactIn:
        if not (self.email or self.phone or self.channel):
            raise ValueError("give at least an e-mail, a phone or a channel")
        return self


class ContactOut(BaseModel):
    id: int
    brand_id: int
    territory: str
    name: str
    function: str
    email: str
    phone: str
    channel: str
    languages: str
    response_hours: int | None
    last_confirmed_at: dt.datetime
    stale: bool = Field(description="Not confirmed for more than 180 days.")


class AliasConflict(BaseModel):
    alias: str
    brand_id: int
    brand: str
    owner_org: str


class BrandOut(BaseModel):
    id: int
    name: str
    owner_org: str
    owner_name: str
    status: BrandStatus
    description: str
    product_lines: list[str]
    hs_codes: list[str]
    aliases: list[str]
    trademarks: list[TrademarkOut]
    representatives: list[RepresentativeOut]
    contacts: list[ContactOut]
    decided_at: dt.datetime | None
    decision_note: str
    created_at: dt.datetime
    alias_conflicts: list[AliasConflict] = Field(
        default_factory=list, description="Approved brands of other holders sharing an alias (coordinator)."
    )


class BrandSummary(BaseModel):
    id: int
    name: str
    owner_org: str
    status: BrandStatus
    hs_codes: list[str]
    product_lines: list[str]
    stale_contacts: int
    created_at: dt.datetime


# ---------------------------------------------------------------------------------------------- guides


class GuideContent(_In):
    title: str = Field(min_length=3, max_length=200)
    summary: str = Field(default="", max_length=20_000)
    genuine_features: str = Field(default="", max_length=20_000, description="How genuine goods look.")
    packaging: str = Field(default="", max_length=20_000)
    fake_indicators: str = Field(default="", max_length=20_000, description="Known signs of fakes.")
    products: Lines = Field(default_factory=list, max_length=100)
    hs_codes: HsCodes = Field(default_factory=list)
    valid_from: OptDate = None
    valid_until: OptDate = None
    change_note: str = Field(default="", max_length=500)

    @model_validator(mode="after")
    def _dates(self) -> GuideContent:
        if self.valid_from and self.valid_until and self.valid_until < self.valid_from:
            raise rule_error(
                "GuideContent", "valid_until", "dates_reversed", "before the date the guide is valid from"
            )
        return self


class GuideCreate(GuideContent):
    kind: GuideKind = GuideKind.PRODUCT_ID
    brand_id: OptInt = Field(default=None, description="Required for product_id guides.")


class GuideEdit(GuideContent):
    expected_version: int = Field(ge=1, description="The latest version you edited (optimistic concurrency).")


class GuidePublish(_In):
    version: int | None = Field(default=None, ge=1, description="Default: the latest version.")


class AttachmentOut(BaseModel):
    id: int
    filename: str
    content_type: str
    size_bytes: int
    sha256: str
    url: str


class GuideVersionOut(BaseModel):
    version: int
    title: str
    change_note: str
    created_at: dt.datetime
    published_at: dt.datetime | None
    is_published: bool = Field(description="The version officers see now.")


class GuideOut(BaseModel):
    id: int
    kind: GuideKind
    org: str
    org_name: str
    brand_id: int | None
    brand: str | None
    status: Literal["draft", "published", "withdrawn"]
    version: int = Field(description="The version shown.")
    latest_version: int
    published_version: int | None
    title: str
    summary: str
    genuine_features: str
    packaging: str
    fake_indicators: str
    products: list[str]
    hs_codes: list[str]
    valid_from: dt.date | None
    valid_until: dt.date | None
    valid_now: bool
    change_note: str
    created_at: dt.datetime
    published_at: dt.datetime | None
    attachments: list[AttachmentOut]


class GuideHit(BaseModel):
    id: int
    kind: GuideKind
    org: str
    brand_id: int | None
    brand: str | None
    title: str
    version: int
    status: Literal["draft", "published", "withdrawn"]
    products: list[str]
    hs_codes: list[str]
    valid_until: dt.date | None
    valid_now: bool


class GuideSearch(BaseModel):
    """Filters of the guide search (empty values are ignored)."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    q: str | None = Field(default=None, max_length=100, description="Words in title, text, brand or HS.")
    brand: str | None = Field(default=None, max_length=120, description="Brand name or alias.")
    product: str | None = Field(default=None, max_length=100)
    hs: str | None = Field(default=None, max_length=12, pattern=r"^\d{2,10}$", description="HS code prefix.")
    kind: GuideKind | None = None
    include_expired: bool = False


class GuidePage(BaseModel):
    items: list[GuideHit]
    total: int
    page: int
    page_size: int


# ---------------------------------------------------------------------------------------------- requests


class VerificationCreate(_In):
    brand_id: int
    operation: str | None = Field(default=None, max_length=32, description="Default: the case's operation.")
    case_id: OptInt = Field(default=None, description="A case your administration reported (optional).")
    seizure_id: OptInt = Field(default=None, description="A seizure of that case (optional).")
    product: str = Field(min_length=2, max_length=200, description="What the goods are.")
    details: str = Field(
        default="",
        max_length=10_000,
        description="What you see (marks, labels, packaging). Never personal data of the consignee.",
    )
    hs_code: str = Field(default="", max_length=12, pattern=r"^(\d{4,10})?$")
    pieces: OptInt = Field(default=None, ge=0, le=10_000_000_000)
    origin_country: Country = None
    departure_country: Country = None
    detected_on: OptDate = None

    @model_validator(mode="after")
    def _where(self) -> VerificationCreate:
        if self.case_id is None and not self.operation:
            raise ValueError("give the operation, or the case the goods were seized in")
        if self.seizure_id is not None and self.case_id is None:
            raise rule_error(
                "VerificationCreate", "case_id", "required", "a seizure needs the case it belongs to"
            )
        return self


class VerificationAnswerIn(_In):
    answer: VerificationAnswer
    note: str = Field(default="", max_length=10_000)


class OperationSettingIn(_In):
    response_working_days: int = Field(ge=1, le=60, description="Working days to answer a request.")


class OperationSettingOut(BaseModel):
    operation: str
    response_working_days: int
    is_default: bool


class VerificationOut(BaseModel):
    id: int
    operation: str
    brand_id: int
    brand: str
    brand_owner: str
    requesting_org: str
    status: VerificationStatus
    product: str
    details: str
    hs_code: str
    pieces: int | None
    origin_country: str | None
    departure_country: str | None
    detected_on: dt.date | None
    sent_at: dt.datetime
    working_days: int
    due_on: dt.date
    overdue: bool
    answer: VerificationAnswer | None
    answer_note: str
    answered_at: dt.datetime | None
    attachments: list[AttachmentOut]
    case_id: int | None = Field(description="Shown to the requesting administration and the coordinator.")
    case_reference: str | None = Field(description="Shown to the requesting administration only.")
    seizure_id: int | None = Field(description="Shown to the requesting administration and the coordinator.")
    requested_by: str | None = Field(description="Shown to the requesting administration only.")


class VerificationPage(BaseModel):
    items: list[VerificationOut]
    total: int
    page: int
    page_size: int


class CaseVerificationOut(BaseModel):
    """A verification answer attached to a case (``GET /api/v1/rights/cases/{id}/verifications``)."""

    request_id: int
    brand_id: int
    brand: str
    seizure_id: int | None
    status: VerificationStatus
    due_on: dt.date
    overdue: bool
    answer: VerificationAnswer | None
    answer_note: str
    answered_at: dt.datetime | None


# ---------------------------------------------------------------------------------------------- seizures


class HolderSeizureOut(BaseModel):
    """A seizure of one of the holder's brands: no case reference, consignee, notes or description."""

    operation: str
    brand_id: int
    brand: str
    reported_brand: str
    commodity_code: str
    commodity_group: str
    pieces: int
    weight_kg: Decimal
    detected_on: dt.date
    country: str


class HolderSeizurePage(BaseModel):
    items: list[HolderSeizureOut]
    total: int
    page: int
    page_size: int


class CaseBrandLine(BaseModel):
    """A seizure of a case with the approved brands its brand text matches, and their guides."""

    seizure_id: int
    line_no: int
    reported_brand: str
    commodity_code: str
    hs_code: str
    pieces: int
    brands: list[BrandSummary]
    guides: list[GuideHit]
    contacts: list[ContactOut]


class CaseRights(BaseModel):
    case_id: int
    reference: str
    operation: str
    own: bool = Field(description="The principal's administration reported the case (may ask).")
    lines: list[CaseBrandLine]
    verifications: list[CaseVerificationOut]


# ---------------------------------------------------------------------------------------------- figures


class OutreachRow(BaseModel):
    operation: str
    brand_id: int
    brand: str
    owner_org: str
    seizures: int
    pieces: int
    weight_kg: Decimal
    requests_sent: int
    requests_answered: int
    requests_open: int
    overdue: int
    answered_late: int
    median_response_hours: float | None


class Outreach(BaseModel):
    scope: Literal["all", "own_brands", "own_administration"]
    as_of: dt.datetime
    rows: list[OutreachRow]
    totals: OutreachRow
