"""Alerts, message threads, mentions, read state and attachments.

Every function takes the acting :class:`Principal` and checks it here, whatever the caller. Functions
flush; the request or command commits. Each change also records its live-feed event (``outbox``) and,
where someone must be told, its e-mails (``mail``), both written or sent only if the caller commits.

Who sees what (docs/live-feed.md):

* **alerts**: the sending organisation, the recipient organisations, and the operation's coordinators
  and platform admins (who oversee every alert). Only the sender's side sees who has acknowledged;
* **operation threads**: every participant of the operation except rights holders (and admins);
* **case threads**: whoever may read the case (``policy.can_read_case``), checked at every read;
* **attachments**: as their alert or message; before they are linked, their uploader's organisation.
"""

from __future__ import annotations

from .access import alert_read_clause, can_read_thread, feed_cursor, in_operation, oversees
from .alerts import (
    acknowledge_alert,
    alerts_out,
    get_alert,
    list_alerts,
    publish_alert,
    require_alert_publisher,
)
from .attachments import (
    EXTENSIONS,
    SIGNATURES,
    allowed_types,
    attachment_out,
    clean_filename,
    detect_type,
    get_attachment,
    read_attachment,
    storage_root,
    store_attachment,
)
from .constants import EXCERPT, MAX_MENTIONS, AttachmentCorrupt
from .threads import (
    MENTION,
    case_thread,
    create_thread,
    list_threads,
    mark_read,
    mentioned_handles,
    post_case_message,
    post_message,
    thread_detail,
    thread_operation,
    unread_total,
    visible_case,
)

__all__ = [
    "EXCERPT",
    "EXTENSIONS",
    "MAX_MENTIONS",
    "MENTION",
    "SIGNATURES",
    "AttachmentCorrupt",
    "acknowledge_alert",
    "alert_read_clause",
    "alerts_out",
    "allowed_types",
    "attachment_out",
    "can_read_thread",
    "case_thread",
    "clean_filename",
    "create_thread",
    "detect_type",
    "feed_cursor",
    "get_alert",
    "get_attachment",
    "in_operation",
    "list_alerts",
    "list_threads",
    "mark_read",
    "mentioned_handles",
    "oversees",
    "post_case_message",
    "post_message",
    "publish_alert",
    "read_attachment",
    "require_alert_publisher",
    "storage_root",
    "store_attachment",
    "thread_detail",
    "thread_operation",
    "unread_total",
    "visible_case",
]
