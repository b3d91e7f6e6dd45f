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
  reads made with a session no unit of work owns, on a connection of its own.

Besides committing or rolling back, a unit does three things for the code inside it:

- ``persist_regardless(session, write)``: a write that must persist even when the unit rolls
  back: the audit row of a read or of a refused attempt (the request fails with 403 or 404),
  a failed login (401), an upload marked failed (422). When the unit commits, the write goes
  in with it; when it rolls back, the write is made after the rollback in a short
  transaction of its own. Either way exactly once. Asked for while the unit's end is making
  these writes (a write that records an audit row), it is made at once, in that transaction.
  ``durable=False`` marks a row a crash of the database may lose (the audit row of a read,
  as the appender's were): a unit whose only writes are such rows commits on PostgreSQL
  without waiting for the WAL flush, so that a read costs its one COMMIT and no more
  (issue 13: the read's row goes in the request's own transaction, instead of a hand-off
  to the appender's thread and a second transaction there).
- ``after_commit(session, action)``: work outside the database that may only happen once the
  unit is durable (deleting the files of expired uploads, forgetting a logged-out session).
  Dropped if the unit rolls back.
- ``end_read(session)``: ends a transaction that has only read, before slow work (decoding a
  photo, waiting for an upload's next chunk over 2G), so that no snapshot is held meanwhile.

SQLite has one write lock for the whole database (``telemed.db``). A request's unit reads in
DEFERRED transactions, which take no lock, and takes the write lock only when it is going
to write, so that 100 users reading never queue behind each other:

- The unit that will write says so *before it reads what it will write on*:
  ``start_writing(session)`` ends the read transaction so far (the request's
  authentication), and the next one begins IMMEDIATE. That is the choice between the two
  ways out of SQLite's lock upgrade problem: a DEFERRED transaction that has read and then
  writes cannot wait for the lock (SQLite answers "database is locked" at once when another
  writer holds it or committed since the read, because waiting could deadlock), so either
  the whole unit is retried, or the lock is taken before the reads it depends on. A request
  cannot be run twice (its body is read once; what it did outside the database would be
  done twice), so units take the lock first. An authenticated POST, PUT, PATCH or DELETE
  does so in ``telemed.deps`` once its body is read and its CSRF token checked; a login
  once the password is verified (the hash is slow and needs no lock); a job or a command
  (``Units``) from its start.
- Writers of one process queue on the engine's ``WriteGate``, an ``asyncio.Lock`` held from
  ``start_writing`` until the unit ends: they wait in the event loop, not in worker
  threads. Waiting in a thread (SQLite's busy handler) while the writer that holds the lock
  needs a thread for its next step (the endpoint, the commit) is how 40 waiting threads
  starved the lock holder until every one of them timed out.
- Rows that must persist whatever the request does (a read's audit row, a refused attempt)
  are written when the unit ends: a unit that only read ends its read transaction and
  writes them in a short IMMEDIATE transaction of its own, under the gate.

On PostgreSQL all of this is a no-op: every transaction is MVCC and rows are locked one by
one (``SELECT ... FOR UPDATE``).

A step whose refusal the caller turns into a page (a form shown again with the error) runs
in a savepoint, ``session.begin_nested()``: the refused step leaves nothing behind, and the
rest of the request's unit still commits.
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import TracebackType
from typing import Any, Concatenate, ParamSpec, TypeVar

import anyio
import anyio.from_thread
from sqlalchemy import Engine, event
from sqlalchemy.orm import ORMExecuteState, SessionTransaction
from sqlmodel import Session

from telemed.db import sqlite_begin

log = logging.getLogger(__name__)

_REGARDLESS = "telemed.uow.regardless"
_AFTER_COMMIT = "telemed.uow.after_commit"
_WROTE = "telemed.uow.wrote"
_ENGINE = "telemed.uow.engine"
_GATED = "telemed.uow.gated"
_WRITING = "telemed.uow.writing"
_GATE = "telemed.uow.gate"
_DURABLE = "telemed.uow.durable"  # a write that persists regardless must survive a crash
_ENDING = "telemed.uow.ending"  # the unit's end is making its writes that persist regardless
GATE_WAIT_FROM_THREAD = 30.0  # seconds a worker thread queues on the gate before going on

Write = Callable[[Session], object]
T = TypeVar("T")
P = ParamSpec("P")


def persist_regardless(session: Session, write: Write, *, durable: bool = True) -> None:
    """Make ``write(session)`` when this unit ends, whether it commits or rolls back (at
    once if the unit is ending: it is one of those writes that asks). ``durable=False``: a
    crash of the database may lose it (see the module's docstring)."""
    if session.info.get(_ENDING):
        write(session)
        return
    session.info.setdefault(_REGARDLESS, []).append(write)
    if durable:
        session.info[_DURABLE] = True


def after_commit(session: Session, action: Callable[[], object]) -> None:
    """Run ``action()`` once this unit has committed (never if it rolls back)."""
    session.info.setdefault(_AFTER_COMMIT, []).append(action)


def end_read(session: Session) -> None:
    """End this session's transaction, which must have written nothing; the next statement
    begins a new one. Raises ``RuntimeError`` if it wrote: that work would be lost."""
    if session.new or session.dirty or session.deleted or session.info.get(_WROTE):
        raise RuntimeError("end_read: this transaction has written; it is not only a read")
    session.rollback()


def _wrote(session: Session) -> bool:
    return bool(session.new or session.dirty or session.deleted or session.info.get(_WROTE))


def _dialect(session: Session) -> str:
    engine: Engine | None = session.info.get(_ENGINE)
    return engine.dialect.name if engine is not None else ""


def _is_sqlite(session: Session) -> bool:
    return _dialect(session) == "sqlite"


def start_writing(session: Session) -> None:
    """This unit is about to read what it will write on: on SQLite, end its read transaction
    so far (it must not have written) and begin the next one IMMEDIATE, so that the write
    lock is taken (waiting for it, SQLite's busy handler retrying) before those reads. A
    no-op on PostgreSQL, and when the unit already writes."""
    if not _is_sqlite(session) or session.info.get(_WRITING):
        return
    if session.in_transaction() and not _wrote(session):  # (one that wrote holds the lock)
        end_read(session)
    session.info[_WRITING] = True
    session.bind = sqlite_begin(session.info[_ENGINE], immediate=True)


def begin_writing(session: Session) -> None:
    """``start_writing`` for code in a worker thread (a sync endpoint's service, e.g. a
    login once the password is verified): it queues on the request's write gate first, so
    that it is served in turn with the other writers instead of racing them for the lock in
    SQLite's busy handler (which loses to a steady queue: logins failed so after 30 s)."""
    gate: WriteGate | None = session.info.get(_GATE)
    if gate is None:
        start_writing(session)
    else:
        gate.enter_from_thread(session)


def only_reads(session: Session) -> bool:
    """Whether this is a unit of work on SQLite that has not started writing: its
    transaction holds no write lock, and a write in it could fail to take one."""
    return _is_sqlite(session) and not session.info.get(_WRITING) and not _wrote(session)


def needs_gate(session: Session) -> bool:
    """Whether ending this unit writes on SQLite without the write gate held yet: its
    rows that persist regardless, written after a read-only transaction."""
    return (
        _is_sqlite(session)
        and _GATED not in session.info
        and bool(session.info.get(_REGARDLESS))
        and not _wrote(session)
    )


def is_unit(session: Session) -> bool:
    """Whether this session is a unit of work (``new_session``), whose end a scope owner
    makes, with its writes that persist regardless; a plain ``Session`` is not."""
    return _ENGINE in session.info


def has_work(session: Session) -> bool:
    """Whether ending this unit needs the database (a transaction, or writes to make)."""
    return session.in_transaction() or bool(
        session.info.get(_REGARDLESS) or session.info.get(_AFTER_COMMIT)
    )


def commit(session: Session) -> None:
    """A scope owner's success path: the writes that persist regardless, COMMIT, then the
    after-commit actions. A failure on the way rolls the unit back and is raised."""
    try:
        writes: list[Write] = session.info.get(_REGARDLESS, [])
        if writes and not _wrote(session):
            if _is_sqlite(session):
                start_writing(session)  # a read-only transaction cannot take the lock
            elif not session.info.get(_DURABLE) and _dialect(session) == "postgresql":
                _relax_commit(session)
        _write_regardless(session, writes)
        session.commit()
    except BaseException:
        rollback(session)
        raise
    session.info.pop(_REGARDLESS, None)
    session.info.pop(_DURABLE, None)
    _run_after_commit(session)


def rollback(session: Session) -> None:
    """A scope owner's failure path: ROLLBACK, then the writes that persist regardless, in a
    transaction of their own (with their own after-commit actions)."""
    writes: list[Write] = session.info.pop(_REGARDLESS, [])
    durable = session.info.pop(_DURABLE, False)
    session.info.pop(_AFTER_COMMIT, None)
    session.rollback()
    if not writes:
        return
    start_writing(session)
    if not durable and _dialect(session) == "postgresql":
        _relax_commit(session)
    _write_regardless(session, writes)
    session.commit()
    _run_after_commit(session)


def _write_regardless(session: Session, writes: list[Write]) -> None:
    session.info[_ENDING] = True
    try:
        for write in writes:
            write(session)
    finally:
        session.info.pop(_ENDING, None)


def _relax_commit(session: Session) -> None:
    """This transaction's COMMIT does not wait for the WAL flush (PostgreSQL): it writes
    only rows a crash of the database may lose, the audit rows of reads. A clinical write
    in the same transaction would be relaxed too, so only a unit that wrote nothing else
    (and has no durable write to make regardless) is."""
    session.connection().exec_driver_sql("SET LOCAL synchronous_commit = off")


def _run_after_commit(session: Session) -> None:
    for action in session.info.pop(_AFTER_COMMIT, ()):
        action()


def new_session(engine: Engine, *, writing: bool = False) -> Session:
    """A session for one unit of work. Objects stay readable after the commit (a response
    is built from them), and no connection is taken until the first statement. On SQLite
    it reads in DEFERRED transactions until ``start_writing``; ``writing`` starts there."""
    session = Session(sqlite_begin(engine, immediate=False), expire_on_commit=False)
    session.info[_ENGINE] = engine
    if writing:
        start_writing(session)
    return session


class WriteGate:
    """The queue of one process's SQLite writers (see the module's docstring): a unit that
    is going to write enters it in async code (``enter``), before any worker thread waits
    for the write lock, and leaves it when it ends (``leave``). FIFO. On PostgreSQL
    (``enabled`` False) entering only marks nothing: writers there need no queue.

    One ``asyncio.Lock`` per event loop: a test may drive one app from several loops.
    """

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self._locks: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock]
        self._locks = weakref.WeakKeyDictionary()

    def _lock(self) -> asyncio.Lock:
        loop = asyncio.get_running_loop()
        lock = self._locks.get(loop)
        if lock is None:
            lock = self._locks[loop] = asyncio.Lock()
        return lock

    async def enter(self, session: Session) -> None:
        """Queue for the write lock, then ``start_writing(session)``; once per unit."""
        if not self.enabled or _GATED in session.info:
            return
        start_writing(session)  # first: its read ends, and its connection goes back meanwhile
        await self._lock().acquire()
        session.info[_GATED] = True

    def attach(self, session: Session) -> None:
        """Make this the gate ``begin_writing(session)`` queues on."""
        session.info[_GATE] = self

    def enter_from_thread(self, session: Session) -> None:
        """``enter`` from a worker thread of the event loop, waiting at most
        ``GATE_WAIT_FROM_THREAD`` (a thread waiting here is one the pool lacks meanwhile;
        past that the unit goes on to SQLite's busy handler). Elsewhere (the event loop's
        own thread, a job's thread), only ``start_writing``."""
        if not self.enabled or _GATED in session.info:
            start_writing(session)
            return
        start_writing(session)
        try:
            anyio.from_thread.run(self._enter_within, session)
        except RuntimeError:  # not a worker thread of an event loop
            return

    async def _enter_within(self, session: Session) -> None:
        with anyio.move_on_after(GATE_WAIT_FROM_THREAD):
            await self._lock().acquire()
            session.info[_GATED] = True

    def leave(self, session: Session) -> None:
        """Give the gate to the next writer, if this unit held it (safe to call twice)."""
        if session.info.pop(_GATED, None) is not None and self.enabled:
            self._lock().release()

    @classmethod
    def of(cls, engine: Engine) -> WriteGate:
        return cls(enabled=engine.dialect.name == "sqlite")


class Units:
    """Units of work on one engine, for code that is not one request: the jobs, the command
    line, the signalling hub's recorder, an upload's chunk. Each ``one()`` and each
    ``item()`` is a session and a transaction of its own."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    @contextmanager
    def one(self) -> Iterator[Session]:
        """One unit: committed when the block ends, rolled back (and raised) if it raises."""
        with new_session(self.engine, writing=True) as session:
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
        self._session = new_session(self._engine, writing=True)
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
