"""appointments and their change history

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-27 14:45:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import telemed.db
from telemed.migrations.append_only import allow_update_and_delete, forbid_update_and_delete

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ACTIVE = "status = 'scheduled'"


def upgrade() -> None:
    op.create_table(
        "appointments",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("consult_id", sa.Integer(), nullable=False),
        sa.Column("specialist_id", sa.Integer(), nullable=False),
        sa.Column("starts_at", telemed.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("ends_at", telemed.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("uid", sqlmodel.sql.sqltypes.AutoString(length=120), nullable=False),
        sa.Column("sequence", sa.Integer(), nullable=False),
        sa.Column("created_at", telemed.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", telemed.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["consult_id"], ["consults.id"]),
        sa.ForeignKeyConstraint(["specialist_id"], ["users.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("appointments", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_appointments_consult_id"), ["consult_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_appointments_uid"), ["uid"], unique=True)
        batch_op.create_index(
            "ix_appointments_specialist_starts", ["specialist_id", "starts_at"], unique=False
        )
        batch_op.create_index(
            "ix_appointments_status_starts", ["status", "starts_at"], unique=False
        )
        batch_op.create_index(
            "uq_appointments_one_active",
            ["consult_id"],
            unique=True,
            postgresql_where=sa.text(ACTIVE),
            sqlite_where=sa.text(ACTIVE),
        )

    op.create_table(
        "appointment_changes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("appointment_id", sa.Integer(), nullable=False),
        sa.Column("actor_id", sa.Integer(), nullable=True),
        sa.Column("action", sa.String(length=12), nullable=False),
        sa.Column("sequence", sa.Integer(), nullable=False),
        sa.Column("old_starts_at", telemed.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("old_ends_at", telemed.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("new_starts_at", telemed.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("new_ends_at", telemed.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("at", telemed.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["actor_id"], ["users.id"]),
        sa.ForeignKeyConstraint(["appointment_id"], ["appointments.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("appointment_changes", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_appointment_changes_appointment_id"), ["appointment_id"], unique=False
        )
    forbid_update_and_delete("appointment_changes")


def downgrade() -> None:
    allow_update_and_delete("appointment_changes")
    op.drop_table("appointment_changes")
    op.drop_table("appointments")
