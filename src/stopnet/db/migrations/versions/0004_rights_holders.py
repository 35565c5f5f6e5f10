"""rights holders

Revision ID: 0004
Revises: 0001
Create Date: 2026-11-23 20:16:34.115133
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "rh_brand",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("owner_org_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=120), nullable=False),
        sa.Column(
            "status",
            sa.Enum(
                "pending",
                "approved",
                "rejected",
                name="rh_brand_status",
                native_enum=False,
                create_constraint=True,
                length=24,
            ),
            nullable=False,
        ),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("product_lines", sa.Text(), nullable=False),
        sa.Column("hs_codes", sa.String(length=400), nullable=False),
        sa.Column("created_by_id", sa.Integer(), nullable=True),
        sa.Column("decided_by_id", sa.Integer(), nullable=True),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("decision_note", sa.Text(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("(CURRENT_TIMESTAMP)"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("(CURRENT_TIMESTAMP)"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["created_by_id"],
            ["app_user.id"],
            name=op.f("fk_rh_brand_created_by_id_app_user"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["decided_by_id"],
            ["app_user.id"],
            name=op.f("fk_rh_brand_decided_by_id_app_user"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["owner_org_id"],
            ["organisation.id"],
            name=op.f("fk_rh_brand_owner_org_id_organisation"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_rh_brand")),
        sa.UniqueConstraint("owner_org_id", "name", name=op.f("uq_rh_brand_owner_org_id_name")),
    )
    with op.batch_alter_table("rh_brand", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_rh_brand_owner_org_id"), ["owner_org_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_rh_brand_status"), ["status"], unique=False)
    op.create_table(
        "rh_operation_setting",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("operation_id", sa.Integer(), nullable=False),
        sa.Column("response_working_days", sa.Integer(), nullable=False),
        sa.Column("updated_by_id", sa.Integer(), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("(CURRENT_TIMESTAMP)"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("(CURRENT_TIMESTAMP)"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["operation_id"],
            ["operation.id"],
            name=op.f("fk_rh_operation_setting_operation_id_operation"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["updated_by_id"],
            ["app_user.id"],
            name=op.f("fk_rh_operation_setting_updated_by_id_app_user"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_rh_operation_setting")),
        sa.UniqueConstraint("operation_id", name=op.f("uq_rh_operation_setting_operation_id")),
    )
    op.create_table(
        "rh_brand_alias",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("brand_id", sa.Integer(), nullable=False),
        sa.Column("alias", sa.String(length=120), nullable=False),
        sa.Column("normalised", sa.String(length=120), nullable=False),
        sa.ForeignKeyConstraint(
            ["brand_id"],
            ["rh_brand.id"],
            name=op.f("fk_rh_brand_alias_brand_id_rh_brand"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_rh_brand_alias")),
        sa.UniqueConstraint("brand_id", "normalised", name=op.f("uq_rh_brand_alias_brand_id_normalised")),
    )
    with op.batch_alter_table("rh_brand_alias", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_rh_brand_alias_brand_id"), ["brand_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_rh_brand_alias_normalised"), ["normalised"], unique=False)
    op.create_table(
        "rh_brand_contact",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("brand_id", sa.Integer(), nullable=False),
        sa.Column("territory", sa.String(length=8), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("function", sa.String(length=200), nullable=False),
        sa.Column("email", sa.String(length=254), nullable=False),
        sa.Column("phone", sa.String(length=64), nullable=False),
        sa.Column("channel", sa.String(length=200), nullable=False),
        sa.Column("languages", sa.String(length=64), nullable=False),
        sa.Column("response_hours", sa.Integer(), nullable=True),
        sa.Column("last_confirmed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("confirmed_by_id", sa.Integer(), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("(CURRENT_TIMESTAMP)"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("(CURRENT_TIMESTAMP)"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["brand_id"],
            ["rh_brand.id"],
            name=op.f("fk_rh_brand_contact_brand_id_rh_brand"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["confirmed_by_id"],
            ["app_user.id"],
            name=op.f("fk_rh_brand_contact_confirmed_by_id_app_user"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_rh_brand_contact")),
    )
    with op.batch_alter_table("rh_brand_contact", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_rh_brand_contact_brand_id"), ["brand_id"], unique=False)
    op.create_table(
        "rh_guide",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("org_id", sa.Integer(), nullable=False),
        sa.Column("brand_id", sa.Integer(), nullable=True),
        sa.Column(
            "kind",
            sa.Enum(
                "product_id",
                "risk_info",
                name="rh_guide_kind",
                native_enum=False,
                create_constraint=True,
                length=24,
            ),
            nullable=False,
        ),
        sa.Column("latest_version", sa.Integer(), nullable=False),
        sa.Column("published_version", sa.Integer(), nullable=True),
        sa.Column("created_by_id", sa.Integer(), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("(CURRENT_TIMESTAMP)"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("(CURRENT_TIMESTAMP)"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["brand_id"], ["rh_brand.id"], name=op.f("fk_rh_guide_brand_id_rh_brand"), ondelete="RESTRICT"
        ),
        sa.ForeignKeyConstraint(
            ["created_by_id"],
            ["app_user.id"],
            name=op.f("fk_rh_guide_created_by_id_app_user"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["org_id"], ["organisation.id"], name=op.f("fk_rh_guide_org_id_organisation"), ondelete="RESTRICT"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_rh_guide")),
    )
    with op.batch_alter_table("rh_guide", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_rh_guide_brand_id"), ["brand_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_rh_guide_org_id"), ["org_id"], unique=False)
    op.create_table(
        "rh_representative",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("brand_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("firm", sa.String(length=200), nullable=False),
        sa.Column("email", sa.String(length=254), nullable=False),
        sa.Column("phone", sa.String(length=64), nullable=False),
        sa.Column("mandate", sa.String(length=200), nullable=False),
        sa.Column("territories", sa.String(length=120), nullable=False),
        sa.ForeignKeyConstraint(
            ["brand_id"],
            ["rh_brand.id"],
            name=op.f("fk_rh_representative_brand_id_rh_brand"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_rh_representative")),
    )
    with op.batch_alter_table("rh_representative", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_rh_representative_brand_id"), ["brand_id"], unique=False)
    op.create_table(
        "rh_trademark",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("brand_id", sa.Integer(), nullable=False),
        sa.Column("mark", sa.String(length=200), nullable=False),
        sa.Column("registration_number", sa.String(length=64), nullable=False),
        sa.Column("territory", sa.String(length=16), nullable=False),
        sa.Column("office", sa.String(length=64), nullable=False),
        sa.Column("classes", sa.String(length=64), nullable=False),
        sa.Column("registered_on", sa.Date(), nullable=True),
        sa.Column("expires_on", sa.Date(), nullable=True),
        sa.ForeignKeyConstraint(
            ["brand_id"], ["rh_brand.id"], name=op.f("fk_rh_trademark_brand_id_rh_brand"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_rh_trademark")),
    )
    with op.batch_alter_table("rh_trademark", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_rh_trademark_brand_id"), ["brand_id"], unique=False)
    op.create_table(
        "rh_guide_version",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("guide_id", sa.Integer(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("summary", sa.Text(), nullable=False),
        sa.Column("genuine_features", sa.Text(), nullable=False),
        sa.Column("packaging", sa.Text(), nullable=False),
        sa.Column("fake_indicators", sa.Text(), nullable=False),
        sa.Column("products", sa.Text(), nullable=False),
        sa.Column("hs_codes", sa.String(length=400), nullable=False),
        sa.Column("valid_from", sa.Date(), nullable=True),
        sa.Column("valid_until", sa.Date(), nullable=True),
        sa.Column("change_note", sa.String(length=500), nullable=False),
        sa.Column("created_by_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("published_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("published_by_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["created_by_id"],
            ["app_user.id"],
            name=op.f("fk_rh_guide_version_created_by_id_app_user"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["guide_id"],
            ["rh_guide.id"],
            name=op.f("fk_rh_guide_version_guide_id_rh_guide"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["published_by_id"],
            ["app_user.id"],
            name=op.f("fk_rh_guide_version_published_by_id_app_user"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_rh_guide_version")),
        sa.UniqueConstraint("guide_id", "version", name=op.f("uq_rh_guide_version_guide_id_version")),
    )
    with op.batch_alter_table("rh_guide_version", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_rh_guide_version_guide_id"), ["guide_id"], unique=False)
    op.create_table(
        "rh_verification_request",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("operation_id", sa.Integer(), nullable=False),
        sa.Column("brand_id", sa.Integer(), nullable=False),
        sa.Column("requesting_org_id", sa.Integer(), nullable=False),
        sa.Column("requested_by_id", sa.Integer(), nullable=True),
        sa.Column("case_id", sa.Integer(), nullable=True),
        sa.Column("seizure_id", sa.Integer(), nullable=True),
        sa.Column(
            "status",
            sa.Enum(
                "open",
                "answered",
                "withdrawn",
                name="rh_verification_status",
                native_enum=False,
                create_constraint=True,
                length=24,
            ),
            nullable=False,
        ),
        sa.Column("product", sa.String(length=200), nullable=False),
        sa.Column("details", sa.Text(), nullable=False),
        sa.Column("hs_code", sa.String(length=12), nullable=False),
        sa.Column("pieces", sa.BigInteger(), nullable=True),
        sa.Column("origin_country", sa.String(length=2), nullable=True),
        sa.Column("departure_country", sa.String(length=2), nullable=True),
        sa.Column("detected_on", sa.Date(), nullable=True),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("working_days", sa.Integer(), nullable=False),
        sa.Column("due_on", sa.Date(), nullable=False),
        sa.Column(
            "answer",
            sa.Enum(
                "genuine",
                "counterfeit",
                "inconclusive",
                name="rh_verification_answer",
                native_enum=False,
                create_constraint=True,
                length=24,
            ),
            nullable=True,
        ),
        sa.Column("answer_note", sa.Text(), nullable=False),
        sa.Column("answered_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("answered_by_id", sa.Integer(), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("(CURRENT_TIMESTAMP)"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("(CURRENT_TIMESTAMP)"),
            nullable=False,
        ),
        sa.CheckConstraint("pieces >= 0", name=op.f("ck_rh_verification_request_pieces_non_negative")),
        sa.ForeignKeyConstraint(
            ["answered_by_id"],
            ["app_user.id"],
            name=op.f("fk_rh_verification_request_answered_by_id_app_user"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["brand_id"],
            ["rh_brand.id"],
            name=op.f("fk_rh_verification_request_brand_id_rh_brand"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["case_id"],
            ["case_report.id"],
            name=op.f("fk_rh_verification_request_case_id_case_report"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["operation_id"],
            ["operation.id"],
            name=op.f("fk_rh_verification_request_operation_id_operation"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["requested_by_id"],
            ["app_user.id"],
            name=op.f("fk_rh_verification_request_requested_by_id_app_user"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["requesting_org_id"],
            ["organisation.id"],
            name=op.f("fk_rh_verification_request_requesting_org_id_organisation"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["seizure_id"],
            ["seizure.id"],
            name=op.f("fk_rh_verification_request_seizure_id_seizure"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_rh_verification_request")),
    )
    with op.batch_alter_table("rh_verification_request", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_rh_verification_request_answered_at"), ["answered_at"], unique=False
        )
        batch_op.create_index("ix_rh_verification_request_brand_status", ["brand_id", "status"], unique=False)
        batch_op.create_index(batch_op.f("ix_rh_verification_request_case_id"), ["case_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_rh_verification_request_due_on"), ["due_on"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_rh_verification_request_operation_id"), ["operation_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_rh_verification_request_requesting_org_id"), ["requesting_org_id"], unique=False
        )
    op.create_table(
        "rh_attachment",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("guide_version_id", sa.Integer(), nullable=True),
        sa.Column("request_id", sa.Integer(), nullable=True),
        sa.Column("org_id", sa.Integer(), nullable=False),
        sa.Column("filename", sa.String(length=255), nullable=False),
        sa.Column("content_type", sa.String(length=64), nullable=False),
        sa.Column("size_bytes", sa.BigInteger(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("uploaded_by_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "(guide_version_id IS NULL) <> (request_id IS NULL)", name=op.f("ck_rh_attachment_one_owner")
        ),
        sa.CheckConstraint("size_bytes >= 0", name=op.f("ck_rh_attachment_size_non_negative")),
        sa.ForeignKeyConstraint(
            ["guide_version_id"],
            ["rh_guide_version.id"],
            name=op.f("fk_rh_attachment_guide_version_id_rh_guide_version"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["org_id"],
            ["organisation.id"],
            name=op.f("fk_rh_attachment_org_id_organisation"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["request_id"],
            ["rh_verification_request.id"],
            name=op.f("fk_rh_attachment_request_id_rh_verification_request"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["uploaded_by_id"],
            ["app_user.id"],
            name=op.f("fk_rh_attachment_uploaded_by_id_app_user"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_rh_attachment")),
    )
    with op.batch_alter_table("rh_attachment", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_rh_attachment_guide_version_id"), ["guide_version_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_rh_attachment_request_id"), ["request_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_rh_attachment_sha256"), ["sha256"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("rh_attachment", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_rh_attachment_sha256"))
        batch_op.drop_index(batch_op.f("ix_rh_attachment_request_id"))
        batch_op.drop_index(batch_op.f("ix_rh_attachment_guide_version_id"))
    op.drop_table("rh_attachment")
    with op.batch_alter_table("rh_verification_request", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_rh_verification_request_requesting_org_id"))
        batch_op.drop_index(batch_op.f("ix_rh_verification_request_operation_id"))
        batch_op.drop_index(batch_op.f("ix_rh_verification_request_due_on"))
        batch_op.drop_index(batch_op.f("ix_rh_verification_request_case_id"))
        batch_op.drop_index("ix_rh_verification_request_brand_status")
        batch_op.drop_index(batch_op.f("ix_rh_verification_request_answered_at"))
    op.drop_table("rh_verification_request")
    with op.batch_alter_table("rh_guide_version", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_rh_guide_version_guide_id"))
    op.drop_table("rh_guide_version")
    with op.batch_alter_table("rh_trademark", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_rh_trademark_brand_id"))
    op.drop_table("rh_trademark")
    with op.batch_alter_table("rh_representative", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_rh_representative_brand_id"))
    op.drop_table("rh_representative")
    with op.batch_alter_table("rh_guide", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_rh_guide_org_id"))
        batch_op.drop_index(batch_op.f("ix_rh_guide_brand_id"))
    op.drop_table("rh_guide")
    with op.batch_alter_table("rh_brand_contact", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_rh_brand_contact_brand_id"))
    op.drop_table("rh_brand_contact")
    with op.batch_alter_table("rh_brand_alias", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_rh_brand_alias_normalised"))
        batch_op.drop_index(batch_op.f("ix_rh_brand_alias_brand_id"))
    op.drop_table("rh_brand_alias")
    op.drop_table("rh_operation_setting")
    with op.batch_alter_table("rh_brand", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_rh_brand_status"))
        batch_op.drop_index(batch_op.f("ix_rh_brand_owner_org_id"))
    op.drop_table("rh_brand")
