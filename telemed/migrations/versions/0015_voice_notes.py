"""voice notes: an attachment's duration

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-03 07:30:00

``attachments.duration_ms``, read from the Ogg or WebM container of an Opus recording, and
``uploads.voice_note``: the upload is a voice note (Opus, three minutes at most), which
becomes a message of the thread when it completes unless it was sent for one.

``attachments`` is append-only (a trigger refuses UPDATE and DELETE); adding a nullable
column rewrites no row, and on SQLite ``ADD COLUMN`` keeps the table and its triggers.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from telemed.migrations.append_only import allow_update_and_delete, forbid_update_and_delete

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("attachments", sa.Column("duration_ms", sa.Integer(), nullable=True))
    op.add_column(
        "uploads",
        sa.Column("voice_note", sa.Boolean(), nullable=False, server_default=sa.false()),
    )


def downgrade() -> None:
    with op.batch_alter_table("uploads") as batch:
        batch.drop_column("voice_note")
    # SQLite drops a column by copying the table, which loses its triggers: lift the
    # append-only rule around it and put it back.
    allow_update_and_delete("attachments")
    with op.batch_alter_table("attachments") as batch:
        batch.drop_column("duration_ms")
    forbid_update_and_delete("attachments")
