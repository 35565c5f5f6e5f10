"""Operations, their phases, participants and contact points."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Date, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from .base import Base, TimestampMixin, str_enum
from .enums import OperationStatus, ParticipantRole, Visibility


class Operation(TimestampMixin, Base):
    __tablename__ = "operation"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    scope: Mapped[str] = mapped_column(Text, default="")
    starts_on: Mapped[dt.date] = mapped_column(Date)
    ends_on: Mapped[dt.date] = mapped_column(Date)
    status: Mapped[OperationStatus] = mapped_column(
        str_enum(OperationStatus, "operation_status"), default=OperationStatus.PLANNED
    )
    default_visibility: Mapped[Visibility] = mapped_column(
        str_enum(Visibility, "operation_visibility"), default=Visibility.PARTICIPANTS
    )
    coordinator_org_id: Mapped[int | None] = mapped_column(ForeignKey("organisation.id"))
    # data protection (migration 0008): days the consignee's name of a case is kept; None: no policy
    personal_data_retention_days: Mapped[int | None] = mapped_column(Integer)

    phases: Mapped[list[OperationPhase]] = relationship(
        back_populates="operation", cascade="all, delete-orphan", order_by="OperationPhase.starts_on"
    )
    participants: Mapped[list[Participant]] = relationship(
        back_populates="operation", cascade="all, delete-orphan"
    )
    contact_points: Mapped[list[ContactPoint]] = relationship(
        back_populates="operation", cascade="all, delete-orphan"
    )


class OperationPhase(Base):
    __tablename__ = "operation_phase"
    __table_args__ = (UniqueConstraint("operation_id", "name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    operation_id: Mapped[int] = mapped_column(ForeignKey("operation.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    starts_on: Mapped[dt.date] = mapped_column(Date)
    ends_on: Mapped[dt.date] = mapped_column(Date)
    description: Mapped[str] = mapped_column(Text, default="")
    accepts_reports: Mapped[bool] = mapped_column(default=False)

    operation: Mapped[Operation] = relationship(back_populates="phases")


class Participant(Base):
    __tablename__ = "operation_participant"
    __table_args__ = (UniqueConstraint("operation_id", "org_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    operation_id: Mapped[int] = mapped_column(ForeignKey("operation.id", ondelete="CASCADE"), index=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("organisation.id", ondelete="CASCADE"), index=True)
    role: Mapped[ParticipantRole] = mapped_column(str_enum(ParticipantRole, "participant_role"))

    operation: Mapped[Operation] = relationship(back_populates="participants")


class ContactPoint(TimestampMixin, Base):
    __tablename__ = "contact_point"

    id: Mapped[int] = mapped_column(primary_key=True)
    operation_id: Mapped[int] = mapped_column(ForeignKey("operation.id", ondelete="CASCADE"), index=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("organisation.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    function: Mapped[str] = mapped_column(String(200), default="")
    email: Mapped[str] = mapped_column(String(254), default="")
    phone: Mapped[str] = mapped_column(String(64), default="")
    languages: Mapped[str] = mapped_column(String(64), default="")

    operation: Mapped[Operation] = relationship(back_populates="contact_points")
