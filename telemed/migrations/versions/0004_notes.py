"""consult notes with versions, ICD-10 diagnoses, outcomes

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-27 12:55:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import telemed.db
from telemed.migrations.append_only import allow_update_and_delete, forbid_update_and_delete

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SIGNED_NOTE_LOCK_PG = """
CREATE OR REPLACE FUNCTION telemed_signed_note_locked() RETURNS trigger AS $$
BEGIN
  IF TG_OP = 'DELETE' THEN
    RAISE EXCEPTION 'notes are never deleted';
  END IF;
  IF OLD.status = 'signed' THEN
    RAISE EXCEPTION 'note % is signed and locked; amend it instead', OLD.id;
  END IF;
  RETURN NEW;
END $$ LANGUAGE plpgsql
"""

SIGNED_DIAGNOSES_LOCK_PG = """
CREATE OR REPLACE FUNCTION telemed_signed_diagnoses_locked() RETURNS trigger AS $$
DECLARE
  note_status text;
BEGIN
  SELECT status INTO note_status FROM consult_notes
    WHERE id = COALESCE(NEW.note_id, OLD.note_id);
  IF note_status = 'signed' THEN
    RAISE EXCEPTION 'the diagnoses of a signed note are locked';
  END IF;
  RETURN COALESCE(NEW, OLD);
END $$ LANGUAGE plpgsql
"""


def upgrade() -> None:
    op.create_table(
        "consult_notes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("consult_id", sa.Integer(), nullable=False),
        sa.Column("series_id", sqlmodel.sql.sqltypes.AutoString(length=36), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("amends_id", sa.Integer(), nullable=True),
        sa.Column("amendment_reason", sa.Text(), nullable=False),
        sa.Column("author_id", sa.Integer(), nullable=False),
        sa.Column("author_role", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=8), nullable=False),
        sa.Column("subjective", sa.Text(), nullable=False),
        sa.Column("objective", sa.Text(), nullable=False),
        sa.Column("assessment", sa.Text(), nullable=False),
        sa.Column("plan", sa.Text(), nullable=False),
        sa.Column("follow_up_on", sa.Date(), nullable=True),
        sa.Column("follow_up_instruction", sa.Text(), nullable=False),
        sa.Column("created_at", telemed.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", telemed.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("signed_at", telemed.db.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["amends_id"], ["consult_notes.id"]),
        sa.ForeignKeyConstraint(["author_id"], ["users.id"]),
        sa.ForeignKeyConstraint(["consult_id"], ["consults.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("series_id", "version", name="uq_note_series_version"),
    )
    with op.batch_alter_table("consult_notes", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_consult_notes_consult_id"), ["consult_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_consult_notes_series_id"), ["series_id"], unique=False)

    op.create_table(
        "note_diagnoses",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("note_id", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("code", sqlmodel.sql.sqltypes.AutoString(length=8), nullable=False),
        sa.Column("title", sqlmodel.sql.sqltypes.AutoString(length=255), nullable=False),
        sa.ForeignKeyConstraint(["note_id"], ["consult_notes.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("note_diagnoses", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_note_diagnoses_note_id"), ["note_id"], unique=False)

    op.create_table(
        "consult_outcomes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("consult_id", sa.Integer(), nullable=False),
        sa.Column("outcome", sa.String(length=24), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.Column("recorded_by_id", sa.Integer(), nullable=False),
        sa.Column("recorded_at", telemed.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["consult_id"], ["consults.id"]),
        sa.ForeignKeyConstraint(["recorded_by_id"], ["users.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("consult_outcomes", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_consult_outcomes_consult_id"), ["consult_id"], unique=False
        )
    forbid_update_and_delete("consult_outcomes")
    _lock_signed_notes()


def _lock_signed_notes() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(SIGNED_NOTE_LOCK_PG)
        op.execute(
            "CREATE TRIGGER consult_notes_signed_locked BEFORE UPDATE OR DELETE ON consult_notes "
            "FOR EACH ROW EXECUTE FUNCTION telemed_signed_note_locked()"
        )
        op.execute(SIGNED_DIAGNOSES_LOCK_PG)
        op.execute(
            "CREATE TRIGGER note_diagnoses_signed_locked "
            "BEFORE INSERT OR UPDATE OR DELETE ON note_diagnoses "
            "FOR EACH ROW EXECUTE FUNCTION telemed_signed_diagnoses_locked()"
        )
        return
    op.execute(
        "CREATE TRIGGER consult_notes_no_delete BEFORE DELETE ON consult_notes "
        "BEGIN SELECT RAISE(ABORT, 'notes are never deleted'); END"
    )
    op.execute(
        "CREATE TRIGGER consult_notes_signed_locked BEFORE UPDATE ON consult_notes "
        "WHEN OLD.status = 'signed' "
        "BEGIN SELECT RAISE(ABORT, 'the note is signed and locked; amend it instead'); END"
    )
    for action, row in (("INSERT", "NEW"), ("UPDATE", "OLD"), ("DELETE", "OLD")):
        op.execute(
            f"CREATE TRIGGER note_diagnoses_signed_{action.lower()} BEFORE {action} "
            f"ON note_diagnoses WHEN (SELECT status FROM consult_notes "
            f"WHERE id = {row}.note_id) = 'signed' "
            "BEGIN SELECT RAISE(ABORT, 'the diagnoses of a signed note are locked'); END"
        )


def downgrade() -> None:
    allow_update_and_delete("consult_outcomes")
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS consult_notes_signed_locked ON consult_notes")
        op.execute("DROP TRIGGER IF EXISTS note_diagnoses_signed_locked ON note_diagnoses")
    op.drop_table("consult_outcomes")
    op.drop_table("note_diagnoses")
    op.drop_table("consult_notes")
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP FUNCTION IF EXISTS telemed_signed_diagnoses_locked()")
        op.execute("DROP FUNCTION IF EXISTS telemed_signed_note_locked()")
