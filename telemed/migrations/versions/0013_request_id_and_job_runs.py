"""request ids on audit rows, and one row per job run

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-03 07:30:00

``audit_log.request_id`` links an audit row to the log line of the request that wrote it
(``telemed.request_id``); it is content like any other column, so the sealing guard is
reinstalled to keep it unchanged too, and the chain hashes it when set (rows without one
hash as before). ``job_runs`` records the periodic jobs' runs (``telemed.jobs.models``).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import telemed.db
from telemed.migrations.audit_chain import CONTENT, CONTENT_0013, guard_sealing, unguard_sealing

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    unguard_sealing()
    op.add_column("audit_log", sa.Column("request_id", sa.String(length=64), nullable=True))
    op.create_index("ix_audit_log_request_id", "audit_log", ["request_id"])
    guard_sealing(CONTENT_0013)
    op.create_table(
        "job_runs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("job", sa.String(length=40), nullable=False),
        sa.Column("started_at", telemed.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("finished_at", telemed.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("ok", sa.Boolean(), nullable=False),
        sa.Column("error", sa.Text(), nullable=False),
        sa.Column("items", sa.Integer(), nullable=False),
        sa.Column("runs", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_job_runs_job_id", "job_runs", ["job", "id"])


def downgrade() -> None:
    op.drop_index("ix_job_runs_job_id", table_name="job_runs")
    op.drop_table("job_runs")
    unguard_sealing()
    op.drop_index("ix_audit_log_request_id", table_name="audit_log")
    # Plain ALTER on both (SQLite >= 3.35): a batch copy of audit_log would rebuild the table
    # around its triggers and partial index for nothing.
    op.execute("ALTER TABLE audit_log DROP COLUMN request_id")
    guard_sealing(CONTENT)
