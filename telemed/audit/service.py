"""Recording audit rows and verifying the chain.

``record`` appends in the caller's transaction, so the audit row commits or rolls back
with the clinical write it describes. ``record_refusal`` writes in a transaction of its
own, because the refused request's transaction is rolled back.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from telemed.accounts.models import User
from telemed.audit import chain, repository
from telemed.audit.context import client_address
from telemed.audit.models import AuditAction, AuditEntry
from telemed.audit.auth import ensure_can_read_audit
from telemed.cases.models import Case
from telemed.db import utcnow
from telemed.errors import NotFound


def _lock(session: Session) -> None:
    """Serialise appends: PostgreSQL by an advisory lock held to the end of the transaction;
    SQLite transactions already hold the database's write lock (BEGIN IMMEDIATE)."""
    if session.get_bind().dialect.name == "postgresql":
        repository.lock_chain(session)


def record(
    session: Session,
    actor: User | None,
    action: AuditAction,
    object_type: str,
    object_id: int | str,
    *,
    case_id: int | None = None,
    consult_id: int | None = None,
    detail: str = "",
) -> AuditEntry:
    """Append one row to the chain within the caller's transaction (flushed, not committed)."""
    _lock(session)
    head = repository.chain_head(session)
    entry = AuditEntry(
        id=(head.id + 1) if head else 1,
        at=utcnow(),
        actor_id=actor.id if actor else None,
        actor_role=str(actor.role) if actor else "system",
        action=action,
        object_type=object_type,
        object_id=str(object_id),
        case_id=case_id,
        consult_id=consult_id,
        client_address=client_address.get()[:64],
        detail=detail[:500],
        prev_hash=head.row_hash if head else chain.GENESIS_HASH,
        row_hash="",
    )
    entry.row_hash = chain.row_digest(entry)
    session.add(entry)
    session.flush()
    return entry


def record_and_commit(session: Session, *args: Any, **kwargs: Any) -> AuditEntry:
    """For reads: the audit row is the only write of the request."""
    entry = record(session, *args, **kwargs)
    session.commit()
    return entry


def record_refusal(
    engine: Engine,
    actor: User | None,
    object_type: str,
    object_id: int | str,
    *,
    case_id: int | None = None,
    consult_id: int | None = None,
    detail: str = "",
) -> None:
    """A refused attempt is evidence too: record it in its own transaction."""
    with Session(engine) as session:
        try:
            record(
                session,
                actor,
                AuditAction.denied,
                object_type,
                object_id,
                case_id=case_id,
                consult_id=consult_id,
                detail=detail,
            )
            session.commit()
        except IntegrityError:  # pragma: no cover - lost a race for the next id; retry once
            session.rollback()
            record(
                session,
                actor,
                AuditAction.denied,
                object_type,
                object_id,
                case_id=case_id,
                consult_id=consult_id,
                detail=detail,
            )
            session.commit()


def case_trail(session: Session, user: User, case_id: int) -> list[AuditEntry]:
    """The audit rows of one case, newest first; reading them is itself audited."""
    ensure_can_read_audit(user)
    if session.get(Case, case_id) is None:
        raise NotFound(f"case {case_id} not found")
    entries = repository.for_case(session, case_id)
    record_and_commit(session, user, AuditAction.read, "audit_log", case_id, case_id=case_id)
    return entries


def verify(session: Session) -> tuple[int, chain.ChainBreak | None]:
    return chain.verify(repository.walk(session))
