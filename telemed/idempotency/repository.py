"""All SQL of the stored idempotent responses."""

from __future__ import annotations

from sqlalchemy import text
from sqlmodel import Session, select

from telemed.idempotency.models import IdempotencyKey


def lock(session: Session, lock_id: int) -> None:
    """Serialise requests that carry the same key, until this transaction ends.

    PostgreSQL: a transaction-level advisory lock on the key's number. SQLite: any statement
    begins the transaction with ``BEGIN IMMEDIATE`` (``telemed.db``), which holds the one
    write lock until the end; one statement takes it before the key is looked up.
    """
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": lock_id})
    else:
        session.execute(text("SELECT 1"))


def find(session: Session, user_id: int, key: str) -> IdempotencyKey | None:
    return session.exec(
        select(IdempotencyKey).where(IdempotencyKey.user_id == user_id, IdempotencyKey.key == key)
    ).first()
