"""All SQL of the audit trail."""

from __future__ import annotations

from collections.abc import Iterator

from sqlalchemy import text
from sqlmodel import Session, col, select

from telemed.audit.models import AuditEntry

# Any constant: the key of the PostgreSQL advisory lock that serialises chain appends.
CHAIN_LOCK_KEY = 0x7E1E_AD17


def lock_chain(session: Session) -> None:
    """Hold the chain until this transaction ends (PostgreSQL); SQLite has one writer."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": CHAIN_LOCK_KEY})


def chain_head(session: Session) -> AuditEntry | None:
    return session.exec(select(AuditEntry).order_by(col(AuditEntry.id).desc()).limit(1)).first()


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
