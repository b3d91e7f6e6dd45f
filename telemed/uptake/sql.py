"""SQL helpers the indicators share, written once for SQLite and PostgreSQL.

Every number of the dashboard is counted by the database: rows are never loaded to be
counted in Python. The two places where the dialects differ are here: the seconds between
two times, and percentiles (PostgreSQL's ``percentile_disc``; on SQLite the sorted values
are streamed and only the wanted ranks are kept, so memory stays flat however many rows).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from datetime import date, datetime
from typing import Any

from sqlalchemy import Date, Float, Integer, case, func, literal, select
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql import ColumnElement
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.expression import FunctionElement
from sqlalchemy.sql.selectable import Subquery
from sqlmodel import Session

# Rows fetched per round trip when a result is streamed (percentiles on SQLite, CSV).
STREAM_CHUNK = 2000


class seconds_between(FunctionElement[float]):  # noqa: N801 - an SQL function's name
    """``end - start`` in seconds, as a float, on either database."""

    type = Float()
    inherit_cache = True
    name = "seconds_between"


@compiles(seconds_between, "postgresql")
def _seconds_pg(element: seconds_between, compiler: SQLCompiler, **kw: Any) -> str:
    start, end = list(element.clauses)
    return f"EXTRACT(EPOCH FROM ({compiler.process(end, **kw)} - {compiler.process(start, **kw)}))"


@compiles(seconds_between, "sqlite")
def _seconds_sqlite(element: seconds_between, compiler: SQLCompiler, **kw: Any) -> str:
    start, end = list(element.clauses)
    return (
        # julianday is a float of days: rounded to the millisecond, so that 2 h is 7200.0
        f"ROUND((julianday({compiler.process(end, **kw)}) - "
        f"julianday({compiler.process(start, **kw)})) * 86400.0, 3)"
    )


def bucket_of(column: ColumnElement[Any], edges: Sequence[datetime | date]) -> ColumnElement[Any]:
    """The index of the bucket ``[edges[i], edges[i+1])`` that ``column`` falls in (NULL
    outside). The edges are computed in Python from Maseru's calendar, so both databases
    bucket alike and no time-zone arithmetic runs in SQL; a range scan on ``column`` stays
    possible because the caller also bounds it by the first and last edge."""
    whens = [(column < edge, literal(i)) for i, edge in enumerate(edges[1:])]
    return case(*whens, else_=None)


def nearest_rank(n: int, p: float) -> int:
    """The 1-based rank of the ``p`` percentile among ``n`` sorted values (nearest rank,
    which is PostgreSQL's ``percentile_disc``): the smallest value with at least ``p`` of
    the values at or below it."""
    return max(1, math.ceil(p * n))


def percentiles(
    session: Session,
    values: Subquery,
    group: str,
    value: str,
    ps: Sequence[float],
) -> dict[Any, list[float]]:
    """Per group of ``values`` (a subquery with columns ``group`` and ``value``, NULL
    values excluded), the ``ps`` percentiles by nearest rank: ``{group: [p1, p2, ...]}``."""
    g, v = values.c[group], values.c[value]
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        cols = [func.percentile_disc(p).within_group(v) for p in ps]
        rows = session.execute(select(g, *cols).where(v.is_not(None)).group_by(g))
        return {row[0]: [float(x) for x in row[1:]] for row in rows}
    counts = {
        row[0]: int(row[1])
        for row in session.execute(select(g, func.count()).where(v.is_not(None)).group_by(g))
    }
    wanted = {key: [nearest_rank(n, p) for p in ps] for key, n in counts.items()}
    found: dict[Any, list[float]] = {key: [0.0] * len(ps) for key in counts}
    stream = session.execute(
        select(g, v).where(v.is_not(None)).order_by(g, v).execution_options(yield_per=STREAM_CHUNK)
    )
    current, rank = object(), 0
    for key, val in stream:
        if key != current:
            current, rank = key, 0
        rank += 1
        for i, target in enumerate(wanted[key]):
            if rank == target:
                found[key][i] = float(val)
    return found


def stream(session: Session, statement: Any) -> Iterable[Any]:
    """Rows of ``statement`` fetched in chunks (a server-side cursor on PostgreSQL), for
    results too large to hold: the CSV export of a million rows."""
    result = session.execute(statement.execution_options(yield_per=STREAM_CHUNK))
    yield from result


class maseru_day(FunctionElement[date]):  # noqa: N801 - an SQL function's name
    """The Maseru calendar date of a stored UTC time. PostgreSQL converts with the zone
    database; SQLite adds two hours (Maseru is UTC+2 all year: Lesotho keeps no daylight
    saving time), the same answer."""

    type = Date()
    inherit_cache = True
    name = "maseru_day"


@compiles(maseru_day, "postgresql")
def _maseru_day_pg(element: maseru_day, compiler: SQLCompiler, **kw: Any) -> str:
    (at,) = list(element.clauses)
    return f"(({compiler.process(at, **kw)}) AT TIME ZONE 'Africa/Maseru')::date"


@compiles(maseru_day, "sqlite")
def _maseru_day_sqlite(element: maseru_day, compiler: SQLCompiler, **kw: Any) -> str:
    (at,) = list(element.clauses)
    return f"date({compiler.process(at, **kw)}, '+2 hours')"


class month_of(FunctionElement[date]):  # noqa: N801 - an SQL function's name
    """The first day of a date's month."""

    type = Date()
    inherit_cache = True
    name = "month_of"


@compiles(month_of, "postgresql")
def _month_of_pg(element: month_of, compiler: SQLCompiler, **kw: Any) -> str:
    (day,) = list(element.clauses)
    return f"date_trunc('month', {compiler.process(day, **kw)})::date"


@compiles(month_of, "sqlite")
def _month_of_sqlite(element: month_of, compiler: SQLCompiler, **kw: Any) -> str:
    (day,) = list(element.clauses)
    return f"date({compiler.process(day, **kw)}, 'start of month')"


#: Waiting times are counted in bins 2 % wide (``wait_bin``): a percentile read from them
#: is the mean of the values in the bin it falls in, so within 2 % of the exact value.
WAIT_BIN_RATIO = 1.02


class wait_bin(FunctionElement[int]):  # noqa: N801 - an SQL function's name
    """The bin of a waiting time in seconds: ``floor(log(max(s, 1)) / log(1.02))``."""

    type = Integer()
    inherit_cache = True
    name = "wait_bin"


def _wait_bin(function: str, element: wait_bin, compiler: SQLCompiler, **kw: Any) -> str:
    (value,) = list(element.clauses)
    v = compiler.process(value, **kw)
    return f"CAST(floor(ln({function}({v}, 1.0)) / ln({WAIT_BIN_RATIO})) AS INTEGER)"


@compiles(wait_bin, "postgresql")
def _wait_bin_pg(element: wait_bin, compiler: SQLCompiler, **kw: Any) -> str:
    return _wait_bin("greatest", element, compiler, **kw)


@compiles(wait_bin, "sqlite")
def _wait_bin_sqlite(element: wait_bin, compiler: SQLCompiler, **kw: Any) -> str:
    return _wait_bin("max", element, compiler, **kw)
