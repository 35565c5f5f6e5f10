"""risk targeting: consignments, versioned rules, model versions, scores, selections, inspection results, proposals

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-23 23:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "tgt_consignment",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("operation_id", sa.Integer(), nullable=False),
        sa.Column("org_id", sa.Integer(), nullable=False),
        sa.Column("consignment_id", sa.String(length=64), nullable=False),
        sa.Column("declared_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("arrival_date", sa.Date(), nullable=False),
        sa.Column("channel", sa.String(length=24), nullable=False),
        sa.Column("carrier", sa.String(length=120), nullable=False),
        sa.Column("sender_id", sa.String(length=64), nullable=False),
        sa.Column("consignee_id", sa.String(length=64), nullable=False),
        sa.Column("origin_country", sa.String(length=2), nullable=False),
        sa.Column("departure_country", sa.String(length=2), nullable=False),
        sa.Column("destination_country", sa.String(length=2), nullable=False),
        sa.Column("office", sa.String(length=64), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("hs_code", sa.String(length=10), nullable=False),
        sa.Column("declared_value", sa.Float(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("weight_kg", sa.Float(), nullable=False),
        sa.Column("quantity", sa.Integer(), nullable=False),
        sa.Column("marketplace", sa.String(length=120), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["operation_id"],
            ["operation.id"],
            name=op.f("fk_tgt_consignment_operation_id_operation"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["org_id"],
            ["organisation.id"],
            name=op.f("fk_tgt_consignment_org_id_organisation"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tgt_consignment")),
        sa.UniqueConstraint(
            "operation_id",
            "org_id",
            "consignment_id",
            name=op.f("uq_tgt_consignment_operation_id_org_id_consignment_id"),
        ),
    )
    op.create_index(
        "ix_tgt_consignment_org_day",
        "tgt_consignment",
        ["operation_id", "org_id", "arrival_date"],
        unique=False,
    )
    op.create_index(op.f("ix_tgt_consignment_org_id"), "tgt_consignment", ["org_id"], unique=False)
    op.create_table(
        "tgt_model",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("operation_id", sa.Integer(), nullable=False),
        sa.Column("version", sa.String(length=200), nullable=False),
        sa.Column("path", sa.Text(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("metrics", sa.JSON(), nullable=False),
        sa.Column("registered_by_label", sa.String(length=200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["operation_id"],
            ["operation.id"],
            name=op.f("fk_tgt_model_operation_id_operation"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tgt_model")),
        sa.UniqueConstraint("operation_id", "version", name=op.f("uq_tgt_model_operation_id_version")),
    )
    op.create_index(op.f("ix_tgt_model_operation_id"), "tgt_model", ["operation_id"], unique=False)
    op.create_table(
        "tgt_rule",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("operation_id", sa.Integer(), nullable=False),
        sa.Column("org_id", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(length=64), nullable=False),
        sa.Column(
            "status",
            sa.Enum(
                "draft",
                "active",
                "inactive",
                name="tgt_rule_status",
                native_enum=False,
                create_constraint=True,
                length=24,
            ),
            nullable=False,
        ),
        sa.Column("latest_version", sa.Integer(), nullable=False),
        sa.Column("active_version", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["operation_id"],
            ["operation.id"],
            name=op.f("fk_tgt_rule_operation_id_operation"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["org_id"], ["organisation.id"], name=op.f("fk_tgt_rule_org_id_organisation"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tgt_rule")),
        sa.UniqueConstraint(
            "operation_id", "org_id", "code", name=op.f("uq_tgt_rule_operation_id_org_id_code")
        ),
    )
    op.create_index(op.f("ix_tgt_rule_operation_id"), "tgt_rule", ["operation_id"], unique=False)
    op.create_index(op.f("ix_tgt_rule_org_id"), "tgt_rule", ["org_id"], unique=False)
    op.create_table(
        "tgt_selection",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("operation_id", sa.Integer(), nullable=False),
        sa.Column("org_id", sa.Integer(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("capacity", sa.String(length=64), nullable=False),
        sa.Column("exploration_share", sa.Float(), nullable=False),
        sa.Column("seed", sa.Integer(), nullable=False),
        sa.Column("model_version", sa.String(length=200), nullable=True),
        sa.Column("n_consignments", sa.Integer(), nullable=False),
        sa.Column("n_selected", sa.Integer(), nullable=False),
        sa.Column("created_by_label", sa.String(length=200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["operation_id"],
            ["operation.id"],
            name=op.f("fk_tgt_selection_operation_id_operation"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["org_id"],
            ["organisation.id"],
            name=op.f("fk_tgt_selection_org_id_organisation"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tgt_selection")),
    )
    op.create_index(
        "ix_tgt_selection_org_day", "tgt_selection", ["operation_id", "org_id", "day"], unique=False
    )
    op.create_table(
        "tgt_proposal",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("operation_id", sa.Integer(), nullable=False),
        sa.Column("org_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("origin_country", sa.String(length=2), nullable=False),
        sa.Column("destination_country", sa.String(length=2), nullable=False),
        sa.Column("commodity_group", sa.String(length=16), nullable=False),
        sa.Column("expression", sa.Text(), nullable=False),
        sa.Column("weight", sa.Float(), nullable=False),
        sa.Column("rule_id", sa.Integer(), nullable=True),
        sa.Column("evidence", sa.JSON(), nullable=False),
        sa.Column(
            "status",
            sa.Enum(
                "open",
                "accepted",
                "dismissed",
                name="tgt_proposal_status",
                native_enum=False,
                create_constraint=True,
                length=24,
            ),
            nullable=False,
        ),
        sa.Column("decided_by_label", sa.String(length=200), nullable=False),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["operation_id"],
            ["operation.id"],
            name=op.f("fk_tgt_proposal_operation_id_operation"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["org_id"],
            ["organisation.id"],
            name=op.f("fk_tgt_proposal_org_id_organisation"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["rule_id"], ["tgt_rule.id"], name=op.f("fk_tgt_proposal_rule_id_tgt_rule"), ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tgt_proposal")),
    )
    op.create_index(op.f("ix_tgt_proposal_operation_id"), "tgt_proposal", ["operation_id"], unique=False)
    op.create_index(op.f("ix_tgt_proposal_org_id"), "tgt_proposal", ["org_id"], unique=False)
    op.create_table(
        "tgt_rule_version",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("rule_id", sa.Integer(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("expression", sa.Text(), nullable=False),
        sa.Column("weight", sa.Float(), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("created_by_id", sa.Integer(), nullable=True),
        sa.Column("created_by_label", sa.String(length=200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("tested_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("test_rows", sa.Integer(), nullable=True),
        sa.Column("test_hits", sa.Integer(), nullable=True),
        sa.Column("activated_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["created_by_id"],
            ["app_user.id"],
            name=op.f("fk_tgt_rule_version_created_by_id_app_user"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["rule_id"],
            ["tgt_rule.id"],
            name=op.f("fk_tgt_rule_version_rule_id_tgt_rule"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tgt_rule_version")),
        sa.UniqueConstraint("rule_id", "version", name=op.f("uq_tgt_rule_version_rule_id_version")),
    )
    op.create_index(op.f("ix_tgt_rule_version_rule_id"), "tgt_rule_version", ["rule_id"], unique=False)
    op.create_table(
        "tgt_score",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("consignment_pk", sa.Integer(), nullable=False),
        sa.Column("model_id", sa.Integer(), nullable=True),
        sa.Column("model_version", sa.String(length=200), nullable=True),
        sa.Column("score", sa.Float(), nullable=True),
        sa.Column("rule_hits", sa.JSON(), nullable=False),
        sa.Column("rule_score", sa.Float(), nullable=False),
        sa.Column("explanation", sa.JSON(), nullable=False),
        sa.Column("scored_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["consignment_pk"],
            ["tgt_consignment.id"],
            name=op.f("fk_tgt_score_consignment_pk_tgt_consignment"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["model_id"], ["tgt_model.id"], name=op.f("fk_tgt_score_model_id_tgt_model"), ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tgt_score")),
    )
    op.create_index(op.f("ix_tgt_score_consignment_pk"), "tgt_score", ["consignment_pk"], unique=False)
    op.create_table(
        "tgt_inspection",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("consignment_pk", sa.Integer(), nullable=False),
        sa.Column(
            "outcome",
            sa.Enum(
                "nothing_found",
                "seizure",
                name="tgt_inspection_outcome",
                native_enum=False,
                create_constraint=True,
                length=24,
            ),
            nullable=False,
        ),
        sa.Column("case_id", sa.Integer(), nullable=True),
        sa.Column("commodity_code", sa.String(length=24), nullable=True),
        sa.Column("verification_request_id", sa.Integer(), nullable=True),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("inspected_on", sa.Date(), nullable=False),
        sa.Column("recorded_by_label", sa.String(length=200), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["case_id"],
            ["case_report.id"],
            name=op.f("fk_tgt_inspection_case_id_case_report"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["consignment_pk"],
            ["tgt_consignment.id"],
            name=op.f("fk_tgt_inspection_consignment_pk_tgt_consignment"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tgt_inspection")),
        sa.UniqueConstraint("consignment_pk", name=op.f("uq_tgt_inspection_consignment_pk")),
    )
    op.create_table(
        "tgt_selection_item",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("selection_id", sa.Integer(), nullable=False),
        sa.Column("consignment_pk", sa.Integer(), nullable=False),
        sa.Column("score_id", sa.Integer(), nullable=True),
        sa.Column("lane", sa.String(length=8), nullable=False),
        sa.Column("reason", sa.String(length=8), nullable=True),
        sa.ForeignKeyConstraint(
            ["consignment_pk"],
            ["tgt_consignment.id"],
            name=op.f("fk_tgt_selection_item_consignment_pk_tgt_consignment"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["score_id"],
            ["tgt_score.id"],
            name=op.f("fk_tgt_selection_item_score_id_tgt_score"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["selection_id"],
            ["tgt_selection.id"],
            name=op.f("fk_tgt_selection_item_selection_id_tgt_selection"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tgt_selection_item")),
        sa.UniqueConstraint(
            "selection_id", "consignment_pk", name=op.f("uq_tgt_selection_item_selection_id_consignment_pk")
        ),
    )
    op.create_index(
        op.f("ix_tgt_selection_item_consignment_pk"), "tgt_selection_item", ["consignment_pk"], unique=False
    )
    op.create_index(
        op.f("ix_tgt_selection_item_selection_id"), "tgt_selection_item", ["selection_id"], unique=False
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_tgt_selection_item_selection_id"), table_name="tgt_selection_item")
    op.drop_index(op.f("ix_tgt_selection_item_consignment_pk"), table_name="tgt_selection_item")
    op.drop_table("tgt_selection_item")
    op.drop_table("tgt_inspection")
    op.drop_index(op.f("ix_tgt_score_consignment_pk"), table_name="tgt_score")
    op.drop_table("tgt_score")
    op.drop_index(op.f("ix_tgt_rule_version_rule_id"), table_name="tgt_rule_version")
    op.drop_table("tgt_rule_version")
    op.drop_index(op.f("ix_tgt_proposal_org_id"), table_name="tgt_proposal")
    op.drop_index(op.f("ix_tgt_proposal_operation_id"), table_name="tgt_proposal")
    op.drop_table("tgt_proposal")
    op.drop_index("ix_tgt_selection_org_day", table_name="tgt_selection")
    op.drop_table("tgt_selection")
    op.drop_index(op.f("ix_tgt_rule_org_id"), table_name="tgt_rule")
    op.drop_index(op.f("ix_tgt_rule_operation_id"), table_name="tgt_rule")
    op.drop_table("tgt_rule")
    op.drop_index(op.f("ix_tgt_model_operation_id"), table_name="tgt_model")
    op.drop_table("tgt_model")
    op.drop_index(op.f("ix_tgt_consignment_org_id"), table_name="tgt_consignment")
    op.drop_index("ix_tgt_consignment_org_day", table_name="tgt_consignment")
    op.drop_table("tgt_consignment")
