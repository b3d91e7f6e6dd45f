"""attachments (append-only) and resumable uploads

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-27 14:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import telemed.db
from telemed.migrations.append_only import allow_update_and_delete, forbid_update_and_delete

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "attachments",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("consult_id", sa.Integer(), nullable=False),
        sa.Column("message_id", sa.Integer(), nullable=True),
        sa.Column("uploaded_by_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("filename", sqlmodel.sql.sqltypes.AutoString(length=255), nullable=False),
        sa.Column("media_type", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column(
            "received_media_type", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False
        ),
        sa.Column("size_bytes", sa.Integer(), nullable=False),
        sa.Column("sha256", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("preview_sha256", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
        sa.Column("preview_size_bytes", sa.Integer(), nullable=True),
        sa.Column("width", sa.Integer(), nullable=True),
        sa.Column("height", sa.Integer(), nullable=True),
        sa.Column("created_at", telemed.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["consult_id"], ["consults.id"]),
        sa.ForeignKeyConstraint(["message_id"], ["messages.id"]),
        sa.ForeignKeyConstraint(["uploaded_by_id"], ["users.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("attachments", schema=None) as batch_op:
        batch_op.create_index(
            "ix_attachments_consult_created", ["consult_id", "created_at", "id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_attachments_message_id"), ["message_id"])
        batch_op.create_index(batch_op.f("ix_attachments_sha256"), ["sha256"])
    forbid_update_and_delete("attachments")

    op.create_table(
        "uploads",
        sa.Column("id", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("consult_id", sa.Integer(), nullable=False),
        sa.Column("message_id", sa.Integer(), nullable=True),
        sa.Column("uploader_id", sa.Integer(), nullable=False),
        sa.Column("filename", sqlmodel.sql.sqltypes.AutoString(length=255), nullable=False),
        sa.Column("media_type", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("length", sa.Integer(), nullable=False),
        sa.Column("offset", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(length=10), nullable=False),
        sa.Column("failure", sqlmodel.sql.sqltypes.AutoString(length=500), nullable=False),
        sa.Column("attachment_id", sa.Integer(), nullable=True),
        sa.Column("created_at", telemed.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", telemed.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("expires_at", telemed.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["attachment_id"], ["attachments.id"]),
        sa.ForeignKeyConstraint(["consult_id"], ["consults.id"]),
        sa.ForeignKeyConstraint(["message_id"], ["messages.id"]),
        sa.ForeignKeyConstraint(["uploader_id"], ["users.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("uploads", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_uploads_consult_id"), ["consult_id"])
        batch_op.create_index("ix_uploads_state_expires", ["state", "expires_at"])


def downgrade() -> None:
    op.drop_table("uploads")
    allow_update_and_delete("attachments")
    op.drop_table("attachments")
