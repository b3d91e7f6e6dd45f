"""DHIS2 push requests: a coordinator asks from the exports page, the scheduler sends

Revision ID: 0028
Revises: 0027
Create Date: 2026-12-04 19:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import telemed.db

revision: str = "0028"
down_revision: str | None = "0027"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("dhis2_pushes") as batch:
        batch.add_column(
            sa.Column("requested_at", telemed.db.UTCDateTime(timezone=True), nullable=True)
        )
        batch.add_column(sa.Column("requested_by_id", sa.Integer(), nullable=True))
        batch.create_foreign_key(
            "fk_dhis2_pushes_requested_by", "users", ["requested_by_id"], ["id"]
        )


def downgrade() -> None:
    with op.batch_alter_table("dhis2_pushes") as batch:
        batch.drop_constraint("fk_dhis2_pushes_requested_by", type_="foreignkey")
        batch.drop_column("requested_by_id")
        batch.drop_column("requested_at")
