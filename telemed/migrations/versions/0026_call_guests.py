"""Call guests: an interpreter or a second specialist invited into a consult's call

Revision ID: 0026
Revises: 0025
Create Date: 2026-12-04 16:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import telemed.db

revision: str = "0026"
down_revision: str | None = "0025"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "call_guests",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("consult_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("role", sa.String(length=20), nullable=False),
        sa.Column("invited_by_id", sa.Integer(), nullable=False),
        sa.Column("invited_at", telemed.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("revoked_by_id", sa.Integer(), nullable=True),
        sa.Column("revoked_at", telemed.db.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["consult_id"], ["consults.id"]),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"]),
        sa.ForeignKeyConstraint(["invited_by_id"], ["users.id"]),
        sa.ForeignKeyConstraint(["revoked_by_id"], ["users.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        "ix_call_guests_consult_user", "call_guests", ["consult_id", "user_id"], unique=False
    )
    op.create_index("ix_call_guests_user_id", "call_guests", ["user_id"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_call_guests_user_id", table_name="call_guests")
    op.drop_index("ix_call_guests_consult_user", table_name="call_guests")
    op.drop_table("call_guests")
