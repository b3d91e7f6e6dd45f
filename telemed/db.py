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


def _sqlite_pragmas(dbapi_connection: Any, _record: ConnectionPoolEntry) -> None:
    # Let SQLAlchemy, not the sqlite3 module, decide when transactions begin.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def _begin_immediate(connection: Connection) -> None:
    connection.exec_driver_sql("BEGIN IMMEDIATE")


def _begin_deferred(connection: Connection) -> None:
    connection.exec_driver_sql("BEGIN")


def make_engine(url: str, *, sqlite_immediate: bool = True, **kwargs: Any) -> Engine:
    """An engine for ``url``.

    On SQLite every transaction starts with ``BEGIN IMMEDIATE`` by default: each request
    writes (at least its audit row) after reading, and a deferred transaction whose
    snapshot went stale could not upgrade to a write (SQLITE_BUSY_SNAPSHOT). Taking the
    write lock up front makes writers queue (busy_timeout) instead of failing.
    """
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"check_same_thread": False}, **kwargs)
        event.listen(engine, "connect", _sqlite_pragmas)
        event.listen(engine, "begin", _begin_immediate if sqlite_immediate else _begin_deferred)
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
