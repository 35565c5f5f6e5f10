"""Constants of the rights-holder services: roles, limits and the words they use."""

from __future__ import annotations

import datetime as dt
from typing import Literal

from stopnet.access import policy
from stopnet.db.models import (
    OrgKind,
    Role,
    utcnow,
)

PRIVATE_KINDS = (OrgKind.RIGHTS_HOLDER, OrgKind.PLATFORM)
CUSTOMS_ROLES = (Role.OFFICER, Role.CONTACT_POINT)
SHARED = policy.SHARED
STALE_AFTER = dt.timedelta(days=180)
MAX_ATTACHMENT_BYTES = 10 * 1024 * 1024
MAX_ATTACHMENTS = 20
FILES_DIR = "rightsholders"
GuideStatus = Literal["draft", "published", "withdrawn"]
OutreachScope = Literal["all", "own_brands", "own_administration"]


def _now(now: dt.datetime | None) -> dt.datetime:
    return (now or utcnow()).astimezone(dt.UTC)
