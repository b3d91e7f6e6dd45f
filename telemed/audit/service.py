"""Recording audit rows and verifying the chain.

``record`` appends in the caller's transaction, so the audit row commits or rolls back
with the clinical write it describes. ``record_access`` records a read: on PostgreSQL
through the group-commit appender (committed before it returns), on SQLite in the caller's
unit of work. ``record_refusal`` records a refused attempt so that it persists although the
request fails (``telemed.uow.persist_regardless``).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Engine, event
from sqlalchemy.orm import SessionTransaction
from sqlmodel import Session

from telemed import uow
from telemed.accounts.models import User
from telemed.audit import chain, repository
from telemed.audit.appender import appender_for
from telemed.audit.auth import ensure_can_read_audit
from telemed.audit.context import client_address
from telemed.audit.models import AuditAction, AuditEntry
from telemed.cases.models import Case
from telemed.db import utcnow
from telemed.errors import NotFound, TelemedError

_HEAD = "telemed_audit_head"  # (id, hash) of the chain head, while this transaction holds it
_LOCKED = "telemed_audit_locked"  # this transaction may hold the chain's lock
_LISTENING = "telemed_audit_listening"


def _forget_head(session: Session, _transaction: SessionTransaction) -> None:
    """After any rollback, savepoints included: the head may have been rolled back."""
    session.info.pop(_HEAD, None)


def _transaction_ended(session: Session, transaction: SessionTransaction) -> None:
    """The lock is held until the outermost transaction ends (a savepoint's release or
    rollback may leave it held, so the flag stays: the appender would wait for us)."""
    if transaction.parent is None:
        session.info.pop(_HEAD, None)
        session.info.pop(_LOCKED, None)


def _head(session: Session, *, relaxed: bool) -> tuple[int, str] | None:
    """The chain head, locked for this transaction; read once per transaction."""
    if _HEAD in session.info:
        head: tuple[int, str] | None = session.info[_HEAD]
        return head
    if not session.info.get(_LISTENING):
        session.info[_LISTENING] = True
        event.listen(session, "after_soft_rollback", _forget_head)
        event.listen(session, "after_transaction_end", _transaction_ended)
    session.info[_LOCKED] = True
    return repository.lock_and_read_head(session, relaxed=relaxed)


def _entry(
    actor: User | None,
    action: AuditAction,
    object_type: str,
    object_id: int | str,
    case_id: int | None,
    consult_id: int | None,
    detail: str,
) -> AuditEntry:
    """A row's content; ``_chain`` gives it its place (id, previous hash, hash)."""
    return AuditEntry(
        id=0,
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
        prev_hash="",
        row_hash="",
    )


def _chain(session: Session, entries: list[AuditEntry], *, relaxed: bool = False) -> None:
    """Link ``entries`` after the chain head (locked for this transaction) and insert them."""
    head = _head(session, relaxed=relaxed)
    last_id, last_hash = head if head else (0, chain.GENESIS_HASH)
    for entry in entries:
        entry.id, entry.prev_hash = last_id + 1, last_hash
        entry.row_hash = chain.row_digest(entry)
        last_id, last_hash = entry.id, entry.row_hash
    repository.append(session, entries)
    session.info[_HEAD] = (last_id, last_hash)


def _chain_reads(session: Session, entries: list[AuditEntry]) -> None:
    _chain(session, entries, relaxed=True)


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
    """Append one row within the caller's transaction, so that it commits or rolls back
    with the clinical write it describes."""
    entry = _entry(actor, action, object_type, object_id, case_id, consult_id, detail)
    _chain(session, [entry])
    return entry


def record_access(
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
    """Record a read (or a refusal).

    PostgreSQL: through the engine's group-commit appender, committed before this returns
    (the caller's transaction does not take the chain's lock for a read). SQLite: in the
    caller's unit of work, committed with it (its transaction holds the write lock already).
    """
    entry = _entry(actor, action, object_type, object_id, case_id, consult_id, detail)
    engine = engine_of(session)
    if engine.dialect.name == "postgresql" and not session.info.get(_LOCKED):
        appender_for(engine, _chain_reads).append(entry)
    else:  # SQLite, or this transaction holds the chain already: waiting would deadlock
        _chain(session, [entry])
    return entry


def record_refusal(
    session: Session,
    actor: User | None,
    object_type: str,
    object_id: int | str,
    *,
    case_id: int | None = None,
    consult_id: int | None = None,
    detail: str = "",
) -> None:
    """A refused attempt is evidence too, although the request fails: the row is written
    when the unit of work ends, after its rollback (``telemed.uow.persist_regardless``)."""

    def write(unit: Session) -> None:
        record_access(
            unit,
            actor,
            AuditAction.denied,
            object_type,
            object_id,
            case_id=case_id,
            consult_id=consult_id,
            detail=detail,
        )

    uow.persist_regardless(session, write)


def engine_of(session: Session) -> Engine:
    bind = session.get_bind()
    return bind if isinstance(bind, Engine) else bind.engine


@contextmanager
def refusals_audited(
    session: Session,
    actor: User,
    object_type: str,
    object_id: int | str,
    *,
    case_id: int | None = None,
    consult_id: int | None = None,
) -> Iterator[None]:
    """Run a clinical write in a savepoint: refused (any 4xx), whatever it had written is
    rolled back and the refusal is recorded as ``denied`` with the reason given to the user,
    while the rest of the caller's unit of work stands (a form page shows the error)."""
    try:
        with session.begin_nested():
            yield
    except TelemedError as exc:
        record_refusal(
            session,
            actor,
            object_type,
            object_id,
            case_id=case_id,
            consult_id=consult_id,
            detail=f"{exc.code}: {exc.message}",
        )
        raise


def case_trail(session: Session, user: User, case_id: int) -> list[AuditEntry]:
    """The audit rows of one case, newest first; reading them is itself audited."""
    ensure_can_read_audit(user)
    if session.get(Case, case_id) is None:
        raise NotFound(f"case {case_id} not found")
    entries = repository.for_case(session, case_id)
    record_access(session, user, AuditAction.read, "audit_log", case_id, case_id=case_id)
    return entries


def verify(session: Session) -> tuple[int, chain.ChainBreak | None]:
    return chain.verify(repository.walk(session))
