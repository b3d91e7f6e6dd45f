"""pre-call network test results per facility

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-27 14:45:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import telemed.db
from telemed.migrations.append_only import allow_update_and_delete, forbid_update_and_delete

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "network_tests",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("facility_id", sa.Integer(), nullable=True),
        sa.Column("created_at", telemed.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("connected", sa.Boolean(), nullable=False),
        sa.Column("rtt_ms", sa.Float(), nullable=True),
        sa.Column("jitter_ms", sa.Float(), nullable=True),
        sa.Column("probes_sent", sa.Integer(), nullable=False),
        sa.Column("probes_received", sa.Integer(), nullable=False),
        sa.Column("loss_percent", sa.Float(), nullable=True),
        sa.Column("up_kbps", sa.Float(), nullable=True),
        sa.Column("down_kbps", sa.Float(), nullable=True),
        sa.Column("recommendation", sa.String(length=16), nullable=False),
        sa.Column("user_agent", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.ForeignKeyConstraint(["facility_id"], ["facilities.id"]),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("network_tests", schema=None) as batch_op:
        batch_op.create_index(
            "ix_network_tests_facility_created", ["facility_id", "created_at"], unique=False
        )
        batch_op.create_index(
            "ix_network_tests_user_created", ["user_id", "created_at"], unique=False
        )
    forbid_update_and_delete("network_tests")


def downgrade() -> None:
    allow_update_and_delete("network_tests")
    op.drop_table("network_tests")
