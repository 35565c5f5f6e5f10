"""Sharing: the outbox of live-feed events, alerts and their acknowledgements, message threads, mentions,
read state and attachments (stored outside the database, with their SHA-256)."""

from __future__ import annotations

import datetime as dt
import enum
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from .base import Base, UTCDateTime, str_enum, utcnow

# SQLite only auto-increments an INTEGER PRIMARY KEY; PostgreSQL gets a BIGINT identity.
BigId = BigInteger().with_variant(Integer(), "sqlite")


class AlertKind(enum.StrEnum):
    CONCEALMENT = "concealment"  # a new concealment method
    FALSIFIED_MEDICINE = "falsified_medicine"  # a dangerous falsified medicine
    SHIPPER = "shipper"  # a shipper, consignor or seller to watch
    OTHER = "other"


class AlertScope(enum.StrEnum):
    OPERATION = "operation"  # every participating administration and agency
    REGION = "region"  # the participants of one WCO region
    ADMINISTRATIONS = "administrations"  # chosen participants


class Audience(enum.StrEnum):
    """Who may receive an outbox event (evaluated per subscriber by ``sharing.feed``)."""

    CASE = "case"  # whoever may read the case (``policy.case_read_clause`` on the case_* columns)
    ORGS = "orgs"  # the organisations listed in ``org_ids``
    OPERATION = "operation"  # every participant of the operation except rights holders


class OutboxEvent(Base):
    """One event of the live feed, written in the transaction of the change it describes.

    ``id`` is the SSE event id: ids are allocated in commit order (``sharing.outbox`` takes a
    transaction-level lock on PostgreSQL just before inserting; SQLite has one writer at a time), so a
    reader that has seen id N will never see a smaller id commit later. The ``case_*`` columns are the
    case's visibility attributes at the time of the event; ``payload`` holds no personal data.
    """

    __tablename__ = "outbox_event"
    __table_args__ = (
        Index("ix_outbox_event_op_id", "operation_id", "id"),
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    operation_id: Mapped[int] = mapped_column(ForeignKey("operation.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(32))
    audience: Mapped[Audience] = mapped_column(str_enum(Audience, "outbox_audience"))
    case_id: Mapped[int | None] = mapped_column(Integer)
    case_org_id: Mapped[int | None] = mapped_column(Integer)
    case_status: Mapped[str | None] = mapped_column(String(16))
    case_visibility: Mapped[str | None] = mapped_column(String(16))
    case_region: Mapped[str | None] = mapped_column(String(8))
    org_ids: Mapped[list[int]] = mapped_column(JSON, default=list)
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)


class Alert(Base):
    """An alert published by a coordinator or an analyst to the operation, a region or administrations."""

    __tablename__ = "alert"
    __table_args__ = (Index("ix_alert_op_created", "operation_id", "created_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    operation_id: Mapped[int] = mapped_column(ForeignKey("operation.id", ondelete="CASCADE"))
    sender_org_id: Mapped[int] = mapped_column(ForeignKey("organisation.id", ondelete="RESTRICT"), index=True)
    sender_user_id: Mapped[int | None] = mapped_column(ForeignKey("app_user.id", ondelete="SET NULL"))
    kind: Mapped[AlertKind] = mapped_column(str_enum(AlertKind, "alert_kind"))
    scope: Mapped[AlertScope] = mapped_column(str_enum(AlertScope, "alert_scope"))
    region_code: Mapped[str | None] = mapped_column(String(8))
    title: Mapped[str] = mapped_column(String(200))
    body: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)

    recipients: Mapped[list[AlertRecipient]] = relationship(
        back_populates="alert", cascade="all, delete-orphan", order_by="AlertRecipient.id"
    )


class AlertRecipient(Base):
    """One recipient organisation of an alert, and its acknowledgement."""

    __tablename__ = "alert_recipient"
    __table_args__ = (UniqueConstraint("alert_id", "org_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    alert_id: Mapped[int] = mapped_column(ForeignKey("alert.id", ondelete="CASCADE"), index=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("organisation.id", ondelete="CASCADE"), index=True)
    acknowledged_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    acknowledged_by_id: Mapped[int | None] = mapped_column(ForeignKey("app_user.id", ondelete="SET NULL"))

    alert: Mapped[Alert] = relationship(back_populates="recipients")


class Thread(Base):
    """A conversation of an operation, or the one conversation of a case (``case_id`` set)."""

    __tablename__ = "message_thread"
    __table_args__ = (Index("ix_message_thread_op_last", "operation_id", "last_message_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    operation_id: Mapped[int] = mapped_column(ForeignKey("operation.id", ondelete="CASCADE"))
    case_id: Mapped[int | None] = mapped_column(ForeignKey("case_report.id", ondelete="CASCADE"), unique=True)
    title: Mapped[str] = mapped_column(String(200))
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("app_user.id", ondelete="SET NULL"))
    created_by_org_id: Mapped[int] = mapped_column(ForeignKey("organisation.id", ondelete="RESTRICT"))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    last_message_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)


class Message(Base):
    __tablename__ = "message"
    __table_args__ = (Index("ix_message_thread_id", "thread_id", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    thread_id: Mapped[int] = mapped_column(ForeignKey("message_thread.id", ondelete="CASCADE"))
    author_user_id: Mapped[int | None] = mapped_column(ForeignKey("app_user.id", ondelete="SET NULL"))
    author_org_id: Mapped[int] = mapped_column(ForeignKey("organisation.id", ondelete="RESTRICT"))
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)


class Mention(Base):
    """A user named with ``@`` in a message (only users who may read the thread are mentioned)."""

    __tablename__ = "message_mention"
    __table_args__ = (UniqueConstraint("message_id", "user_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    message_id: Mapped[int] = mapped_column(ForeignKey("message.id", ondelete="CASCADE"))
    user_id: Mapped[int] = mapped_column(ForeignKey("app_user.id", ondelete="CASCADE"), index=True)


class ReadState(Base):
    """How far a user has read a thread."""

    __tablename__ = "thread_read_state"
    __table_args__ = (UniqueConstraint("thread_id", "user_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    thread_id: Mapped[int] = mapped_column(ForeignKey("message_thread.id", ondelete="CASCADE"))
    user_id: Mapped[int] = mapped_column(ForeignKey("app_user.id", ondelete="CASCADE"), index=True)
    last_read_message_id: Mapped[int] = mapped_column(Integer, default=0)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)


class Attachment(Base):
    """A file attached to an alert or a message; the bytes live under ``data_dir`` (``storage_path``).

    Uploaded first (then only its uploader's organisation sees it), linked when the alert or message
    is posted; from then on it is visible to whoever may read that alert or message.
    """

    __tablename__ = "attachment"

    id: Mapped[int] = mapped_column(primary_key=True)
    operation_id: Mapped[int] = mapped_column(ForeignKey("operation.id", ondelete="CASCADE"), index=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("organisation.id", ondelete="RESTRICT"))
    uploaded_by_id: Mapped[int | None] = mapped_column(ForeignKey("app_user.id", ondelete="SET NULL"))
    alert_id: Mapped[int | None] = mapped_column(ForeignKey("alert.id", ondelete="CASCADE"), index=True)
    message_id: Mapped[int | None] = mapped_column(ForeignKey("message.id", ondelete="CASCADE"), index=True)
    filename: Mapped[str] = mapped_column(String(255))
    content_type: Mapped[str] = mapped_column(String(100))
    size: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64))
    storage_path: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
