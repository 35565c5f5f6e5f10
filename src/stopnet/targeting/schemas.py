"""Pydantic schemas of risk targeting (API bodies and answers; the pages show the same data)."""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from stopnet.db.models.targeting import InspectionOutcome, ProposalStatus, RuleStatus

MAX_BATCH = 10_000


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


# ------------------------------------------------------------------------------------------ consignments


class ConsignmentBatchIn(_In):
    """A batch of consignments (``stopnet.risk.consignments`` fields). Parties are given either
    pseudonymised (``sender_id``/``consignee_id``) or by name (``sender_name``/``consignee_name``): names
    are replaced by the administration's keyed pseudonym before anything is stored."""

    operation: str = Field(max_length=32)
    org_code: str | None = Field(default=None, max_length=32, description="Coordinator only: for whom.")
    consignments: list[dict[str, Any]] = Field(min_length=1, max_length=MAX_BATCH)


class IngestOut(BaseModel):
    operation: str
    org_code: str
    received: int
    stored: int
    already_stored: int
    inspections_recorded: int
    ignored_columns: list[str] = []


class ConsignmentOut(BaseModel):
    id: int
    org_code: str
    consignment_id: str
    declared_at: dt.datetime
    arrival_date: dt.date
    channel: str
    carrier: str
    sender_id: str
    consignee_id: str
    origin_country: str
    departure_country: str
    destination_country: str
    office: str
    description: str
    hs_code: str
    declared_value: float
    currency: str
    weight_kg: float
    quantity: int
    marketplace: str | None


# ------------------------------------------------------------------------------------------ rules


class RuleCreate(_In):
    code: str = Field(min_length=1, max_length=64, description="Short id, e.g. R-PENS-CN")
    name: str = Field(min_length=1, max_length=200)
    expression: str = Field(min_length=1, max_length=4000)
    weight: float = Field(default=1.0, ge=0, le=100)
    note: str = Field(default="", max_length=2000)
    org_code: str | None = Field(default=None, max_length=32, description="Coordinator only: for whom.")


class RuleEdit(_In):
    name: str = Field(min_length=1, max_length=200)
    expression: str = Field(min_length=1, max_length=4000)
    weight: float = Field(default=1.0, ge=0, le=100)
    note: str = Field(default="", max_length=2000)


class RuleVersionOut(BaseModel):
    version: int
    name: str
    expression: str
    weight: float
    note: str
    created_by: str
    created_at: dt.datetime
    tested_at: dt.datetime | None
    test_rows: int | None
    test_hits: int | None
    activated_at: dt.datetime | None


class RuleOut(BaseModel):
    id: int
    code: str
    org_code: str
    status: RuleStatus
    latest_version: int
    active_version: int | None
    current: RuleVersionOut


class RuleDetail(RuleOut):
    versions: list[RuleVersionOut]


class RuleTestIn(_In):
    version: int | None = Field(default=None, ge=1, description="Default: the latest version.")
    since: dt.date | None = Field(default=None, description="Only consignments arriving on or after.")


class SampleHit(BaseModel):
    consignment_id: str
    arrival_date: dt.date
    channel: str
    origin_country: str
    destination_country: str
    hs_code: str
    description: str
    declared_value: float
    currency: str
    inspection: InspectionOutcome | None


class RuleTestOut(BaseModel):
    rule: str
    version: int
    rows: int
    hits: int
    hit_rate: float | None
    inspected_hits: int
    seizures: int
    seizure_rate: float | None
    sample: list[SampleHit]


class ActivateIn(_In):
    version: int | None = Field(default=None, ge=1, description="Default: the latest version.")


class RuleWeek(BaseModel):
    week: dt.date
    versions: list[int]
    hits: int
    inspections: int
    seizures: int
    seizure_rate: float | None


class RulePerformance(BaseModel):
    rule: str
    weeks: list[RuleWeek]
    hits: int
    inspections: int
    seizures: int
    seizure_rate: float | None


# ------------------------------------------------------------------------------------------ scoring


class ScoreIn(_In):
    operation: str = Field(max_length=32)
    org_code: str | None = Field(default=None, max_length=32, description="Coordinator only: whose rules.")
    consignment: dict[str, Any]
    explain_top_k: int = Field(default=3, ge=0, le=10)


class Contribution(BaseModel):
    feature: str
    value: str
    contribution: float


class RuleHitOut(BaseModel):
    rule: str
    version: int
    weight: float


class ScoreOut(BaseModel):
    consignment_id: str
    score: float | None
    lane: Literal["GREEN", "AMBER", "RED"]
    rule_hits: list[RuleHitOut]
    rule_score: float
    explanation: list[Contribution]
    model_version: str | None


