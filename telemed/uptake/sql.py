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

from sqlalchemy import Float, case, func, literal, select
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
