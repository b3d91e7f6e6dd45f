"""the patient's consent to share and to call

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-03 07:30:00

One append-only table: consent given and consent withdrawn are both new rows (a trigger
refuses UPDATE and DELETE, as for attachments), and the latest row of a scope is the one in
force.
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import telemed.db
from telemed.migrations.append_only import allow_update_and_delete, forbid_update_and_delete

revision: str = "0016"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "consents",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("consult_id", sa.Integer(), nullable=False),
        sa.Column("case_id", sa.Integer(), nullable=False),
        sa.Column("scope", sa.String(length=8), nullable=False),
        sa.Column("action", sa.String(length=10), nullable=False),
        sa.Column("consenter", sa.String(length=10), nullable=False),
        sa.Column("guardian_name", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column(
            "guardian_relationship", sqlmodel.sql.sqltypes.AutoString(length=80), nullable=False
        ),
        sa.Column("method", sa.String(length=10), nullable=True),
        sa.Column("witness_name", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("photo_attachment_id", sa.Integer(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("given_at", telemed.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("recorded_by_id", sa.Integer(), nullable=False),
        sa.Column("recorded_at", telemed.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["case_id"], ["cases.id"]),
        sa.ForeignKeyConstraint(["consult_id"], ["consults.id"]),
        sa.ForeignKeyConstraint(["photo_attachment_id"], ["attachments.id"]),
        sa.ForeignKeyConstraint(["recorded_by_id"], ["users.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("consents", schema=None) as batch_op:
        batch_op.create_index(
            "ix_consents_consult_scope", ["consult_id", "scope", "id"], unique=False
        )
    forbid_update_and_delete("consents")


def downgrade() -> None:
    allow_update_and_delete("consents")
    op.drop_table("consents")
