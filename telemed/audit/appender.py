"""Group commit for the audit rows of reads made with a session no unit of work owns
(PostgreSQL).

A read's audit row must be committed before the response is sent. In a unit of work (every
request's, job's and command's) it goes in with the unit's own COMMIT
(``telemed.audit.service.record_access``; until issue 13's last step every read's row came
here, and the hand-off to this thread and its transaction cost more than the row). A plain
``Session`` has no end that would write it, so its rows are committed here, without
committing the caller's transaction. A transaction per read would cost a commit (and a
connection) per read; instead, a reader hands its row to this engine's appender and waits until it
is committed: the appender's thread inserts all rows waiting at that moment in one short
transaction on a connection of its own, without the ORM: BEGIN, the rows, COMMIT (issue 13:
the ORM session, ``AuditEntry`` models and a ``SET LOCAL`` per batch cost 2 ms of CPU per
read when batches are small). The rows are inserted unsealed, like every audit row; the
sealer (``telemed.audit.sealer``) chains them. Nothing is lost when a process is killed:
the response goes out only after its row is committed.

SQLite needs none of this: it has one writer at a time anyway. A read's row is written
when the request's unit of work ends, in a short transaction of its own if the unit only
read (``telemed.audit.service.record_access``, ``telemed.uow``).
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
import weakref
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass

from sqlalchemy import Connection, Engine

from telemed.audit.repository import Row

log = logging.getLogger(__name__)

MAX_BATCH = 500
IDLE_EXIT_SECONDS = 30.0  # the thread ends when unused; the next append starts it again
WAIT_SECONDS = 30.0

InsertFn = Callable[[Connection, list[Row]], None]
OpenFn = Callable[[Connection], None]


@dataclass
class _Pending:
    row: Row
    done: Future[None]


class AuditAppender:
    """``prepare`` readies the appender's own connection once (the relaxed commit of
    reads); ``insert`` writes a batch on it, in the transaction ``_commit`` owns."""

    def __init__(self, engine: Engine, prepare: OpenFn, insert: InsertFn) -> None:
        self._engine = engine
        self._prepare = prepare
        self._insert = insert
        self._queue: queue.SimpleQueue[_Pending] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._connection: Connection | None = None

    def _drop_connection(self) -> None:
        """Close the connection for good: ``prepare`` changed its session settings (commits
        that do not wait for the WAL flush), so it must never go back to the pool, where a
        request's clinical write could get it."""
        if self._connection is not None:
            with contextlib.suppress(Exception):  # it is being thrown away anyway
                self._connection.invalidate()
                self._connection.close()
            self._connection = None

    def append(self, row: Row) -> None:
        """Return once ``row`` is committed (raise if it could not be)."""
        pending = _Pending(row, Future())
        self._queue.put(pending)
        self._ensure_running()
        pending.done.result(timeout=WAIT_SECONDS)

    def _ensure_running(self) -> None:
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._run, name="audit-appender", daemon=True
                )
                self._thread.start()

    def _run(self) -> None:
        while True:
            try:
                first = self._queue.get(timeout=IDLE_EXIT_SECONDS)
            except queue.Empty:
                with self._lock:
                    if self._queue.empty():
                        self._thread = None
                        self._drop_connection()
                        return
                continue
            batch = [first]
            while len(batch) < MAX_BATCH:
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            self._commit(batch)

    def _commit(self, batch: list[_Pending]) -> None:
        try:
            # A connection of its own, kept between batches: no pool checkout or ping.
            if self._connection is None or self._connection.closed:
                self._connection = self._engine.connect()
                self._prepare(self._connection)
            transaction = self._connection.begin()
            self._insert(self._connection, [p.row for p in batch])
            transaction.commit()  # (a failure drops the connection, and the transaction)
        except Exception as exc:  # one failed batch must not stop the appender
            log.exception("audit batch of %d rows failed", len(batch))
            self._drop_connection()
            for pending in batch:
                pending.done.set_exception(exc)
            return
        for pending in batch:
            pending.done.set_result(None)


_appenders: weakref.WeakKeyDictionary[Engine, AuditAppender] = weakref.WeakKeyDictionary()
_appenders_lock = threading.Lock()


def appender_for(engine: Engine, prepare: OpenFn, insert: InsertFn) -> AuditAppender:
    with _appenders_lock:
        found = _appenders.get(engine)
        if found is None:
            found = _appenders[engine] = AuditAppender(engine, prepare, insert)
        return found
