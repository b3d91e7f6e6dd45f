"""Recording audit rows and verifying the chain.

``record`` appends in the caller's transaction, so the audit row commits or rolls back
with the clinical write it describes. ``record_access`` records a read, committed before
it returns; ``record_refusal`` records a refused attempt in a transaction of its own.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Engine, event
from sqlmodel import Session

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
_LISTENING = "telemed_audit_listening"


def _forget_head(session: Session) -> None:
    session.info.pop(_HEAD, None)


def _head(session: Session, *, relaxed: bool) -> tuple[int, str] | None:
    """The chain head, locked for this transaction; read once per transaction."""
    if _HEAD in session.info:
        head: tuple[int, str] | None = session.info[_HEAD]
        return head
    head = repository.lock_and_read_head(session, relaxed=relaxed)
    if not session.info.get(_LISTENING):
        session.info[_LISTENING] = True
        for name in ("after_commit", "after_rollback", "after_soft_rollback"):
            event.listen(session, name, lambda s, *_: _forget_head(s))
    return head


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
    """Record a read (or a refusal): committed before this returns, with no other write.

    PostgreSQL: through the engine's group-commit appender; SQLite: inline, committing the
    request's transaction (which holds the write lock already).
    """
    entry = _entry(actor, action, object_type, object_id, case_id, consult_id, detail)
    engine = engine_of(session)
    if engine.dialect.name == "postgresql" and _HEAD not in session.info:
        appender_for(engine, _chain_reads).append(entry)
    else:  # SQLite, or this transaction holds the chain already: waiting would deadlock
        _chain(session, [entry])
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
    """A refused attempt is evidence too. The caller has ended its own transaction (which
    is rolled back), so this is written in a transaction of its own."""
    with Session(engine) as session:
        record_access(
            session,
            actor,
            AuditAction.denied,
            object_type,
            object_id,
            case_id=case_id,
            consult_id=consult_id,
            detail=detail,
        )


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
    """Record a refused clinical write (any 4xx) as ``denied`` with the reason given to the
    user, after rolling back whatever the attempt had written."""
    try:
        yield
    except TelemedError as exc:
        session.rollback()
        record_refusal(
            engine_of(session),
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
