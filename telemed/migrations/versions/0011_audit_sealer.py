"""audit rows inserted unsealed, chained by a sealer: no writer waits for the chain

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-03 12:00:00

The id becomes the database's (a sequence on PostgreSQL, the rowid on SQLite) and the
chain position a column of its own, ``seq``, given by the sealer. The rows chained so far
had their id as their position: they get ``seq = id`` and their hashes stay valid (the
digest hashes the position where it used to hash the id). The downgrade needs every row
sealed; it then gives each row its position back as its id.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from telemed.migrations.append_only import allow_update_and_delete, forbid_update_and_delete
from telemed.migrations.audit_chain import LOCK_AND_READ_HEAD, guard_sealing, unguard_sealing

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SEQ_UNIQUE = "audit_log_seq_key"  # PostgreSQL's own name for it, given on SQLite too
UNSEALED_INDEX = "ix_audit_log_unsealed"
UNSEALED = sa.text("seq IS NULL")


def upgrade() -> None:
    postgres = op.get_bind().dialect.name == "postgresql"
    if postgres:
        op.execute("DROP FUNCTION IF EXISTS telemed_audit_lock_head(bigint, boolean)")
    allow_update_and_delete("audit_log")
    with op.batch_alter_table("audit_log") as batch:
        batch.add_column(sa.Column("seq", sa.Integer(), nullable=True))
        batch.alter_column("prev_hash", existing_type=sa.String(64), nullable=True)
        batch.alter_column("row_hash", existing_type=sa.String(64), nullable=True)
    op.execute("UPDATE audit_log SET seq = id")
    with op.batch_alter_table("audit_log") as batch:
        batch.create_unique_constraint(SEQ_UNIQUE, ["seq"])
    op.create_index(
        UNSEALED_INDEX, "audit_log", ["id"], postgresql_where=UNSEALED, sqlite_where=UNSEALED
    )
    if postgres:  # SQLite's INTEGER PRIMARY KEY is the rowid: it numbers new rows already
        op.execute("CREATE SEQUENCE audit_log_id_seq AS integer OWNED BY audit_log.id")
        op.execute(
            "SELECT setval('audit_log_id_seq', COALESCE(max(id), 0) + 1, false) FROM audit_log"
        )
        op.execute(
            "ALTER TABLE audit_log ALTER COLUMN id SET DEFAULT nextval('audit_log_id_seq'::regclass)"
        )
    guard_sealing()


def downgrade() -> None:
    postgres = op.get_bind().dialect.name == "postgresql"
    connection = op.get_bind()
    unsealed = connection.execute(sa.text("SELECT count(*) FROM audit_log WHERE seq IS NULL"))
    waiting = unsealed.scalar_one()
    if waiting:
        raise RuntimeError(
            f"{waiting} audit rows are not sealed yet: stop the application, run "
            "`telemed audit seal`, then downgrade (before 0011 every row is chained)"
        )
    unguard_sealing()
    # Before 0011 a row's id was its position: give it back (through negatives, so that
    # no two rows share an id on the way).
    op.execute("UPDATE audit_log SET id = -id WHERE id <> seq")
    op.execute("UPDATE audit_log SET id = seq WHERE id < 0")
    if postgres:
        op.execute("ALTER TABLE audit_log ALTER COLUMN id DROP DEFAULT")
        op.execute("DROP SEQUENCE audit_log_id_seq")
    op.drop_index(UNSEALED_INDEX, table_name="audit_log")
    with op.batch_alter_table("audit_log") as batch:
        batch.drop_constraint(SEQ_UNIQUE, type_="unique")
        batch.drop_column("seq")
        batch.alter_column("prev_hash", existing_type=sa.String(64), nullable=False)
        batch.alter_column("row_hash", existing_type=sa.String(64), nullable=False)
    forbid_update_and_delete("audit_log")
    if postgres:
        op.execute(LOCK_AND_READ_HEAD)
