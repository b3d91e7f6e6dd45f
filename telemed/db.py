"""Database engine, sessions and the column types every domain shares."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any, TypeVar

from sqlalchemy import Connection, DateTime, Engine, event
from sqlalchemy.engine import Dialect
from sqlalchemy.pool import ConnectionPoolEntry
from sqlalchemy.types import TypeDecorator
from sqlmodel import Session, SQLModel, create_engine, select


def utcnow() -> datetime:
    return datetime.now(UTC)


def pk(row: SQLModel) -> int:
    """The primary key of a row that has been flushed.

    SQLModel types ids as ``int | None`` because a new row has none until the database
    gives it one. ``row.id or 0`` hid that: a row never flushed silently queried id 0.
    This fails loudly instead, and gives the type checker a plain ``int``.
    """
    value = getattr(row, "id", None)
    if value is None:
        raise RuntimeError(f"{type(row).__name__} has no id yet: flush it before reading its id")
    return int(value)


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC datetime on every backend.

    PostgreSQL stores ``timestamptz``; SQLite has no zone, so values are stored as naive
    UTC and given their zone back on the way out. Naive datetimes are refused on the way in:
    a naive time is a bug waiting for a daylight-saving change.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
        if dialect.name == "sqlite":
            return value.replace(tzinfo=None)
        return value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


# How long a statement waits for SQLite's write lock before "database is locked". SQLite's
# busy handler retries (sleeping 1, 2, 5, 10 ... ms) until then. Writers in one process queue
# on ``telemed.uow.WriteGate`` without holding a thread, so only other processes (the
# scheduler, a command) are waited for here, and their transactions are short.
SQLITE_BUSY_TIMEOUT_MS = 30_000

# The execution option that says how a SQLite transaction begins: True for BEGIN IMMEDIATE.
SQLITE_IMMEDIATE = "telemed_sqlite_immediate"


def _sqlite_pragmas(dbapi_connection: Any, _record: ConnectionPoolEntry) -> None:
    # Let SQLAlchemy, not the sqlite3 module, decide when transactions begin.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def _sqlite_begin(default_immediate: bool) -> Any:
    def begin(connection: Connection) -> None:
        immediate = connection.get_execution_options().get(SQLITE_IMMEDIATE, default_immediate)
        connection.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

    return begin


def sqlite_begin(engine: Engine, *, immediate: bool) -> Engine:
    """``engine`` (same pool, same events) with its SQLite transactions beginning IMMEDIATE
    or DEFERRED; on PostgreSQL ``engine`` itself. A session bound to it begins its next
    transaction that way (``telemed.uow`` chooses per unit of work)."""
    if engine.dialect.name != "sqlite":
        return engine
    return engine.execution_options(**{SQLITE_IMMEDIATE: immediate})


def make_engine(url: str, *, sqlite_immediate: bool = True, **kwargs: Any) -> Engine:
    """An engine for ``url``.

    On SQLite (WAL: readers never wait for the writer, nor it for them) a transaction
    begins either DEFERRED, a read that takes no lock until it writes, or IMMEDIATE, which
    takes the single write lock at once. ``sqlite_immediate`` is the default for plain
    connections and sessions; ``telemed.uow`` chooses per unit of work (``sqlite_begin``):
    a request reads in DEFERRED transactions and takes IMMEDIATE only for the units that
    write, because a deferred transaction that has read cannot wait for the write lock:
    when it first writes while another writer holds the lock, or after another writer
    committed since its snapshot, SQLite answers "database is locked" at once, whatever
    the busy timeout (the busy handler is not called then: waiting could deadlock).
    """
    if url.startswith("sqlite"):
        if "poolclass" not in kwargs and ":memory:" not in url:
            # A unit of work keeps its connection from its first read to its end, and 100
            # users' requests may all be in one at once; a SQLite connection is a file handle.
            kwargs.setdefault("pool_size", 20)
            kwargs.setdefault("max_overflow", 200)
        engine = create_engine(url, connect_args={"check_same_thread": False}, **kwargs)
        event.listen(engine, "connect", _sqlite_pragmas)
        event.listen(engine, "begin", _sqlite_begin(sqlite_immediate))
        return engine
    kwargs.setdefault("pool_size", 20)
    # No JIT: PostgreSQL compiles a query whose estimated cost passes jit_above_cost, which
    # the uptake dashboard's counts do; compiling took 1.6 s of a 0.2 s query (bench.dashboard,
    # docs/PERFORMANCE.md). Our queries are short and many: JIT never pays for itself here.
    options = kwargs.setdefault("connect_args", {})
    if url.startswith("postgresql+psycopg") and "options" not in options:
        options["options"] = "-c jit=off"
    kwargs.setdefault("max_overflow", 20)
    kwargs.setdefault("pool_pre_ping", True)
    return create_engine(url, **kwargs)


RowT = TypeVar("RowT", bound=SQLModel)


def rows_grouped_by(
    session: Session, model: type[RowT], key: str, keys: Iterable[int], *order_by: Any
) -> defaultdict[int, list[RowT]]:
    """Rows of ``model`` whose ``key`` column is one of ``keys``, grouped by that column in
    one query (a missing key reads as an empty list)."""
    found: defaultdict[int, list[RowT]] = defaultdict(list)
    wanted = list(keys)
    if wanted:
        column = getattr(model, key)
        for row in session.exec(select(model).where(column.in_(wanted)).order_by(*order_by)):
            found[getattr(row, key)].append(row)
    return found
