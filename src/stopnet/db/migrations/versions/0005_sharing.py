"""sharing: live-feed outbox, alerts and acknowledgements, message threads, mentions, read state, attachments

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-23 20:24:35.269991
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "alert",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("operation_id", sa.Integer(), nullable=False),
        sa.Column("sender_org_id", sa.Integer(), nullable=False),
        sa.Column("sender_user_id", sa.Integer(), nullable=True),
        sa.Column(
            "kind",
            sa.Enum(
                "concealment",
                "falsified_medicine",
                "shipper",
                "other",
                name="alert_kind",
                native_enum=False,
                create_constraint=True,
                length=24,
            ),
            nullable=False,
        ),
        sa.Column(
            "scope",
            sa.Enum(
                "operation",
                "region",
                "administrations",
                name="alert_scope",
                native_enum=False,
                create_constraint=True,
                length=24,
            ),
            nullable=False,
        ),
        sa.Column("region_code", sa.String(length=8), nullable=True),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["operation_id"],
            ["operation.id"],
            name=op.f("fk_alert_operation_id_operation"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["sender_org_id"],
            ["organisation.id"],
            name=op.f("fk_alert_sender_org_id_organisation"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["sender_user_id"],
            ["app_user.id"],
            name=op.f("fk_alert_sender_user_id_app_user"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alert")),
    )
    with op.batch_alter_table("alert", schema=None) as batch_op:
        batch_op.create_index("ix_alert_op_created", ["operation_id", "created_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_alert_sender_org_id"), ["sender_org_id"], unique=False)

    op.create_table(
        "outbox_event",
        sa.Column(
            "id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False
        ),
        sa.Column("operation_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column(
            "audience",
            sa.Enum(
                "case",
                "orgs",
                "operation",
                name="outbox_audience",
                native_enum=False,
                create_constraint=True,
                length=24,
            ),
            nullable=False,
        ),
        sa.Column("case_id", sa.Integer(), nullable=True),
        sa.Column("case_org_id", sa.Integer(), nullable=True),
        sa.Column("case_status", sa.String(length=16), nullable=True),
        sa.Column("case_visibility", sa.String(length=16), nullable=True),
        sa.Column("case_region", sa.String(length=8), nullable=True),
        sa.Column("org_ids", sa.JSON(), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["operation_id"],
            ["operation.id"],
            name=op.f("fk_outbox_event_operation_id_operation"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_outbox_event")),
        sqlite_autoincrement=True,
    )
    with op.batch_alter_table("outbox_event", schema=None) as batch_op:
        batch_op.create_index("ix_outbox_event_op_id", ["operation_id", "id"], unique=False)

    op.create_table(
        "alert_recipient",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("alert_id", sa.Integer(), nullable=False),
        sa.Column("org_id", sa.Integer(), nullable=False),
        sa.Column("acknowledged_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("acknowledged_by_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["acknowledged_by_id"],
            ["app_user.id"],
            name=op.f("fk_alert_recipient_acknowledged_by_id_app_user"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["alert_id"], ["alert.id"], name=op.f("fk_alert_recipient_alert_id_alert"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["org_id"],
            ["organisation.id"],
            name=op.f("fk_alert_recipient_org_id_organisation"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alert_recipient")),
        sa.UniqueConstraint("alert_id", "org_id", name=op.f("uq_alert_recipient_alert_id_org_id")),
    )
    with op.batch_alter_table("alert_recipient", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_alert_recipient_alert_id"), ["alert_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_alert_recipient_org_id"), ["org_id"], unique=False)

    op.create_table(
        "message_thread",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("operation_id", sa.Integer(), nullable=False),
        sa.Column("case_id", sa.Integer(), nullable=True),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("created_by_id", sa.Integer(), nullable=True),
        sa.Column("created_by_org_id", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_message_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["case_id"],
            ["case_report.id"],
            name=op.f("fk_message_thread_case_id_case_report"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["created_by_id"],
            ["app_user.id"],
            name=op.f("fk_message_thread_created_by_id_app_user"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["created_by_org_id"],
            ["organisation.id"],
            name=op.f("fk_message_thread_created_by_org_id_organisation"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["operation_id"],
            ["operation.id"],
            name=op.f("fk_message_thread_operation_id_operation"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_message_thread")),
        sa.UniqueConstraint("case_id", name=op.f("uq_message_thread_case_id")),
    )
    with op.batch_alter_table("message_thread", schema=None) as batch_op:
        batch_op.create_index("ix_message_thread_op_last", ["operation_id", "last_message_at"], unique=False)

    op.create_table(
        "message",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("thread_id", sa.Integer(), nullable=False),
        sa.Column("author_user_id", sa.Integer(), nullable=True),
        sa.Column("author_org_id", sa.Integer(), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["author_org_id"],
            ["organisation.id"],
            name=op.f("fk_message_author_org_id_organisation"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["author_user_id"],
            ["app_user.id"],
            name=op.f("fk_message_author_user_id_app_user"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["thread_id"],
            ["message_thread.id"],
            name=op.f("fk_message_thread_id_message_thread"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_message")),
    )
    with op.batch_alter_table("message", schema=None) as batch_op:
        batch_op.create_index("ix_message_thread_id", ["thread_id", "id"], unique=False)

    op.create_table(
        "thread_read_state",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("thread_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("last_read_message_id", sa.Integer(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["thread_id"],
            ["message_thread.id"],
            name=op.f("fk_thread_read_state_thread_id_message_thread"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["app_user.id"],
            name=op.f("fk_thread_read_state_user_id_app_user"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_thread_read_state")),
        sa.UniqueConstraint("thread_id", "user_id", name=op.f("uq_thread_read_state_thread_id_user_id")),
    )
    with op.batch_alter_table("thread_read_state", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_thread_read_state_user_id"), ["user_id"], unique=False)

    op.create_table(
        "attachment",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("operation_id", sa.Integer(), nullable=False),
        sa.Column("org_id", sa.Integer(), nullable=False),
        sa.Column("uploaded_by_id", sa.Integer(), nullable=True),
        sa.Column("alert_id", sa.Integer(), nullable=True),
        sa.Column("message_id", sa.Integer(), nullable=True),
        sa.Column("filename", sa.String(length=255), nullable=False),
        sa.Column("content_type", sa.String(length=100), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("storage_path", sa.String(length=255), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["alert_id"], ["alert.id"], name=op.f("fk_attachment_alert_id_alert"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["message_id"], ["message.id"], name=op.f("fk_attachment_message_id_message"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["operation_id"],
            ["operation.id"],
            name=op.f("fk_attachment_operation_id_operation"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["org_id"],
            ["organisation.id"],
            name=op.f("fk_attachment_org_id_organisation"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["uploaded_by_id"],
            ["app_user.id"],
            name=op.f("fk_attachment_uploaded_by_id_app_user"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_attachment")),
    )
    with op.batch_alter_table("attachment", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_attachment_alert_id"), ["alert_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_attachment_message_id"), ["message_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_attachment_operation_id"), ["operation_id"], unique=False)

    op.create_table(
        "message_mention",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("message_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["message_id"],
            ["message.id"],
            name=op.f("fk_message_mention_message_id_message"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["app_user.id"], name=op.f("fk_message_mention_user_id_app_user"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_message_mention")),
        sa.UniqueConstraint("message_id", "user_id", name=op.f("uq_message_mention_message_id_user_id")),
    )
    with op.batch_alter_table("message_mention", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_message_mention_user_id"), ["user_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("message_mention", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_message_mention_user_id"))

    op.drop_table("message_mention")
    with op.batch_alter_table("attachment", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_attachment_operation_id"))
        batch_op.drop_index(batch_op.f("ix_attachment_message_id"))
        batch_op.drop_index(batch_op.f("ix_attachment_alert_id"))

    op.drop_table("attachment")
    with op.batch_alter_table("thread_read_state", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_thread_read_state_user_id"))

    op.drop_table("thread_read_state")
    with op.batch_alter_table("message", schema=None) as batch_op:
        batch_op.drop_index("ix_message_thread_id")

    op.drop_table("message")
    with op.batch_alter_table("message_thread", schema=None) as batch_op:
        batch_op.drop_index("ix_message_thread_op_last")

    op.drop_table("message_thread")
    with op.batch_alter_table("alert_recipient", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_alert_recipient_org_id"))
        batch_op.drop_index(batch_op.f("ix_alert_recipient_alert_id"))

    op.drop_table("alert_recipient")
    with op.batch_alter_table("outbox_event", schema=None) as batch_op:
        batch_op.drop_index("ix_outbox_event_op_id")

    op.drop_table("outbox_event")
    with op.batch_alter_table("alert", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_alert_sender_org_id"))
        batch_op.drop_index("ix_alert_op_created")

    op.drop_table("alert")
