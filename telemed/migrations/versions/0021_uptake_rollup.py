"""Uptake rollup: the indicators' fact rows by Maseru day, their sums, and their freshness

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-03 14:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import telemed.db

revision: str = "0021"
down_revision: str | None = "0020"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "uptake_facts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("indicator", sqlmodel.sql.sqltypes.AutoString(length=24), nullable=False),
        sa.Column("consult_id", sa.Integer(), nullable=True),
        sa.Column("district_id", sa.Integer(), nullable=False),
        sa.Column("facility_id", sa.Integer(), nullable=False),
        sa.Column("specialty", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
        sa.Column("urgency", sqlmodel.sql.sqltypes.AutoString(length=12), nullable=False),
        sa.Column("category", sqlmodel.sql.sqltypes.AutoString(length=24), nullable=False),
        sa.Column("subject", sa.Integer(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("prev_day", sa.Date(), nullable=False),
        sa.Column("value", sa.Float(), nullable=True),
        sa.Column("vbin", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_uptake_facts_consult", "uptake_facts", ["consult_id"])
    op.create_index("ix_uptake_facts_facility_day", "uptake_facts", ["facility_id", "day"])
    op.create_index("ix_uptake_facts_indicator_day", "uptake_facts", ["indicator", "day"])
    op.create_table(
        "uptake_rollup",
        sa.Column("grain", sa.String(length=4), nullable=False),
        sa.Column("indicator", sa.String(length=24), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("prev_day", sa.Date(), nullable=False),
        sa.Column("district_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("facility_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("specialty", sa.String(length=40), nullable=False),
        sa.Column("urgency", sa.String(length=12), nullable=False),
        sa.Column("category", sa.String(length=24), nullable=False),
        sa.Column("subject", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("vbin", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("n", sa.Integer(), nullable=False),
        sa.Column("total", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint(
            "grain",
            "indicator",
            "day",
            "prev_day",
            "district_id",
            "facility_id",
            "specialty",
            "urgency",
            "category",
            "subject",
            "vbin",
        ),
    )
    op.create_index("ix_uptake_rollup_district", "uptake_rollup", ["grain", "district_id", "day"])
    op.create_index("ix_uptake_rollup_facility", "uptake_rollup", ["grain", "facility_id", "day"])
    op.create_table(
        "uptake_rollup_state",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("as_of", telemed.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("built_at", telemed.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("watermarks", sqlmodel.sql.sqltypes.AutoString(length=2000), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )


def downgrade() -> None:
    op.drop_table("uptake_rollup_state")
    op.drop_index("ix_uptake_rollup_facility", table_name="uptake_rollup")
    op.drop_index("ix_uptake_rollup_district", table_name="uptake_rollup")
    op.drop_table("uptake_rollup")
    op.drop_index("ix_uptake_facts_indicator_day", table_name="uptake_facts")
    op.drop_index("ix_uptake_facts_facility_day", table_name="uptake_facts")
    op.drop_index("ix_uptake_facts_consult", table_name="uptake_facts")
    op.drop_table("uptake_facts")
