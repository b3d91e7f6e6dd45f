"""specialist directory, availability and offers

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-27 13:10:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import telemed.db

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _string(length: int) -> sqlmodel.sql.sqltypes.AutoString:
    return sqlmodel.sql.sqltypes.AutoString(length=length)


def upgrade() -> None:
    op.create_table(
        "specialist_profiles",
        sa.Column("user_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("sub_specialties", _string(500), nullable=False),
        sa.Column("languages", _string(16), nullable=False),
        sa.Column("country", _string(2), nullable=False),
        sa.Column("registration_body", sa.String(length=8), nullable=False),
        sa.Column("registration_number", _string(40), nullable=False),
        sa.Column("registration_expires_on", sa.Date(), nullable=False),
        sa.Column("bio", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("verified_by_id", sa.Integer(), nullable=True),
        sa.Column("verified_at", telemed.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("verification_note", sa.Text(), nullable=False),
        sa.Column("rejection_reason", sa.Text(), nullable=False),
        sa.Column("weekly_cap", sa.Integer(), nullable=True),
        sa.Column("away", sa.Boolean(), nullable=False),
        sa.Column("min_notice_minutes", sa.Integer(), nullable=False),
        sa.Column("registered_from", _string(64), nullable=False),
        sa.Column("created_at", telemed.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", telemed.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"]),
        sa.ForeignKeyConstraint(["verified_by_id"], ["users.id"]),
        sa.PrimaryKeyConstraint("user_id"),
    )
    with op.batch_alter_table("specialist_profiles", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_specialist_profiles_status"), ["status"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_specialist_profiles_created_at"), ["created_at"], unique=False
        )

    op.create_table(
        "specialist_specialties",
        sa.Column("user_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("specialty_code", _string(40), nullable=False),
        sa.ForeignKeyConstraint(["user_id"], ["specialist_profiles.user_id"]),
        sa.ForeignKeyConstraint(["specialty_code"], ["specialties.code"]),
        sa.PrimaryKeyConstraint("user_id", "specialty_code"),
    )

    op.create_table(
        "availability_windows",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("weekday", sa.Integer(), nullable=False),
        sa.Column("start_time", sa.Time(), nullable=False),
        sa.Column("end_time", sa.Time(), nullable=False),
        sa.ForeignKeyConstraint(["user_id"], ["specialist_profiles.user_id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("availability_windows", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_availability_windows_user_id"), ["user_id"], unique=False
        )

    op.create_table(
        "availability_exceptions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("first_day", sa.Date(), nullable=False),
        sa.Column("last_day", sa.Date(), nullable=False),
        sa.Column("start_time", sa.Time(), nullable=True),
        sa.Column("end_time", sa.Time(), nullable=True),
        sa.ForeignKeyConstraint(["user_id"], ["specialist_profiles.user_id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("availability_exceptions", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_availability_exceptions_user_id"), ["user_id"], unique=False
        )

    op.create_table(
        "consult_offers",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("consult_id", sa.Integer(), nullable=False),
        sa.Column("specialist_id", sa.Integer(), nullable=False),
        sa.Column("round", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("offered_at", telemed.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("expires_at", telemed.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("responded_at", telemed.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("slot_start", telemed.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("slot_end", telemed.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("assigned_by_id", sa.Integer(), nullable=True),
        sa.Column("accepted_consult_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(["consult_id"], ["consults.id"]),
        sa.ForeignKeyConstraint(["specialist_id"], ["users.id"]),
        sa.ForeignKeyConstraint(["assigned_by_id"], ["users.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("accepted_consult_id", name="uq_offer_one_winner"),
    )
    with op.batch_alter_table("consult_offers", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_consult_offers_consult_id"), ["consult_id"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_consult_offers_specialist_id"), ["specialist_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_consult_offers_status"), ["status"], unique=False)
        batch_op.create_index(batch_op.f("ix_consult_offers_expires_at"), ["expires_at"], unique=False)


def downgrade() -> None:
    op.drop_table("consult_offers")
    op.drop_table("availability_exceptions")
    op.drop_table("availability_windows")
    op.drop_table("specialist_specialties")
    op.drop_table("specialist_profiles")
