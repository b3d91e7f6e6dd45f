"""All SQL of the audit trail."""

from __future__ import annotations

from collections.abc import Iterator

from sqlalchemy import insert, text
from sqlmodel import Session, col, select

from telemed.audit.models import AuditEntry

# Any constant: the key of the PostgreSQL advisory lock that serialises chain appends.
CHAIN_LOCK_KEY = 0x7E1E_AD17


def lock_and_read_head(session: Session, *, relaxed: bool) -> tuple[int, str] | None:
    """Hold the chain until this transaction ends and read its head (id, hash).

    PostgreSQL: one call to the migration's function (advisory lock, then a fresh read).
    ``relaxed`` lets a transaction whose only write is a read's audit row commit without
    waiting for the WAL flush: a database crash may lose the last fraction of a second of
    such rows, whole transactions at a time, so the chain stays intact.
    SQLite transactions already hold the database's write lock (BEGIN IMMEDIATE).
    """
    if session.get_bind().dialect.name == "postgresql":
        row = session.execute(
            text("SELECT head_id, head_hash FROM telemed_audit_lock_head(:key, :relaxed)"),
            {"key": CHAIN_LOCK_KEY, "relaxed": relaxed},
        ).first()
    else:
        row = session.execute(
            text("SELECT id, row_hash FROM audit_log ORDER BY id DESC LIMIT 1")
        ).first()
    return (int(row[0]), str(row[1])) if row else None


def append(session: Session, entries: list[AuditEntry]) -> None:
    """Plain INSERTs: the entries are complete, nothing needs to come back."""
    session.execute(insert(AuditEntry), [e.model_dump() for e in entries])


def walk(session: Session, batch: int = 5000) -> Iterator[AuditEntry]:
    """Every row in id order, in batches so that a long chain needs little memory."""
    last = 0
    while True:
        rows = list(
            session.exec(
                select(AuditEntry)
                .where(AuditEntry.id > last)
                .order_by(col(AuditEntry.id))
                .limit(batch)
            )
        )
        if not rows:
            return
        yield from rows
        last = rows[-1].id


def for_case(session: Session, case_id: int, limit: int = 500) -> list[AuditEntry]:
    return list(
        session.exec(
            select(AuditEntry)
            .where(AuditEntry.case_id == case_id)
            .order_by(col(AuditEntry.id).desc())
            .limit(limit)
        )
    )
