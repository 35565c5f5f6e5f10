"""risk models belong to an administration, and may be shared

``org_id`` names the administration whose consignments trained a model (NULL: the operation's pooled
consignments); ``shared`` shows the model and its metrics to every member of the operation. Models
registered so far were trained on the pooled consignments: they stay pooled, and unshared.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-08 01:20:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("tgt_model", schema=None) as batch_op:
        batch_op.add_column(sa.Column("org_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("shared", sa.Boolean(), nullable=False, server_default=sa.false()))
        batch_op.create_foreign_key(
            batch_op.f("fk_tgt_model_org_id_organisation"),
            "organisation",
            ["org_id"],
            ["id"],
            ondelete="CASCADE",
        )
        batch_op.create_index(batch_op.f("ix_tgt_model_org_id"), ["org_id"], unique=False)
    with op.batch_alter_table("tgt_model", schema=None) as batch_op:
        batch_op.alter_column("shared", existing_type=sa.Boolean(), server_default=None)


def downgrade() -> None:
    with op.batch_alter_table("tgt_model", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_tgt_model_org_id"))
        batch_op.drop_constraint(batch_op.f("fk_tgt_model_org_id_organisation"), type_="foreignkey")
        batch_op.drop_column("shared")
        batch_op.drop_column("org_id")
