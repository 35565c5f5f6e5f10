"""Pydantic schemas of the audit trail's browser: the filters, one entry and a page of entries.

Shared by the API (``GET /api/v1/audit``), the ``/audit`` page and :func:`stopnet.audit.service.search_entries`.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from pydantic import BaseModel, Field


class AuditFilters(BaseModel):
    action: str | None = Field(default=None, max_length=48)
    actor: str | None = Field(default=None, max_length=254)
    org: str | None = Field(default=None, max_length=32)
    object_type: str | None = Field(default=None, max_length=48)
    object_id: str | None = Field(default=None, max_length=64)
    date_from: dt.date | None = None
    date_to: dt.date | None = None


class AuditEntryOut(BaseModel):
    id: int
    at: dt.datetime
    actor_label: str
    actor_user_id: int | None
    actor_org: str | None
    action: str
    object_type: str
    object_id: str
    details: dict[str, Any]
    prev_hash: str
    entry_hash: str


class AuditPage(BaseModel):
    items: list[AuditEntryOut]
    total: int
    page: int
    page_size: int
