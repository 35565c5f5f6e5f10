"""Rights holders and online platforms: brands, identification guides, contacts, verification requests.

Seizure reports are never changed by this module: a seizure is linked to a registered brand through
:class:`BrandAlias` (the normalised spellings of the brand name), see ``stopnet.rightsholders.service``.
"""

from __future__ import annotations

import datetime as dt
import enum

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Date,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from .base import Base, TimestampMixin, UTCDateTime, str_enum, utcnow


class BrandStatus(enum.StrEnum):
    PENDING = "pending"  # registered by the rights holder, waiting for the coordinating unit
    APPROVED = "approved"
    REJECTED = "rejected"


class GuideKind(enum.StrEnum):
    PRODUCT_ID = "product_id"  # how to tell genuine goods from fakes (rights holders)
    RISK_INFO = "risk_info"  # risk information from online platforms and express carriers


class VerificationStatus(enum.StrEnum):
    OPEN = "open"
    ANSWERED = "answered"
    WITHDRAWN = "withdrawn"


class VerificationAnswer(enum.StrEnum):
    GENUINE = "genuine"
    COUNTERFEIT = "counterfeit"
    INCONCLUSIVE = "inconclusive"


class Brand(TimestampMixin, Base):
    """A brand registered by a rights holder; officers see it once the coordinating unit approves it."""

    __tablename__ = "rh_brand"
    __table_args__ = (UniqueConstraint("owner_org_id", "name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    owner_org_id: Mapped[int] = mapped_column(ForeignKey("organisation.id", ondelete="RESTRICT"), index=True)
    name: Mapped[str] = mapped_column(String(120))
    status: Mapped[BrandStatus] = mapped_column(
        str_enum(BrandStatus, "rh_brand_status"), default=BrandStatus.PENDING, index=True
    )
    description: Mapped[str] = mapped_column(Text, default="")
    product_lines: Mapped[str] = mapped_column(Text, default="")  # one per line
    hs_codes: Mapped[str] = mapped_column(String(400), default="")  # space-separated digits
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("app_user.id", ondelete="SET NULL"))
    decided_by_id: Mapped[int | None] = mapped_column(ForeignKey("app_user.id", ondelete="SET NULL"))
    decided_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    decision_note: Mapped[str] = mapped_column(Text, default="")

    trademarks: Mapped[list[Trademark]] = relationship(
        back_populates="brand", cascade="all, delete-orphan", order_by="Trademark.id"
    )
    aliases: Mapped[list[BrandAlias]] = relationship(
        back_populates="brand", cascade="all, delete-orphan", order_by="BrandAlias.id"
    )
    representatives: Mapped[list[Representative]] = relationship(
        back_populates="brand", cascade="all, delete-orphan", order_by="Representative.id"
    )
    contacts: Mapped[list[BrandContact]] = relationship(
        back_populates="brand", cascade="all, delete-orphan", order_by="BrandContact.id"
    )


class Trademark(Base):
    __tablename__ = "rh_trademark"

    id: Mapped[int] = mapped_column(primary_key=True)
    brand_id: Mapped[int] = mapped_column(ForeignKey("rh_brand.id", ondelete="CASCADE"), index=True)
    mark: Mapped[str] = mapped_column(String(200))
    registration_number: Mapped[str] = mapped_column(String(64))
    territory: Mapped[str] = mapped_column(String(16))  # ISO country, EU, WO (international), …
    office: Mapped[str] = mapped_column(String(64), default="")  # EUIPO, INPI, USPTO, WIPO, …
    classes: Mapped[str] = mapped_column(String(64), default="")  # Nice classes
    registered_on: Mapped[dt.date | None] = mapped_column(Date)
    expires_on: Mapped[dt.date | None] = mapped_column(Date)

    brand: Mapped[Brand] = relationship(back_populates="trademarks")


class BrandAlias(Base):
    """A spelling of the brand as officers type it in seizure reports, stored normalised for matching."""

    __tablename__ = "rh_brand_alias"
    __table_args__ = (UniqueConstraint("brand_id", "normalised"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    brand_id: Mapped[int] = mapped_column(ForeignKey("rh_brand.id", ondelete="CASCADE"), index=True)
    alias: Mapped[str] = mapped_column(String(120))
    normalised: Mapped[str] = mapped_column(String(120), index=True)

    brand: Mapped[Brand] = relationship(back_populates="aliases")


class Representative(Base):
    """Someone mandated to act for the brand (in-house team, law firm, investigator)."""

    __tablename__ = "rh_representative"

    id: Mapped[int] = mapped_column(primary_key=True)
    brand_id: Mapped[int] = mapped_column(ForeignKey("rh_brand.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    firm: Mapped[str] = mapped_column(String(200), default="")
    email: Mapped[str] = mapped_column(String(254), default="")
    phone: Mapped[str] = mapped_column(String(64), default="")
    mandate: Mapped[str] = mapped_column(String(200), default="")
    territories: Mapped[str] = mapped_column(String(120), default="")

    brand: Mapped[Brand] = relationship(back_populates="representatives")


class BrandContact(TimestampMixin, Base):
    """The contact point of a brand for one territory (``*``: everywhere else)."""

    __tablename__ = "rh_brand_contact"

    id: Mapped[int] = mapped_column(primary_key=True)
    brand_id: Mapped[int] = mapped_column(ForeignKey("rh_brand.id", ondelete="CASCADE"), index=True)
    territory: Mapped[str] = mapped_column(String(8), default="*")
    name: Mapped[str] = mapped_column(String(200))
    function: Mapped[str] = mapped_column(String(200), default="")
    email: Mapped[str] = mapped_column(String(254), default="")
    phone: Mapped[str] = mapped_column(String(64), default="")
    channel: Mapped[str] = mapped_column(String(200), default="")  # how to reach them
    languages: Mapped[str] = mapped_column(String(64), default="")
    response_hours: Mapped[int | None] = mapped_column(Integer)  # usual response time
    last_confirmed_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    confirmed_by_id: Mapped[int | None] = mapped_column(ForeignKey("app_user.id", ondelete="SET NULL"))

    brand: Mapped[Brand] = relationship(back_populates="contacts")


class Guide(TimestampMixin, Base):
    """A product-identification guide or a platform's risk information; its content lives in versions."""

    __tablename__ = "rh_guide"

    id: Mapped[int] = mapped_column(primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("organisation.id", ondelete="RESTRICT"), index=True)
    brand_id: Mapped[int | None] = mapped_column(ForeignKey("rh_brand.id", ondelete="RESTRICT"), index=True)
    kind: Mapped[GuideKind] = mapped_column(str_enum(GuideKind, "rh_guide_kind"))
    latest_version: Mapped[int] = mapped_column(Integer, default=1)
    published_version: Mapped[int | None] = mapped_column(Integer)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("app_user.id", ondelete="SET NULL"))

    versions: Mapped[list[GuideVersion]] = relationship(
        back_populates="guide", cascade="all, delete-orphan", order_by="GuideVersion.version"
    )


class GuideVersion(Base):
    """One immutable edit of a guide; a version with no ``published_at`` is a draft."""

    __tablename__ = "rh_guide_version"
    __table_args__ = (UniqueConstraint("guide_id", "version"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    guide_id: Mapped[int] = mapped_column(ForeignKey("rh_guide.id", ondelete="CASCADE"), index=True)
    version: Mapped[int] = mapped_column(Integer)
    title: Mapped[str] = mapped_column(String(200))
    summary: Mapped[str] = mapped_column(Text, default="")
    genuine_features: Mapped[str] = mapped_column(Text, default="")
    packaging: Mapped[str] = mapped_column(Text, default="")
    fake_indicators: Mapped[str] = mapped_column(Text, default="")
    products: Mapped[str] = mapped_column(Text, default="")  # one per line
    hs_codes: Mapped[str] = mapped_column(String(400), default="")  # space-separated digits
    valid_from: Mapped[dt.date | None] = mapped_column(Date)
    valid_until: Mapped[dt.date | None] = mapped_column(Date)
    change_note: Mapped[str] = mapped_column(String(500), default="")
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("app_user.id", ondelete="SET NULL"))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    published_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    published_by_id: Mapped[int | None] = mapped_column(ForeignKey("app_user.id", ondelete="SET NULL"))

    guide: Mapped[Guide] = relationship(back_populates="versions")
    attachments: Mapped[list[RightsFile]] = relationship(
        back_populates="guide_version", cascade="all, delete-orphan", order_by="RightsFile.id"
    )


class OperationVerificationSetting(TimestampMixin, Base):
    """Per-operation settings of verification requests (default: 10 working days to answer)."""

    __tablename__ = "rh_operation_setting"

    id: Mapped[int] = mapped_column(primary_key=True)
    operation_id: Mapped[int] = mapped_column(ForeignKey("operation.id", ondelete="CASCADE"), unique=True)
    response_working_days: Mapped[int] = mapped_column(Integer)
    updated_by_id: Mapped[int | None] = mapped_column(ForeignKey("app_user.id", ondelete="SET NULL"))


class VerificationRequest(TimestampMixin, Base):
    """An officer asks a brand's rights holder whether suspect goods are genuine (no personal data)."""

    __tablename__ = "rh_verification_request"
    __table_args__ = (
        Index("ix_rh_verification_request_brand_status", "brand_id", "status"),
        CheckConstraint("pieces >= 0", name="pieces_non_negative"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    operation_id: Mapped[int] = mapped_column(ForeignKey("operation.id", ondelete="RESTRICT"), index=True)
    brand_id: Mapped[int] = mapped_column(ForeignKey("rh_brand.id", ondelete="RESTRICT"))
    requesting_org_id: Mapped[int] = mapped_column(
        ForeignKey("organisation.id", ondelete="RESTRICT"), index=True
    )
    requested_by_id: Mapped[int | None] = mapped_column(ForeignKey("app_user.id", ondelete="SET NULL"))
    case_id: Mapped[int | None] = mapped_column(ForeignKey("case_report.id", ondelete="SET NULL"), index=True)
    seizure_id: Mapped[int | None] = mapped_column(ForeignKey("seizure.id", ondelete="SET NULL"))
    status: Mapped[VerificationStatus] = mapped_column(
        str_enum(VerificationStatus, "rh_verification_status"), default=VerificationStatus.OPEN
    )
    product: Mapped[str] = mapped_column(String(200))
    details: Mapped[str] = mapped_column(Text, default="")
    hs_code: Mapped[str] = mapped_column(String(12), default="")
    pieces: Mapped[int | None] = mapped_column(BigInteger)
    origin_country: Mapped[str | None] = mapped_column(String(2))
    departure_country: Mapped[str | None] = mapped_column(String(2))
    detected_on: Mapped[dt.date | None] = mapped_column(Date)
    sent_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    working_days: Mapped[int] = mapped_column(Integer)
    due_on: Mapped[dt.date] = mapped_column(Date, index=True)
    answer: Mapped[VerificationAnswer | None] = mapped_column(
        str_enum(VerificationAnswer, "rh_verification_answer")
    )
    answer_note: Mapped[str] = mapped_column(Text, default="")
    answered_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), index=True)
    answered_by_id: Mapped[int | None] = mapped_column(ForeignKey("app_user.id", ondelete="SET NULL"))

    attachments: Mapped[list[RightsFile]] = relationship(
        back_populates="request", cascade="all, delete-orphan", order_by="RightsFile.id"
    )


class RightsFile(Base):
    """A photo or PDF of a guide version or of a verification request; the file is stored on disk
    under ``data_dir/rightsholders/`` by its SHA-256 (the same file is stored once)."""

    __tablename__ = "rh_attachment"
    __table_args__ = (
        CheckConstraint("(guide_version_id IS NULL) <> (request_id IS NULL)", name="one_owner"),
        CheckConstraint("size_bytes >= 0", name="size_non_negative"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    guide_version_id: Mapped[int | None] = mapped_column(
        ForeignKey("rh_guide_version.id", ondelete="CASCADE"), index=True
    )
    request_id: Mapped[int | None] = mapped_column(
        ForeignKey("rh_verification_request.id", ondelete="CASCADE"), index=True
    )
    org_id: Mapped[int] = mapped_column(ForeignKey("organisation.id", ondelete="RESTRICT"))
    filename: Mapped[str] = mapped_column(String(255))
    content_type: Mapped[str] = mapped_column(String(64))
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64), index=True)
    uploaded_by_id: Mapped[int | None] = mapped_column(ForeignKey("app_user.id", ondelete="SET NULL"))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)

    guide_version: Mapped[GuideVersion | None] = relationship(back_populates="attachments")
    request: Mapped[VerificationRequest | None] = relationship(back_populates="attachments")
