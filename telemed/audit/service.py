"""Recording audit rows and verifying the chain.

``record`` inserts an unsealed row in the caller's transaction, so the audit row commits
or rolls back with the clinical write it describes, without any lock: the sealer
(``telemed.audit.sealer``) puts committed rows into the hash chain later.
``record_access`` records a read so that it persists whatever the request does: written when
the caller's unit of work ends, with its COMMIT or after its rollback
(``telemed.uow.persist_regardless``), before the response is sent. ``record_refusal``
records a refused attempt in the same way.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from sqlalchemy import Engine
from sqlmodel import Session

from telemed import request_id, uow
from telemed.accounts.models import User
from telemed.audit import chain, repository
from telemed.audit.appender import appender_for
from telemed.audit.auth import ensure_can_read_audit
from telemed.audit.context import client_address
from telemed.audit.models import AuditAction, AuditEntry
from telemed.audit.repository import Row
from telemed.db import utcnow
from telemed.errors import NotFound, TelemedError
from telemed.i18n import N_


def _entry(
    actor: User | None,
    action: AuditAction,
    object_type: str,
    object_id: int | str,
    case_id: int | None,
    consult_id: int | None,
    detail: str,
) -> Row:
    """A row's columns; the database gives its id, the sealer its place in the chain. A
    plain dict, not an ``AuditEntry``: building and dumping the model cost more than the
    INSERT's own CPU (issue 13)."""
    return dict(
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
        request_id=request_id.current.get(),
    )


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
) -> None:
    """Insert one row, unsealed, within the caller's transaction, so that it commits or
    rolls back with the clinical write it describes; no lock, so no writer waits for
    another's transaction. The database gives its id at insert (not read back here)."""
    repository.append(
        session, [_entry(actor, action, object_type, object_id, case_id, consult_id, detail)]
    )


class Recorder(Protocol):
    """:func:`record` or :func:`record_access`, for a service that audits either way
    (inside a writing unit, or from a page that only reads)."""

    def __call__(
        self,
        session: Session,
        actor: User | None,
        action: AuditAction,
        object_type: str,
        object_id: int | str,
        *,
        case_id: int | None = None,
        consult_id: int | None = None,
        detail: str = "",
    ) -> None: ...


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
) -> None:
    """Record a read (or a refusal).

    In a unit of work (``telemed.uow``; every request's, job's and command's): written when
    the unit ends, whether it commits or not, before the response is sent. On PostgreSQL
    it goes in with the unit's own COMMIT (issue 13: one commit per read instead of a
    hand-off to the appender's thread and a transaction there), and a unit that wrote
    nothing else commits without waiting for the WAL flush, as the appender did: rows of
    reads only (a database crash may lose the last fraction of a second of them). On
    SQLite a unit that only read writes it in a short transaction of its own, so that
    reading takes no write lock; in a unit that writes it goes in at once, with the writes.

    With a session no unit of work owns (PostgreSQL), nothing would commit the row: the
    engine's group-commit appender commits it on a connection of its own before this
    returns (``telemed.audit.appender``).
    """
    entry = _entry(actor, action, object_type, object_id, case_id, consult_id, detail)
    engine = engine_of(session)
    postgres = engine.dialect.name == "postgresql"
    if uow.only_reads(session) or (postgres and uow.is_unit(session)):
        uow.persist_regardless(
            session, lambda unit: repository.append(unit, [entry]), durable=False
        )
    elif postgres:
        appender = appender_for(engine, repository.prepare_read_appender, repository.append_rows)
        appender.append(entry)
    else:  # SQLite, in a unit that writes: with it
        repository.append(session, [entry])


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

    uow.persist_regardless(session, write, durable=False)


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
    if not repository.case_exists(session, case_id):
        raise NotFound(N_("case %(case_id)s not found"), case_id=case_id)
    entries = repository.for_case(session, case_id)
    record_access(session, user, AuditAction.read, "audit_log", case_id, case_id=case_id)
    return entries


def head(session: Session) -> tuple[int, str] | None:
    """The sealed chain's length and last hash: worth keeping elsewhere, since removing the
    newest rows leaves a shorter chain that is valid in itself."""
    return repository.head(session)


@dataclass(frozen=True)
class ChainReport:
    """What ``telemed audit verify`` found: the sealed chain, and the rows not yet in it."""

    sealed: int  # rows checked before the first break (all of them if intact)
    broken: chain.ChainBreak | None
    unsealed: int
    oldest_unsealed_at: datetime | None


def verify(session: Session) -> ChainReport:
    """Check the sealed chain row by row, and count the unsealed tail (which no hash covers
    yet: the sealer's interval bounds how long a row stays so)."""
    checked, broken = chain.verify(repository.walk(session))
    unsealed, oldest = repository.unsealed_tail(session)
    return ChainReport(checked, broken, unsealed, oldest)
