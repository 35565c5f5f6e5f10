"""Rights holders and platforms: brands, guides, contact points, verification requests and figures.

Every function that acts for someone takes the acting :class:`Principal` and checks it here, whatever
the caller (API, page, CLI). Functions flush, never commit. Time is never read from the wall clock
when a caller passes ``now`` (tests and replays control it); ``now=None`` means "now".

Who sees what (docs/rights-holders.md):

* private-sector organisations (``OrgKind.RIGHTS_HOLDER`` / ``OrgKind.PLATFORM``) see only their own
  brands, guides (drafts included), contact points and the verification requests about their brands,
  never a case, a case reference, a consignee or another holder's data;
* public-sector users (customs, coordinating unit, RILO, partners) see approved brands and published
  guides; verification requests are seen by the requesting administration, the brand's holder and the
  operation's coordinating unit.
"""

from __future__ import annotations

from .access import is_coordinator_of, is_private
from .brand_seizures import brands_for_seizures, holder_case_clause, holder_seizures, reported_brand_texts
from .brands import (
    add_contact,
    alias_conflicts,
    brand_out,
    brand_read_clause,
    brand_summary,
    confirm_contact,
    contact_out,
    contacts_for,
    decide_brand,
    delete_contact,
    get_brand,
    is_stale,
    list_brands,
    normalise_brand,
    org_codes,
    register_brand,
    update_contact,
)
from .case_page import case_brand_lines
from .constants import (
    CUSTOMS_ROLES,
    FILES_DIR,
    MAX_ATTACHMENT_BYTES,
    MAX_ATTACHMENTS,
    PRIVATE_KINDS,
    SHARED,
    STALE_AFTER,
    GuideStatus,
    OutreachScope,
)
from .figures import outreach
from .files import StoredFile, attachment_out, file_path, sniff_type, store_file
from .guides import (
    add_guide_attachment,
    create_guide,
    edit_guide,
    get_attachment,
    get_guide,
    guide_out,
    guide_versions,
    publish_guide,
    search_guides,
    withdraw_guide,
)
from .verification import (
    VerificationLabel,
    add_request_attachment,
    answer_request,
    case_verifications,
    create_request,
    get_request,
    is_request_overdue,
    list_requests,
    request_out,
    request_read_clause,
    response_working_days,
    set_response_working_days,
    verification_labels,
    withdraw_request,
)

__all__ = [
    "CUSTOMS_ROLES",
    "FILES_DIR",
    "MAX_ATTACHMENTS",
    "MAX_ATTACHMENT_BYTES",
    "PRIVATE_KINDS",
    "SHARED",
    "STALE_AFTER",
    "GuideStatus",
    "OutreachScope",
    "StoredFile",
    "VerificationLabel",
    "add_contact",
    "add_guide_attachment",
    "add_request_attachment",
    "alias_conflicts",
    "answer_request",
    "attachment_out",
    "brand_out",
    "brand_read_clause",
    "brand_summary",
    "brands_for_seizures",
    "case_brand_lines",
    "case_verifications",
    "confirm_contact",
    "contact_out",
    "contacts_for",
    "create_guide",
    "create_request",
    "decide_brand",
    "delete_contact",
    "edit_guide",
    "file_path",
    "get_attachment",
    "get_brand",
    "get_guide",
    "get_request",
    "guide_out",
    "guide_versions",
    "holder_case_clause",
    "holder_seizures",
    "is_coordinator_of",
    "is_private",
    "is_request_overdue",
    "is_stale",
    "list_brands",
    "list_requests",
    "normalise_brand",
    "org_codes",
    "outreach",
    "publish_guide",
    "register_brand",
    "reported_brand_texts",
    "request_out",
    "request_read_clause",
    "response_working_days",
    "search_guides",
    "set_response_working_days",
    "sniff_type",
    "store_file",
    "update_contact",
    "verification_labels",
    "withdraw_guide",
    "withdraw_request",
]
