"""Cases, their seizures, versions of corrections, import batches and idempotency records."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    ForeignKey,
    Index,
    Integer,
    Numeric,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from .base import Base, TimestampMixin, UTCDateTime, str_enum, utcnow
from .enums import CaseStatus, Visibility


class Case(TimestampMixin, Base):
    """One interception reported by an administration, holding one or more seizures."""

    __tablename__ = "case_report"
    __table_args__ = (
        UniqueConstraint("operation_id", "reporting_org_id", "reference"),
        Index("ix_case_report_op_detected", "operation_id", "detected_on"),
        Index("ix_case_report_op_status", "operation_id", "status"),
        Index("ix_case_report_op_updated", "operation_id", "updated_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    # no index of its own: four indexes above start with it (migration 0009)
    operation_id: Mapped[int] = mapped_column(ForeignKey("operation.id", ondelete="RESTRICT"))
    reporting_org_id: Mapped[int] = mapped_column(
        ForeignKey("organisation.id", ondelete="RESTRICT"), index=True
    )
    reference: Mapped[str] = mapped_column(String(64))
    status: Mapped[CaseStatus] = mapped_column(str_enum(CaseStatus, "case_status"), default=CaseStatus.DRAFT)
    version: Mapped[int] = mapped_column(Integer, default=1)
    visibility: Mapped[Visibility] = mapped_column(str_enum(Visibility, "case_visibility"))

    detected_on: Mapped[dt.date] = mapped_column(Date)
    reporting_country: Mapped[str] = mapped_column(String(2), index=True)
    region_code: Mapped[str | None] = mapped_column(String(8), index=True)
    office: Mapped[str] = mapped_column(String(200), default="")
    place: Mapped[str] = mapped_column(String(200), default="")
    transport_mode: Mapped[str] = mapped_column(String(24))
    is_ecommerce: Mapped[bool] = mapped_column(Boolean, default=False)
    channel: Mapped[str] = mapped_column(String(24))
    departure_country: Mapped[str | None] = mapped_column(String(2))
    origin_country: Mapped[str | None] = mapped_column(String(2))
    destination_country: Mapped[str | None] = mapped_column(String(2))
    transit_countries: Mapped[str] = mapped_column(String(120), default="")
    detection_method: Mapped[str] = mapped_column(String(32))
    concealment: Mapped[str] = mapped_column(String(32), default="NONE")
    platform_type: Mapped[str | None] = mapped_column(String(24))
    platform_name: Mapped[str] = mapped_column(String(200), default="")
    consignee_name: Mapped[str] = mapped_column(String(200), default="")
    # data protection (migration 0008): set by ``stopnet purge`` when the name is erased
    consignee_pseudonym: Mapped[str | None] = mapped_column(String(32))
    personal_data_purged_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    notes: Mapped[str] = mapped_column(Text, default="")

    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("app_user.id", ondelete="SET NULL"))
    submitted_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    validated_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    validated_by_id: Mapped[int | None] = mapped_column(ForeignKey("app_user.id", ondelete="SET NULL"))
    import_batch_id: Mapped[int | None] = mapped_column(ForeignKey("import_batch.id", ondelete="SET NULL"))

    seizures: Mapped[list[Seizure]] = relationship(
        back_populates="case", cascade="all, delete-orphan", order_by="Seizure.line_no"
    )


class Seizure(TimestampMixin, Base):
    """Goods of one kind seized in a case."""

    __tablename__ = "seizure"
    __table_args__ = (
        UniqueConstraint("case_id", "line_no"),
        CheckConstraint("pieces >= 0", name="pieces_non_negative"),
        CheckConstraint("weight_kg >= 0", name="weight_non_negative"),
        CheckConstraint("value_amount >= 0", name="value_non_negative"),
        Index("ix_seizure_op_commodity", "operation_id", "commodity_code"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    # no single-column indexes: (case_id, line_no) and (operation_id, commodity_code) serve them (0009)
    case_id: Mapped[int] = mapped_column(ForeignKey("case_report.id", ondelete="CASCADE"))
    operation_id: Mapped[int] = mapped_column(ForeignKey("operation.id", ondelete="RESTRICT"))
    line_no: Mapped[int] = mapped_column(Integer)
    commodity_code: Mapped[str] = mapped_column(String(24))
    commodity_group: Mapped[str] = mapped_column(String(16))
    description: Mapped[str] = mapped_column(Text, default="")
    brand: Mapped[str] = mapped_column(String(120), default="")
    rights_holder: Mapped[str] = mapped_column(String(200), default="")
    hs_code: Mapped[str] = mapped_column(String(12), default="")
    pieces: Mapped[int] = mapped_column(BigInteger, default=0)
    weight_kg: Mapped[Decimal] = mapped_column(Numeric(14, 3), default=Decimal(0))
    value_amount: Mapped[Decimal | None] = mapped_column(Numeric(16, 2))
    currency: Mapped[str | None] = mapped_column(String(3))
    infringement_type: Mapped[str] = mapped_column(String(32))
    nature: Mapped[str] = mapped_column(String(16))

    case: Mapped[Case] = relationship(back_populates="seizures")


class CaseVersion(Base):
    """An immutable snapshot of a case and its seizures after each change (corrections never overwrite)."""

    __tablename__ = "case_version"
    __table_args__ = (UniqueConstraint("case_id", "version"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    # no index of its own: the unique (case_id, version) serves it (migration 0009)
    case_id: Mapped[int] = mapped_column(ForeignKey("case_report.id", ondelete="CASCADE"))
    version: Mapped[int] = mapped_column(Integer)
    action: Mapped[str] = mapped_column(String(24))
    reason: Mapped[str] = mapped_column(Text, default="")
    snapshot: Mapped[dict[str, Any]] = mapped_column(JSON)
    changed_by_id: Mapped[int | None] = mapped_column(ForeignKey("app_user.id", ondelete="SET NULL"))
    changed_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)


class ImportBatch(Base):
    """One bulk import file; the same file (by SHA-256) imported twice creates nothing new."""

    __tablename__ = "import_batch"
    __table_args__ = (UniqueConstraint("operation_id", "org_id", "sha256"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    operation_id: Mapped[int] = mapped_column(ForeignKey("operation.id", ondelete="CASCADE"), index=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("organisation.id", ondelete="CASCADE"))
    filename: Mapped[str] = mapped_column(String(255))
    sha256: Mapped[str] = mapped_column(String(64))
    row_count: Mapped[int] = mapped_column(Integer, default=0)
    cases_created: Mapped[int] = mapped_column(Integer, default=0)
    seizures_created: Mapped[int] = mapped_column(Integer, default=0)
    rows_unchanged: Mapped[int] = mapped_column(Integer, default=0)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("app_user.id", ondelete="SET NULL"))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)


class IdempotencyRecord(Base):
    """The stored response of an API create sent with an ``Idempotency-Key`` header."""

    __tablename__ = "idempotency_record"
    __table_args__ = (UniqueConstraint("org_id", "key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("organisation.id", ondelete="CASCADE"))
    key: Mapped[str] = mapped_column(String(128))
    method: Mapped[str] = mapped_column(String(8))
    path: Mapped[str] = mapped_column(String(255))
    request_hash: Mapped[str] = mapped_column(String(64))
    status_code: Mapped[int] = mapped_column(Integer)
    response: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
