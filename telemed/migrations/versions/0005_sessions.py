"""live sessions, call tokens and session records

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-27 13:10:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import telemed.db
from telemed.migrations.append_only import allow_update_and_delete, forbid_update_and_delete

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "call_sessions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("consult_id", sa.Integer(), nullable=False),
        sa.Column("room", sqlmodel.sql.sqltypes.AutoString(length=128), nullable=False),
        sa.Column("started_at", telemed.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("ended_at", telemed.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("duration_s", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(["consult_id"], ["consults.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("call_sessions", schema=None) as batch_op:
        batch_op.create_index(
            "ix_call_sessions_consult_started", ["consult_id", "started_at"], unique=False
        )

    op.create_table(
        "call_session_events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("call_session_id", sa.Integer(), nullable=False),
        sa.Column("consult_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=True),
        sa.Column("role", sa.String(length=16), nullable=True),
        sa.Column("signal_session", sqlmodel.sql.sqltypes.AutoString(length=128), nullable=True),
        sa.Column("at", telemed.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(["call_session_id"], ["call_sessions.id"]),
        sa.ForeignKeyConstraint(["consult_id"], ["consults.id"]),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("call_session_events", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_call_session_events_call_session_id"),
            ["call_session_id"],
            unique=False,
        )
        batch_op.create_index(
            batch_op.f("ix_call_session_events_consult_id"), ["consult_id"], unique=False
        )
    forbid_update_and_delete("call_session_events")


def downgrade() -> None:
    allow_update_and_delete("call_session_events")
    op.drop_table("call_session_events")
    op.drop_table("call_sessions")
