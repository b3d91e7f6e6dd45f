"""On-call rota: weekly blocks per specialty, and the uses of one-tap accept links

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-03 09:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import telemed.db

revision: str = "0020"
down_revision: str | None = "0019"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "oncall_blocks",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("specialty_code", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
        sa.Column("weekday", sa.Integer(), nullable=False),
        sa.Column("start_time", sa.Time(), nullable=False),
        sa.Column("end_time", sa.Time(), nullable=False),
        sa.Column("created_at", telemed.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["specialty_code"], ["specialties.code"]),
        sa.ForeignKeyConstraint(["user_id"], ["specialist_profiles.user_id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_oncall_blocks_user_id", "oncall_blocks", ["user_id"], unique=False)
    op.create_index(
        "ix_oncall_blocks_specialty", "oncall_blocks", ["specialty_code", "weekday"], unique=False
    )
    op.create_table(
        "oncall_link_uses",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("token_digest", sa.String(length=64), nullable=False),
        sa.Column("offer_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("used_at", telemed.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["offer_id"], ["consult_offers.id"]),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("token_digest", name="uq_oncall_link_once"),
    )
    op.create_index(
        "ix_oncall_link_uses_offer_id", "oncall_link_uses", ["offer_id"], unique=False
    )


def downgrade() -> None:
    op.drop_index("ix_oncall_link_uses_offer_id", table_name="oncall_link_uses")
    op.drop_table("oncall_link_uses")
    op.drop_index("ix_oncall_blocks_specialty", table_name="oncall_blocks")
    op.drop_index("ix_oncall_blocks_user_id", table_name="oncall_blocks")
    op.drop_table("oncall_blocks")
