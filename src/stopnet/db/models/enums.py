"""Enumerations stored in the database (their values are the stored strings)."""

from __future__ import annotations

import enum


class OrgKind(enum.StrEnum):
    CUSTOMS = "CUSTOMS"
    COORDINATOR = "COORDINATOR"
    RILO = "RILO"
    PARTNER = "PARTNER"
    RIGHTS_HOLDER = "RIGHTS_HOLDER"
    PLATFORM = "PLATFORM"


class Role(enum.StrEnum):
    """What a user may do; the permission matrix is in docs/permissions.md."""

    ADMIN = "admin"  # platform administrator
    COORDINATOR = "coordinator"  # operation coordinator (coordinating unit)
    ANALYST = "analyst"  # regional analyst (RILO): sees its region
    CONTACT_POINT = "contact_point"  # national contact point: own administration, validates
    OFFICER = "officer"  # customs officer: reports for own administration
    PARTNER = "partner"  # partner agency: reads what is shared with partners
    RIGHTS_HOLDER = "rights_holder"  # only seizures of its own brands, no personal data


class Visibility(enum.StrEnum):
    """Who may read a case (and its seizures)."""

    OWN = "own"  # the reporting administration (and the coordinator)
    PARTICIPANTS = "participants"  # every participating administration of the operation
    PARTNERS = "partners"  # participants and partner agencies
    COORDINATOR = "coordinator"  # the coordinating unit only (and the reporter)


class CaseStatus(enum.StrEnum):
    DRAFT = "draft"
    SUBMITTED = "submitted"
    VALIDATED = "validated"


class ParticipantRole(enum.StrEnum):
    COORDINATOR = "coordinator"
    MEMBER = "member"  # participating customs administration
    RILO = "rilo"
    PARTNER = "partner"
    RIGHTS_HOLDER = "rights_holder"


class OperationStatus(enum.StrEnum):
    PLANNED = "planned"
    ACTIVE = "active"
    CLOSED = "closed"
