"""number the audit entries and mark their hash scheme

``seq`` is an entry's position in the chain (1, 2, 3, ...): with the signed checkpoints of the head it
shows a cut trail. ``scheme`` tells the plain SHA-256 entries written so far (``sha256``) from the keyed
HMAC-SHA256 ones written from now on (``hmac-sha256``). Existing entries are numbered in id order.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-07 16:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("audit_entry", schema=None) as batch_op:
        batch_op.add_column(sa.Column("seq", sa.Integer(), nullable=True))
        batch_op.add_column(
            sa.Column("scheme", sa.String(length=16), nullable=False, server_default="sha256")
        )
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            "UPDATE audit_entry SET seq = n.rn FROM "
            "(SELECT id, row_number() OVER (ORDER BY id) AS rn FROM audit_entry) AS n WHERE n.id = audit_entry.id"
        )
    else:
        op.execute(
            "UPDATE audit_entry SET seq = (SELECT COUNT(*) FROM audit_entry AS b WHERE b.id <= audit_entry.id)"
        )
    with op.batch_alter_table("audit_entry", schema=None) as batch_op:
        batch_op.alter_column("seq", existing_type=sa.Integer(), nullable=False)
        batch_op.alter_column("scheme", existing_type=sa.String(length=16), server_default=None)
        batch_op.create_unique_constraint(batch_op.f("uq_audit_entry_seq"), ["seq"])


def downgrade() -> None:
    with op.batch_alter_table("audit_entry", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("uq_audit_entry_seq"), type_="unique")
        batch_op.drop_column("scheme")
        batch_op.drop_column("seq")
