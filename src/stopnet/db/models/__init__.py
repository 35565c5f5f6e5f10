"""All SQLAlchemy models, in one package (one module per domain)."""

from . import rightsholders as rightsholders  # rights holders' tables (models in their own module)
from . import sharing as sharing  # live feed outbox, alerts, messages, attachments (sharing.py)
from . import targeting as targeting  # risk targeting: consignments, rules, scores, selections (targeting.py)
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
