"""Pydantic schemas of data protection: an operation's retention policy, a purge report and the overview.

Used by the API (``/api/v1/operations/{code}/data-protection``), ``stopnet retention`` / ``stopnet purge``
and :mod:`stopnet.maintenance.service.purge`.
"""

from __future__ import annotations

import datetime as dt

from pydantic import BaseModel, ConfigDict, Field

MAX_RETENTION_DAYS = 3650  # ten years: anything longer is a mistake, not a policy


class RetentionUpdate(BaseModel):
    """The retention policy of an operation's personal data."""

    model_config = ConfigDict(extra="forbid")

    personal_data_retention_days: int | None = Field(
        ge=1,
        le=MAX_RETENTION_DAYS,
        description="Days the consignee's name of a case is kept after the case is recorded; "
        "null: no policy (nothing is purged).",
    )


class PurgeReport(BaseModel):
    """What a purge removed (or, with ``dry_run``, would remove)."""

    operation: str
    personal_data_retention_days: int | None
    cutoff: dt.datetime | None = Field(description="Cases recorded before this instant are purged.")
    dry_run: bool
    cases_examined: int = Field(description="Cases older than the cutoff not purged yet (or named again).")
    consignee_names_removed: int = Field(
        description="Cases whose consignee's name was replaced by a pseudonym."
    )
    case_versions_scrubbed: int = Field(description="Stored versions of those cases that held the name.")
    idempotency_records_scrubbed: int = Field(description="Stored API answers that held the name.")


class DataProtectionOut(BaseModel):
    """An operation's policy, and what a purge would remove now."""

    operation: str
    personal_data_retention_days: int | None
    cases_purged: int = Field(description="Cases whose personal data has been purged so far.")
    pending: PurgeReport