class ScoreRunIn(_In):
    org_code: str | None = Field(default=None, max_length=32)
    day: dt.date | None = None


class ScoreRunOut(BaseModel):
    scored: int
    model_version: str | None
    rules: list[str]


class StoredScoreOut(BaseModel):
    score: float | None
    model_version: str | None
    rule_hits: list[RuleHitOut]
    rule_score: float
    explanation: list[Contribution]
    scored_at: dt.datetime


# ------------------------------------------------------------------------------------------ selection


class SelectionIn(_In):
    day: dt.date
    capacity: str = Field(default="5%", max_length=64, description="'500', '2%', '20/office', '1%/office'")
    exploration_share: float = Field(default=0.1, ge=0, le=1)
    seed: int = Field(default=0, ge=0)
    org_code: str | None = Field(default=None, max_length=32)


class SelectionRow(BaseModel):
    consignment_id: str
    office: str
    channel: str
    origin_country: str
    hs_code: str
    description: str
    declared_value: float
    currency: str
    score: float | None
    lane: str
    reason: str | None
    rule_hits: list[RuleHitOut]
    explanation: list[Contribution]
    inspection: InspectionOutcome | None


class SelectionOut(BaseModel):
    id: int
    org_code: str
    day: dt.date
    capacity: str
    exploration_share: float
    model_version: str | None
    n_consignments: int
    n_selected: int
    created_by: str
    created_at: dt.datetime
    lanes: dict[str, int]
    rows: list[SelectionRow]


# ------------------------------------------------------------------------------------------ inspections


class InspectionIn(_In):
    outcome: InspectionOutcome
    case_id: int | None = Field(default=None, description="The case of the reporting module (seizures).")
    commodity_code: str | None = Field(default=None, max_length=24)
    note: str = Field(default="", max_length=2000)
    inspected_on: dt.date | None = None
    org_code: str | None = Field(default=None, max_length=32)

    @field_validator("commodity_code")
    @classmethod
    def _upper(cls, v: str | None) -> str | None:
        return v.upper() if v else None


class InspectionOut(BaseModel):
    consignment_id: str
    outcome: InspectionOutcome
    case_id: int | None
    commodity_code: str | None
    verification: str | None = None
    note: str
    inspected_on: dt.date
    recorded_by: str
    recorded_at: dt.datetime


# ------------------------------------------------------------------------------------------ models


class ModelOut(BaseModel):
    version: str
    #: the administration whose consignments trained it; None: the operation's pooled consignments
    org_code: str | None = None
    #: shown, with its metrics, to every member of the operation
    shared: bool = False
    #: whether the reader may share or unshare it (the coordinator; the owning administration's contact point)
    may_share: bool = False
    active: bool
    sha256: str
    metrics: dict[str, Any]
    registered_by: str
    created_at: dt.datetime


class ModelShareIn(_In):
    shared: bool


class RetrainOut(BaseModel):
    model_version: str
    org_code: str | None = None
    path: str
    rows: int
    labelled: int
    train_until: dt.date
    validation_from: dt.date
    validation: dict[str, Any]


class WeekPrecision(BaseModel):
    week: dt.date
    selected: int
    inspected: int
    seizures: int
    precision: float | None


#: Fewer seizures than this among a model's validation inspections: its precision and AUC are shown as
#: indicative only (two seizures make P@10 either 0 or a large number by chance).
MIN_VALIDATION_SEIZURES = 10


class PerformanceOut(BaseModel):
    weeks: list[WeekPrecision]
    rules: list[RulePerformance]
    models: list[ModelOut]
    #: see :data:`MIN_VALIDATION_SEIZURES`; models' ``metrics.validation.seizures`` counts them
    min_validation_seizures: int = MIN_VALIDATION_SEIZURES


# ------------------------------------------------------------------------------------------ proposals


class ProposeIn(_In):
    today: dt.date | None = None
    recent_days: int = Field(default=14, ge=1, le=120)
    baseline_days: int = Field(default=56, ge=1, le=730)
    alpha: float = Field(default=0.05, gt=0, lt=1)
    min_ratio: float = Field(default=1.5, ge=1)
    org_code: str | None = Field(default=None, max_length=32)


class ProposalOut(BaseModel):
    id: int
    org_code: str
    kind: str
    origin_country: str
    destination_country: str
    commodity_group: str
    expression: str
    weight: float
    rule: str | None
    evidence: dict[str, Any]
    status: ProposalStatus
    decided_by: str
    decided_at: dt.datetime | None
    created_at: dt.datetime


class ProposalDecisionOut(BaseModel):
    proposal: ProposalOut
    rule: RuleOut | None = None
