"""Constants of sharing: limits and the words alerts and threads use."""

from __future__ import annotations

from stopnet.core.errors import ServiceError

EXCERPT = 200
MAX_MENTIONS = 20


class AttachmentCorrupt(ServiceError):
    """The stored bytes of an attachment no longer match its checksum."""

    status_code = 500
    code = "attachment_corrupt"
