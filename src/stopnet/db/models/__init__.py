"""All SQLAlchemy models, in one package (one module per domain)."""

from .access import ApiToken, Organisation, User
from .audit import AuditEntry
from .base import Base, utcnow
from .enums import CaseStatus, OperationStatus, OrgKind, ParticipantRole, Role, Visibility
from .operations import ContactPoint, Operation, OperationPhase, Participant
from .reporting import Case, CaseVersion, IdempotencyRecord, ImportBatch, Seizure

__all__ = [
    "ApiToken",
    "AuditEntry",
    "Base",
    "Case",
    "CaseStatus",
    "CaseVersion",
    "ContactPoint",
    "IdempotencyRecord",
    "ImportBatch",
    "Operation",
    "OperationPhase",
    "OperationStatus",
    "OrgKind",
    "Organisation",
    "Participant",
    "ParticipantRole",
    "Role",
    "Seizure",
    "User",
    "Visibility",
    "utcnow",
]
