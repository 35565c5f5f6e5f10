"""drop redundant indexes of cases, seizures and case versions

Each of these single-column indexes is the leading column of another index of its table, which answers
the same lookups (and the foreign keys' cascades) as well: ``case_report.operation_id`` (four indexes
start with it: the unique (operation_id, reporting_org_id, reference) and (operation_id, detected_on /
status / updated_at)), ``seizure.case_id`` (unique (case_id, line_no)), ``seizure.operation_id``
((operation_id, commodity_code)), ``case_version.case_id`` (unique (case_id, version)). Every index is
updated for every row written, so a bulk import paid for these four for nothing (figures:
docs/benchmarks.md, "Bulk import").

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-01 21:45:00
"""

from __future__ import annotations

from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

# (table, index, column)
REDUNDANT = (
    ("case_report", "ix_case_report_operation_id", "operation_id"),
    ("seizure", "ix_seizure_case_id", "case_id"),
    ("seizure", "ix_seizure_operation_id", "operation_id"),
    ("case_version", "ix_case_version_case_id", "case_id"),
)


def upgrade() -> None:
    for table, index, _column in REDUNDANT:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_index(index)


def downgrade() -> None:
    for table, index, column in REDUNDANT:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.create_index(index, [column], unique=False)
