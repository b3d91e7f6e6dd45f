"""Uptake: each month's waiting-time percentile picks, kept beside the rollup

Revision ID: 0027
Revises: 0026
Create Date: 2026-12-04 19:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0027"
down_revision: str | None = "0026"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "uptake_wait_picks",
        sa.Column("scope", sa.String(length=4), nullable=False),
        sa.Column("indicator", sa.String(length=24), nullable=False),
        sa.Column("month", sa.Date(), nullable=False),
        sa.Column("district_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("specialty", sa.String(length=40), nullable=False),
        sa.Column("urgency", sa.String(length=12), nullable=False),
        sa.Column("pct", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("vbin", sa.Integer(), nullable=False),
        sa.Column("waits", sa.Integer(), nullable=False),
        sa.Column("n", sa.Integer(), nullable=False),
        sa.Column("total", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint(
            "scope", "indicator", "month", "district_id", "specialty", "urgency", "pct"
        ),
    )
    # a rollup built before the picks has none: the job makes them on its next run
    with op.batch_alter_table("uptake_rollup_state") as batch:
        batch.add_column(
            sa.Column("picks_built", sa.Boolean(), nullable=False, server_default=sa.false())
        )


def downgrade() -> None:
    with op.batch_alter_table("uptake_rollup_state") as batch:
        batch.drop_column("picks_built")
    op.drop_table("uptake_wait_picks")
