"""dashboard indexes: the latest change of an operation's cases, in one index probe

The dashboard keeps a summary of each operation's figures and rebuilds it when the operation's data
changes; it detects a change with ``max(case_report.updated_at) WHERE operation_id = ?``, which this index
answers without reading the table (docs/dashboard.md).

Revision ID: 0006
Revises: 0003
Create Date: 2026-11-23 20:48:42.880650
"""

from __future__ import annotations

from alembic import op

revision = "0006"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("case_report", schema=None) as batch_op:
        batch_op.create_index("ix_case_report_op_updated", ["operation_id", "updated_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("case_report", schema=None) as batch_op:
        batch_op.drop_index("ix_case_report_op_updated")
