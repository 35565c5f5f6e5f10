"""Schemas of the operations API."""

from __future__ import annotations

import datetime as dt

from pydantic import BaseModel, ConfigDict, Field, model_validator

from stopnet.db.models import OperationStatus, ParticipantRole, Visibility


class PhaseIn(BaseModel):
    name: str = Field(min_length=1, max_length=100)
    starts_on: dt.date
    ends_on: dt.date
    description: str = ""
    accepts_reports: bool = False

    @model_validator(mode="after")
    def _order(self) -> PhaseIn:
        if self.ends_on < self.starts_on:
            raise ValueError("ends_on is before starts_on")
        return self


class OperationCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    code: str = Field(min_length=2, max_length=32, pattern=r"^[A-Z0-9][A-Z0-9-]*$")
    name: str = Field(min_length=2, max_length=200)
    scope: str = ""
    starts_on: dt.date
    ends_on: dt.date
    default_visibility: Visibility = Visibility.PARTICIPANTS
    phases: list[PhaseIn] = Field(default_factory=list)

    @model_validator(mode="after")
    def _order(self) -> OperationCreate:
        if self.ends_on < self.starts_on:
            raise ValueError("ends_on is before starts_on")
        return self


class PhaseOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    name: str
    starts_on: dt.date
    ends_on: dt.date
    description: str
    accepts_reports: bool


class ParticipantOut(BaseModel):
    org_code: str
    org_name: str
    org_kind: str
    country_code: str | None
    region_code: str | None
    role: ParticipantRole


class ContactPointOut(BaseModel):
    org_code: str
    name: str
    function: str
    email: str
    phone: str
    languages: str


class OperationOut(BaseModel):
    code: str
    name: str
    scope: str
    starts_on: dt.date
    ends_on: dt.date
    status: OperationStatus
    default_visibility: Visibility
    coordinator: str | None
    phases: list[PhaseOut]
    participant_count: int
    member_count: int


class OperationDetail(OperationOut):
    participants: list[ParticipantOut]
    contact_points: list[ContactPointOut]
