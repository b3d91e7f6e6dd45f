"""All SQL of the audit trail."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, bindparam, func, insert, text, update
from sqlmodel import Session, col, select

from telemed.audit.chain import Link
from telemed.audit.models import AuditEntry

# Any constant: the key of the PostgreSQL advisory lock that only the sealer takes.
SEALER_LOCK_KEY = 0x7E1E_AD17

_UNSEALED = {"id", "seq", "prev_hash", "row_hash"}  # left to the database and the sealer


Row = dict[str, Any]  # an audit row's columns but _UNSEALED
_TABLE = AuditEntry.__table__  # type: ignore[attr-defined]


def append(session: Session, rows: list[Row]) -> None:
    """Plain INSERTs of unsealed rows (their columns but ``_UNSEALED``): no lock, nothing
    needs to come back. One row is one plain INSERT (a list is an executemany)."""
    session.execute(insert(_TABLE), rows[0] if len(rows) == 1 else rows)


def append_rows(connection: Connection, rows: list[Row]) -> None:
    """The rows on a connection of its own (the appender's), in the caller's transaction."""
    connection.execute(insert(_TABLE), rows)


def prepare_read_appender(connection: Connection) -> None:
    """The audit appender's own connection (PostgreSQL): its commits do not wait for the
    WAL flush, since it only inserts the rows of reads (a crash of the database may lose
    its last fraction of a second of them, whole batches). Set once for the connection's
    life instead of per batch (``SET LOCAL``: a round trip each); the appender never gives
    the connection back to the pool, where a clinical write could get it."""
    with connection.begin():
        connection.exec_driver_sql("SET synchronous_commit = off")


def lock_sealer(session: Session) -> None:
    """Make this transaction the only sealer until it ends.

    PostgreSQL: an advisory lock that writers never take. SQLite: the transaction already
    holds the database's write lock (BEGIN IMMEDIATE). Either way the reads that follow see
    every row committed before the lock was granted.
    """
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": SEALER_LOCK_KEY})


def head(session: Session) -> tuple[int, str] | None:
    """The last sealed row's position and hash."""
    row = session.execute(
        select(AuditEntry.seq, AuditEntry.row_hash)
        .where(col(AuditEntry.seq).is_not(None))
        .order_by(col(AuditEntry.seq).desc())
        .limit(1)
    ).first()
    return (int(row[0]), str(row[1])) if row else None


def unsealed(session: Session, limit: int) -> list[AuditEntry]:
    """Committed rows not yet in the chain, oldest insert first."""
    return list(
        session.exec(
            select(AuditEntry)
            .where(col(AuditEntry.seq).is_(None))
            .order_by(col(AuditEntry.id))
            .limit(limit)
        )
    )


def seal(session: Session, links: Sequence[Link]) -> None:
    """Write each row's place in the chain. The triggers let only an unsealed row be
    sealed, once; a position given twice breaks the unique constraint."""
    if not links:
        return
    statement = (
        update(AuditEntry)
        .where(col(AuditEntry.id) == bindparam("b_id"))
        .values(seq=bindparam("b_seq"), prev_hash=bindparam("b_prev"), row_hash=bindparam("b_hash"))
    )
    session.connection().execute(
        statement,
        [
            {"b_id": x.row_id, "b_seq": x.seq, "b_prev": x.prev_hash, "b_hash": x.row_hash}
            for x in links
        ],
    )


def unsealed_tail(session: Session) -> tuple[int, datetime | None]:
    """How many rows wait for the sealer, and when the oldest of them was written."""
    row = session.execute(
        select(func.count(), func.min(AuditEntry.at)).where(col(AuditEntry.seq).is_(None))
    ).one()
    return int(row[0]), row[1]


def walk(session: Session, batch: int = 5000) -> Iterator[AuditEntry]:
    """Every sealed row in chain order, in batches so that a long chain needs little memory."""
    last = 0
    while True:
        rows = list(
            session.exec(
                select(AuditEntry)
                .where(col(AuditEntry.seq) > last)
                .order_by(col(AuditEntry.seq))
                .limit(batch)
            )
        )
        if not rows:
            return
        yield from rows
        tail = rows[-1].seq
        if tail is None:  # cannot happen: the query selected seq > last
            return
        last = tail


def case_exists(session: Session, case_id: int) -> bool:
    """Whether the case exists, by its table's name only: the audit layer sits below the
    cases domain (docs/architecture.md) and must not import its models."""
    found = session.execute(text("SELECT 1 FROM cases WHERE id = :id"), {"id": case_id})
    return found.first() is not None


def for_case(session: Session, case_id: int, limit: int = 500) -> list[AuditEntry]:
    return list(
        session.exec(
            select(AuditEntry)
            .where(AuditEntry.case_id == case_id)
            .order_by(col(AuditEntry.id).desc())
            .limit(limit)
        )
    )
