"""Units of work: who commits, and when.

A unit of work is one database transaction: it commits when the work it wraps ends
normally and rolls back when that work raises. Services and repositories only ``flush``;
they never commit or roll back. The scope owners, the only code that ends a transaction:

- a request: ``telemed.deps.get_db``, the session behind ``SessionDep``. It commits after
  the endpoint returned and *before* the response is sent, so an acknowledged write is
  durable and a failed commit is an error response; any exception rolls it back.
- a job run (``telemed.jobs``): each item in a unit of its own (``Units.item``), so that one
  bad item is logged and rolled back and the rest go on.
- the command line (``telemed.cli``), the signalling hub's event recorder
  (``telemed.sessions.service.record_event``) and the upload endpoint that must commit a
  chunk before the photo it completes is decoded: ``Units.one()``.
- the audit appender (``telemed.audit.appender``), which group-commits the audit rows of
  reads on a connection of its own.

Besides committing or rolling back, a unit does three things for the code inside it:

- ``persist_regardless(session, write)``: a write that must persist even when the unit rolls
  back: the audit row of a refused attempt (the request fails with 403 or 404), a failed
  login (401), an upload marked failed (422). When the unit commits, the write goes in with
  it; when it rolls back, the write is made after the rollback in a short transaction of
  its own. Either way exactly once.
- ``after_commit(session, action)``: work outside the database that may only happen once the
  unit is durable (deleting the files of expired uploads, forgetting a logged-out session).
  Dropped if the unit rolls back.
- ``end_read(session)``: ends a transaction that has only read, before slow work (decoding a
  photo, waiting for an upload's next chunk over 2G), so that no lock is held meanwhile
  (on SQLite every transaction holds the single write lock: ``telemed.db``).

A step whose refusal the caller turns into a page (a form shown again with the error) runs
in a savepoint, ``session.begin_nested()``: the refused step leaves nothing behind, and the
rest of the request's unit still commits.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import TracebackType
from typing import Any, Concatenate, ParamSpec, TypeVar

from sqlalchemy import Engine, event
from sqlalchemy.orm import ORMExecuteState, SessionTransaction
from sqlmodel import Session

log = logging.getLogger(__name__)

_REGARDLESS = "telemed.uow.regardless"
_AFTER_COMMIT = "telemed.uow.after_commit"
_WROTE = "telemed.uow.wrote"

Write = Callable[[Session], object]
T = TypeVar("T")
P = ParamSpec("P")


def persist_regardless(session: Session, write: Write) -> None:
    """Make ``write(session)`` when this unit ends, whether it commits or rolls back."""
    session.info.setdefault(_REGARDLESS, []).append(write)


def after_commit(session: Session, action: Callable[[], object]) -> None:
    """Run ``action()`` once this unit has committed (never if it rolls back)."""
    session.info.setdefault(_AFTER_COMMIT, []).append(action)


def end_read(session: Session) -> None:
    """End this session's transaction, which must have written nothing; the next statement
    begins a new one. Raises ``RuntimeError`` if it wrote: that work would be lost."""
    if session.new or session.dirty or session.deleted or session.info.get(_WROTE):
        raise RuntimeError("end_read: this transaction has written; it is not only a read")
    session.rollback()


def has_work(session: Session) -> bool:
    """Whether ending this unit needs the database (a transaction, or writes to make)."""
    return session.in_transaction() or bool(
        session.info.get(_REGARDLESS) or session.info.get(_AFTER_COMMIT)
    )


def commit(session: Session) -> None:
    """A scope owner's success path: the writes that persist regardless, COMMIT, then the
    after-commit actions. A failure on the way rolls the unit back and is raised."""
    try:
        for write in session.info.get(_REGARDLESS, ()):
            write(session)
        session.commit()
    except BaseException:
        rollback(session)
        raise
    session.info.pop(_REGARDLESS, None)
    _run_after_commit(session)


def rollback(session: Session) -> None:
    """A scope owner's failure path: ROLLBACK, then the writes that persist regardless, in a
    transaction of their own (with their own after-commit actions)."""
    writes: list[Write] = session.info.pop(_REGARDLESS, [])
    session.info.pop(_AFTER_COMMIT, None)
    session.rollback()
    if not writes:
        return
    for write in writes:
        write(session)
    session.commit()
    _run_after_commit(session)


def _run_after_commit(session: Session) -> None:
    for action in session.info.pop(_AFTER_COMMIT, ()):
        action()


def new_session(engine: Engine) -> Session:
    """A session for one unit of work. Objects stay readable after the commit (a response
    is built from them), and no connection is taken until the first statement."""
    return Session(engine, expire_on_commit=False)


class Units:
    """Units of work on one engine, for code that is not one request: the jobs, the command
    line, the signalling hub's recorder, an upload's chunk. Each ``one()`` and each
    ``item()`` is a session and a transaction of its own."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    @contextmanager
    def one(self) -> Iterator[Session]:
        """One unit: committed when the block ends, rolled back (and raised) if it raises."""
        with new_session(self.engine) as session:
            try:
                yield session
            except BaseException:
                rollback(session)
                raise
            commit(session)

    def item(self, failure: str, logger: logging.Logger = log) -> Item:
        """One item of a batch in a unit of its own (see :class:`Item`); ``failure`` is
        what ``logger`` says if it fails."""
        return Item(self.engine, failure, logger)

    def attempt(
        self,
        failure: str,
        logger: logging.Logger,
        work: Callable[Concatenate[Session, P], T],
        *args: P.args,
        **kwargs: P.kwargs,
    ) -> T | None:
        """``work(session, *args, **kwargs)`` as one item of a batch: its result once
        committed, or None if it failed (rolled back, ``failure`` logged by ``logger``)."""
        result: T | None = None
        item = self.item(failure, logger)
        with item as session:
            result = work(session, *args, **kwargs)
        return None if item.failed else result


class Item:
    """``with units.item("offering consult 7 failed") as session:`` one item of a batch.

    Committed when the block ends; if it (or the commit) raises an ``Exception``, the item
    is rolled back, ``failure`` logged with the error, ``failed`` set, and the exception not
    raised: the batch goes on with the next item.
    """

    def __init__(self, engine: Engine, failure: str, logger: logging.Logger = log) -> None:
        self.failure = failure
        self.failed = False
        self._engine = engine
        self._log = logger
        self._session: Session | None = None

    def __enter__(self) -> Session:
        self._session = new_session(self._engine)
        return self._session

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool:
        session = self._session
        assert session is not None
        error = exc
        try:
            if exc is None:
                commit(session)
            else:
                rollback(session)
        except Exception as failure:  # the commit, or the rollback after the error
            error = error or failure
        finally:
            session.close()
        if error is None or not isinstance(error, Exception):
            return False  # done, or an interrupt that must stop the batch
        self.failed = True
        self._log.error("%s", self.failure, exc_info=error)
        return True


# Whether a transaction wrote, for end_read: ORM flushes and DML statements mark it.


def _mark_flush(session: Session, _context: Any) -> None:
    session.info[_WROTE] = True


def _mark_dml(state: ORMExecuteState) -> None:
    if state.is_insert or state.is_update or state.is_delete:
        state.session.info[_WROTE] = True


def _forget_writes(session: Session, transaction: SessionTransaction) -> None:
    if transaction.parent is None:  # the outermost transaction ended (not a savepoint)
        session.info.pop(_WROTE, None)


event.listen(Session, "after_flush", _mark_flush)
event.listen(Session, "do_orm_execute", _mark_dml)
event.listen(Session, "after_transaction_end", _forget_writes)
