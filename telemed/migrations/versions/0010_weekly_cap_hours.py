"""a specialist's weekly cap in booked time, beside the cap in consults

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-27 15:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("specialist_profiles") as batch:
        batch.add_column(sa.Column("weekly_cap_minutes", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("specialist_profiles") as batch:
        batch.drop_column("weekly_cap_minutes")
