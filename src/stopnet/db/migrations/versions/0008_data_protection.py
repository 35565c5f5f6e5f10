"""data protection: retention policy per operation, pseudonymised consignees of purged cases

``operation.personal_data_retention_days``: how long the consignee's name of a case is kept (null: no
policy, nothing is purged). ``stopnet purge`` (src/stopnet/maintenance/service/purge.py) replaces the
name of older cases by ``case_report.consignee_pseudonym`` (a keyed HMAC, so repeat consignees stay
linkable without a name) and stamps ``case_report.personal_data_purged_at``.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-23 23:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("operation", schema=None) as batch_op:
        batch_op.add_column(sa.Column("personal_data_retention_days", sa.Integer(), nullable=True))
    with op.batch_alter_table("case_report", schema=None) as batch_op:
        batch_op.add_column(sa.Column("consignee_pseudonym", sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column("personal_data_purged_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("case_report", schema=None) as batch_op:
        batch_op.drop_column("personal_data_purged_at")
        batch_op.drop_column("consignee_pseudonym")
    with op.batch_alter_table("operation", schema=None) as batch_op:
        batch_op.drop_column("personal_data_retention_days")
