"""audit log: hash-chained, append-only

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27 12:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import telemed.db
from telemed.migrations.append_only import allow_update_and_delete, forbid_update_and_delete
from telemed.migrations.audit_chain import LOCK_AND_READ_HEAD

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "audit_log",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("at", telemed.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("actor_id", sa.Integer(), nullable=True),
        sa.Column("actor_role", sa.String(length=16), nullable=False),
        sa.Column("action", sa.String(length=16), nullable=False),
        sa.Column("object_type", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("object_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("case_id", sa.Integer(), nullable=True),
        sa.Column("consult_id", sa.Integer(), nullable=True),
        sa.Column("client_address", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("detail", sqlmodel.sql.sqltypes.AutoString(length=500), nullable=False),
        sa.Column("prev_hash", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("row_hash", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("row_hash"),
    )
    with op.batch_alter_table("audit_log", schema=None) as batch_op:
        batch_op.create_index("ix_audit_log_case", ["case_id", "id"], unique=False)
        batch_op.create_index("ix_audit_log_consult", ["consult_id", "id"], unique=False)
    forbid_update_and_delete("audit_log")
    if op.get_bind().dialect.name == "postgresql":
        # One round trip instead of three: take the chain's advisory lock, optionally stop
        # this transaction from waiting for the WAL flush, and read the head.
        op.execute(LOCK_AND_READ_HEAD)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP FUNCTION IF EXISTS telemed_audit_lock_head(bigint, boolean)")
    allow_update_and_delete("audit_log")
    op.drop_table("audit_log")
