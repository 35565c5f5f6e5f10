"""API schemas of alerts, messages and attachments (the tables are in ``db/models/sharing.py``)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from stopnet.core.validation import rule_error
from stopnet.db.models.sharing import AlertKind, AlertScope

Title = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
Body = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=10_000)]
OptionalBody = Annotated[str, StringConstraints(strip_whitespace=True, max_length=10_000)]
OrgCode = Annotated[str, StringConstraints(strip_whitespace=True, to_upper=True, min_length=1, max_length=32)]

MAX_ATTACHMENTS = 10


class AttachmentOut(BaseModel):
    id: int
    filename: str
    content_type: str
    size: int
    sha256: str
    url: str
    created_at: dt.datetime


class AlertCreate(BaseModel):
    """An alert to the whole operation, one region's participants, or chosen administrations."""

    model_config = ConfigDict(extra="forbid")

    kind: AlertKind
    title: Title
    body: OptionalBody = ""
    scope: AlertScope = AlertScope.OPERATION
    region: Annotated[str | None, StringConstraints(strip_whitespace=True, to_upper=True, max_length=8)] = (
        None
    )
    administrations: list[OrgCode] = Field(default_factory=list, max_length=500)
    attachments: list[int] = Field(default_factory=list, max_length=MAX_ATTACHMENTS)

    @model_validator(mode="after")
    def _scope_needs(self) -> AlertCreate:
        if self.scope is AlertScope.REGION and not self.region:
            raise rule_error("AlertCreate", "region", "required", "a regional alert names its region")
        if self.scope is AlertScope.ADMINISTRATIONS and not self.administrations:
            raise rule_error("AlertCreate", "administrations", "required", "name at least one administration")
        if self.scope is not AlertScope.REGION:
            self.region = None
        if self.scope is not AlertScope.ADMINISTRATIONS:
            self.administrations = []
        return self


class RecipientOut(BaseModel):
    org: str
    org_name: str
    acknowledged_at: dt.datetime | None
    acknowledged_by: str | None = None


class AlertOut(BaseModel):
    id: int
    operation: str
    kind: AlertKind
    scope: AlertScope
    region: str | None
    title: str
    body: str
    sender_org: str
    sender: str | None
    created_at: dt.datetime
    attachments: list[AttachmentOut]
    is_sender: bool = Field(description="The viewer's organisation sent it (or oversees the operation).")
    acknowledged_at: dt.datetime | None = Field(
        None, description="When the viewer's organisation acknowledged it (recipients only)."
    )
    can_acknowledge: bool = False
    recipient_count: int
    pending_count: int | None = Field(None, description="Recipients yet to acknowledge (sender only).")
    recipients: list[RecipientOut] | None = Field(
        None, description="Each recipient's acknowledgement (sender only)."
    )


class AlertPage(BaseModel):
    items: list[AlertOut]
    total: int
    page: int
    page_size: int


class ThreadCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    title: Title
    body: Body
    attachments: list[int] = Field(default_factory=list, max_length=MAX_ATTACHMENTS)


class MessageCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    body: Body
    attachments: list[int] = Field(default_factory=list, max_length=MAX_ATTACHMENTS)


class MentionOut(BaseModel):
    user: str
    org: str


class MessageOut(BaseModel):
    id: int
    thread_id: int
    author: str | None
    author_org: str
    body: str
    created_at: dt.datetime
    mentions: list[MentionOut]
    attachments: list[AttachmentOut]


class ThreadOut(BaseModel):
    id: int
    operation: str
    case_id: int | None
    case_reference: str | None
    title: str
    created_at: dt.datetime
    last_message_at: dt.datetime
    message_count: int
    unread: int
    url: str


class ThreadDetail(ThreadOut):
    last_read_message_id: int
    messages: list[MessageOut]


class ReadMark(BaseModel):
    model_config = ConfigDict(extra="forbid")

    last_read_message_id: int | None = Field(
        None, ge=0, description="Read up to this message (default: the thread's latest)."
    )


class ReadStateOut(BaseModel):
    thread_id: int
    last_read_message_id: int
    unread: int


class FeedEventOut(BaseModel):
    """An event of the live feed as the activity page lists it (the SSE ``data`` field)."""

    model_config = ConfigDict(extra="allow")

    id: int
    type: str
    at: str | None = None
