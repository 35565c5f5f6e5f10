"""Risk targeting: stored consignments, versioned risk profiles (rules), model versions, scores,
daily selections, inspection results and rule proposals.

Every row belongs to one operation and (except model versions) to one customs administration
(``org_id``): an administration sees only its own rows, the operation's coordinator sees all of them
(enforced in ``stopnet.targeting.service``). Parties of a consignment are stored pseudonymised only.
"""

from __future__ import annotations

import datetime as dt
import enum
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Date,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base, UTCDateTime, str_enum, utcnow


class RuleStatus(enum.StrEnum):
    DRAFT = "draft"  # never activated
    ACTIVE = "active"
    INACTIVE = "inactive"


class InspectionOutcome(enum.StrEnum):
    NOTHING_FOUND = "nothing_found"
    SEIZURE = "seizure"


class ProposalStatus(enum.StrEnum):
    OPEN = "open"
    ACCEPTED = "accepted"
    DISMISSED = "dismissed"


class Consignment(Base):
    """One postal item / manifest line of advance data (``stopnet.risk.consignments`` schema)."""

    __tablename__ = "tgt_consignment"
    __table_args__ = (
        UniqueConstraint("operation_id", "org_id", "consignment_id"),
        Index("ix_tgt_consignment_org_day", "operation_id", "org_id", "arrival_date"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    operation_id: Mapped[int] = mapped_column(ForeignKey("operation.id", ondelete="CASCADE"))
    org_id: Mapped[int] = mapped_column(ForeignKey("organisation.id", ondelete="CASCADE"), index=True)
    consignment_id: Mapped[str] = mapped_column(String(64))
    declared_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    arrival_date: Mapped[dt.date] = mapped_column(Date)
    channel: Mapped[str] = mapped_column(String(24))
    carrier: Mapped[str] = mapped_column(String(120))
    sender_id: Mapped[str] = mapped_column(String(64))
    consignee_id: Mapped[str] = mapped_column(String(64))
    origin_country: Mapped[str] = mapped_column(String(2))
    departure_country: Mapped[str] = mapped_column(String(2))
    destination_country: Mapped[str] = mapped_column(String(2))
    office: Mapped[str] = mapped_column(String(64))
    description: Mapped[str] = mapped_column(Text)
    hs_code: Mapped[str] = mapped_column(String(10))
    declared_value: Mapped[float] = mapped_column(Float)
    currency: Mapped[str] = mapped_column(String(3))
    weight_kg: Mapped[float] = mapped_column(Float)
    quantity: Mapped[int] = mapped_column(Integer)
    marketplace: Mapped[str | None] = mapped_column(String(120))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)


class TargetingRule(Base):
    """A risk profile of one administration; its text lives in :class:`TargetingRuleVersion` rows."""

    __tablename__ = "tgt_rule"
    __table_args__ = (UniqueConstraint("operation_id", "org_id", "code"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    operation_id: Mapped[int] = mapped_column(ForeignKey("operation.id", ondelete="CASCADE"), index=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("organisation.id", ondelete="CASCADE"), index=True)
    code: Mapped[str] = mapped_column(String(64))
    status: Mapped[RuleStatus] = mapped_column(
        str_enum(RuleStatus, "tgt_rule_status"), default=RuleStatus.DRAFT
    )
    latest_version: Mapped[int] = mapped_column(Integer, default=1)
    active_version: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)


class TargetingRuleVersion(Base):
    """One version of a rule: never changed once written (an edit writes the next version)."""

    __tablename__ = "tgt_rule_version"
    __table_args__ = (UniqueConstraint("rule_id", "version"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    rule_id: Mapped[int] = mapped_column(ForeignKey("tgt_rule.id", ondelete="CASCADE"), index=True)
    version: Mapped[int] = mapped_column(Integer)
    name: Mapped[str] = mapped_column(String(200))
    expression: Mapped[str] = mapped_column(Text)
    weight: Mapped[float] = mapped_column(Float, default=1.0)
    note: Mapped[str] = mapped_column(Text, default="")
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("app_user.id", ondelete="SET NULL"))
    created_by_label: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    tested_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    test_rows: Mapped[int | None] = mapped_column(Integer)
    test_hits: Mapped[int | None] = mapped_column(Integer)
    activated_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())


class TargetingModel(Base):
    """A registered model file (``RiskModel.save``) of one operation, trained on one administration's
    consignments (``org_id``) or on the operation's pooled ones (``org_id`` NULL). At most one is active per
    administration and one pooled; ``shared`` shows it (and its metrics) to every member of the operation."""

    __tablename__ = "tgt_model"
    __table_args__ = (UniqueConstraint("operation_id", "version"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    operation_id: Mapped[int] = mapped_column(ForeignKey("operation.id", ondelete="CASCADE"), index=True)
    org_id: Mapped[int | None] = mapped_column(
        ForeignKey("organisation.id", ondelete="CASCADE"), index=True, nullable=True
    )
    shared: Mapped[bool] = mapped_column(Boolean, default=False)
    version: Mapped[str] = mapped_column(String(200))
    path: Mapped[str] = mapped_column(Text)
    sha256: Mapped[str] = mapped_column(String(64))
    active: Mapped[bool] = mapped_column(Boolean, default=False)
    metrics: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    registered_by_label: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)


class ConsignmentScore(Base):
    """A score of a stored consignment: names the model version and the rule versions that hit."""

    __tablename__ = "tgt_score"

    id: Mapped[int] = mapped_column(primary_key=True)
    consignment_pk: Mapped[int] = mapped_column(
        ForeignKey("tgt_consignment.id", ondelete="CASCADE"), index=True
    )
    model_id: Mapped[int | None] = mapped_column(ForeignKey("tgt_model.id", ondelete="SET NULL"))
    model_version: Mapped[str | None] = mapped_column(String(200))
    score: Mapped[float | None] = mapped_column(Float)
    # [{"rule": code, "version": n, "weight": w}, ...]
    rule_hits: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    rule_score: Mapped[float] = mapped_column(Float, default=0.0)
    # [{"feature": name, "value": text, "contribution": log-odds}, ...]
    explanation: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    scored_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)


class TargetingSelection(Base):
    """One run of the day's selection for one administration (the latest run of a day is the current one)."""

    __tablename__ = "tgt_selection"
    __table_args__ = (Index("ix_tgt_selection_org_day", "operation_id", "org_id", "day"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    operation_id: Mapped[int] = mapped_column(ForeignKey("operation.id", ondelete="CASCADE"))
    org_id: Mapped[int] = mapped_column(ForeignKey("organisation.id", ondelete="CASCADE"))
    day: Mapped[dt.date] = mapped_column(Date)
    capacity: Mapped[str] = mapped_column(String(64))
    exploration_share: Mapped[float] = mapped_column(Float)
    seed: Mapped[int] = mapped_column(Integer, default=0)
    model_version: Mapped[str | None] = mapped_column(String(200))
    n_consignments: Mapped[int] = mapped_column(Integer)
    n_selected: Mapped[int] = mapped_column(Integer)
    created_by_label: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)


class SelectionItem(Base):
    __tablename__ = "tgt_selection_item"
    __table_args__ = (UniqueConstraint("selection_id", "consignment_pk"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    selection_id: Mapped[int] = mapped_column(ForeignKey("tgt_selection.id", ondelete="CASCADE"), index=True)
    consignment_pk: Mapped[int] = mapped_column(
        ForeignKey("tgt_consignment.id", ondelete="CASCADE"), index=True
    )
    score_id: Mapped[int | None] = mapped_column(ForeignKey("tgt_score.id", ondelete="SET NULL"))
    lane: Mapped[str] = mapped_column(String(8))
    reason: Mapped[str | None] = mapped_column(String(8))


class InspectionResult(Base):
    """What an inspection found: the label the model learns from (one result per consignment)."""

    __tablename__ = "tgt_inspection"

    id: Mapped[int] = mapped_column(primary_key=True)
    consignment_pk: Mapped[int] = mapped_column(
        ForeignKey("tgt_consignment.id", ondelete="CASCADE"), unique=True
    )
    outcome: Mapped[InspectionOutcome] = mapped_column(str_enum(InspectionOutcome, "tgt_inspection_outcome"))
    case_id: Mapped[int | None] = mapped_column(ForeignKey("case_report.id", ondelete="SET NULL"))
    commodity_code: Mapped[str | None] = mapped_column(String(24))
    verification_request_id: Mapped[int | None] = mapped_column(Integer)
    note: Mapped[str] = mapped_column(Text, default="")
    inspected_on: Mapped[dt.date] = mapped_column(Date)
    recorded_by_label: Mapped[str] = mapped_column(String(200), default="")
    recorded_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)


class RuleProposal(Base):
    """A new or changed rule proposed from trends, with its evidence; accepted (draft version) or dismissed."""

    __tablename__ = "tgt_proposal"

    id: Mapped[int] = mapped_column(primary_key=True)
    operation_id: Mapped[int] = mapped_column(ForeignKey("operation.id", ondelete="CASCADE"), index=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("organisation.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(8))  # new | change
    origin_country: Mapped[str] = mapped_column(String(2))
    destination_country: Mapped[str] = mapped_column(String(2))
    commodity_group: Mapped[str] = mapped_column(String(16))
    expression: Mapped[str] = mapped_column(Text)
    weight: Mapped[float] = mapped_column(Float, default=1.0)
    rule_id: Mapped[int | None] = mapped_column(ForeignKey("tgt_rule.id", ondelete="SET NULL"))
    evidence: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    status: Mapped[ProposalStatus] = mapped_column(
        str_enum(ProposalStatus, "tgt_proposal_status"), default=ProposalStatus.OPEN
    )
    decided_by_label: Mapped[str] = mapped_column(String(200), default="")
    decided_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
