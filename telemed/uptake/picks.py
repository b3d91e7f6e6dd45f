"""Each month's waiting-time percentile picks, kept beside the rollup (``UptakeWaitPick``).

Why: a waiting time's median and 90th percentile per month were found by a running sum over
every bin of every month of the range (about 18,000 month rows of the rollup for a year at a
million consults, sorted and summed on every dashboard: most of a dashboard's time). A
month's picks change only when its wait rows do, so they are computed once and read by
key. A percentile over several months cannot be made from the months' percentiles: the
whole range's still sums the bins (``running`` below, in ``fast``).

Exactness: a stored pick is what the dashboard's own query makes from the same month rows
(the same ``running`` query: the bins summed in order, the bin the nearest rank falls in).
The rollup keeps them equal: its full rebuild makes every month's picks, and the job's
refresh makes again, in the same transaction, those of every (wait, month) whose month rows
it changed at any grain (``telemed.uptake.rollup``). ``tests/test_uptake_rollup.py`` checks
them against the percentiles counted from the clinical tables (the bin holds the exact
percentile), before and after a late change to a closed month.

Scopes: one per kind of filter the dashboard reads month rows for: none (``m``), a
district (``mD``), a specialty (``ms``), an urgency (``mu``), both (``msu``; the last three
from the ``msu`` month rows). A facility, or a place with a specialty or urgency, reads
the facts themselves and no picks.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Sequence
from datetime import date
from fractions import Fraction
from typing import Any

from sqlalchemy import BigInteger, Select, and_, cast, delete, func, insert, or_, select, true
from sqlalchemy.sql.selectable import Subquery
from sqlmodel import Session

from telemed.uptake.counting import PERCENTILES
from telemed.uptake.indicators import INDICATORS, Measure
from telemed.uptake.models import UptakeRollup, UptakeWaitPick
from telemed.uptake.sql import nearest_rank

#: scope -> (the month grain its rows come from, the dimensions it keeps)
SCOPES: dict[str, tuple[str, tuple[str, ...]]] = {
    "m": ("m", ()),
    "mD": ("mD", ("district_id",)),
    "ms": ("msu", ("specialty",)),
    "mu": ("msu", ("urgency",)),
    "msu": ("msu", ("specialty", "urgency")),
}
WAITS = tuple(k for k, i in INDICATORS.items() if i.measure is Measure.duration)
Pick = list[Any]  # [waits in the group, waits in the picked bin, their sum of seconds]


def pct(p: float) -> int:
    """A percentile as stored: 0.5 -> 50."""
    return round(p * 100)


def rank_sql(count: Any, p: float) -> Any:
    """``sql.nearest_rank(count, p)`` in SQL, in integers: ceil(a * count / b) for the
    fraction a / b that ``p`` is (0.5, 0.9), so no float rounding can move the rank."""
    exact = Fraction(p).limit_denominator(1000)
    return (count * exact.numerator + (exact.denominator - 1)) // exact.denominator


def running(hist: Subquery, names: Sequence[str]) -> Select[Any]:
    """Of ``hist`` (columns ``names``, then ``vbin``, ``n``, ``s``: one row per group and
    bin), the bins holding a percentile's nearest rank, with a running sum per group in bin
    order: rows (*names, count, upto, n, s, vbin), a few per group instead of every bin."""
    h = hist.c
    within = [h[name] for name in names]
    r = (
        select(
            *within,
            h.n,
            h.s,
            h.vbin,
            cast(func.sum(h.n).over(partition_by=within, order_by=h.vbin), BigInteger).label(
                "upto"
            ),
            cast(func.sum(h.n).over(partition_by=within), BigInteger).label("count"),
        )
        .where(h.n > 0)
        .subquery("running")
    ).c
    ranks = [rank_sql(r.count, p) for p in PERCENTILES]
    return select(*(r[name] for name in names), r.count, r.upto, r.n, r.s, r.vbin).where(
        or_(*(and_(r.upto >= rank, r.upto - r.n < rank) for rank in ranks))
    )


def holds(count: int, upto: int, many: int) -> list[int]:
    """The indexes in ``PERCENTILES`` whose nearest rank falls in a bin of ``many`` waits
    ending at running count ``upto``, of ``count``."""
    return [i for i, p in enumerate(PERCENTILES) if upto - many < nearest_rank(count, p) <= upto]


def store(session: Session, months: Collection[tuple[str, date]] | None = None) -> int:
    """Makes the picks again from the rollup's month rows: every month's (``months`` None:
    the full rebuild) or only those of the (wait, month) pairs given (the refresh). Returns
    the rows written. In the caller's transaction."""
    table = UptakeWaitPick.__table__  # type: ignore[attr-defined]
    r = UptakeRollup.__table__.c  # type: ignore[attr-defined]
    if months is None:
        session.execute(delete(table))
        chosen: Any = true()
    elif not months:
        return 0
    else:
        pairs = sorted(months)
        p = table.c
        session.execute(
            delete(table).where(or_(*(and_(p.indicator == i, p.month == m) for i, m in pairs)))
        )
        chosen = or_(*(and_(r.indicator == i, r.day == m) for i, m in pairs))
    rows: list[dict[str, Any]] = []
    for scope, (grain, dims) in SCOPES.items():
        names = ["indicator", "day", *dims]
        keys = [r[name] for name in names]
        hist = (
            select(
                *keys,
                r.vbin,
                cast(func.sum(r.n), BigInteger).label("n"),
                func.sum(r.total).label("s"),
            )
            .where(r.grain == grain, r.indicator.in_(WAITS), chosen)
            .group_by(*keys, r.vbin)
            .subquery("hist")
        )
        for row in session.execute(running(hist, names)):
            at = dict(zip(names, row, strict=False))
            count, upto, many, seconds, vbin = row[len(names) :]
            for i in holds(count, upto, many):
                rows.append(
                    {
                        "scope": scope,
                        "indicator": at["indicator"],
                        "month": at["day"],
                        "district_id": at.get("district_id", 0),
                        "specialty": at.get("specialty", ""),
                        "urgency": at.get("urgency", ""),
                        "pct": pct(PERCENTILES[i]),
                        "vbin": vbin,
                        "waits": count,
                        "n": many,
                        "total": seconds,
                    }
                )
    for start in range(0, len(rows), 1000):
        session.execute(insert(table), rows[start : start + 1000])
    return len(rows)


def read(
    session: Session, scope: str, dims: dict[str, Any], months: Collection[date]
) -> dict[str, dict[date, list[Pick | None]]]:
    """The stored picks of ``months`` in ``scope`` for the filter's ``dims``
    (``district_id``, ``specialty``, ``urgency`` as the scope keeps them): per wait and
    month, one [waits, n, seconds] per ``PERCENTILES``. A month without waits is absent."""
    p = UptakeWaitPick.__table__.c  # type: ignore[attr-defined]
    where = [p.scope == scope, p.indicator.in_(WAITS), p.month.in_(sorted(months))]
    where += [p[name] == value for name, value in dims.items()]
    statement = select(p.indicator, p.month, p.pct, p.waits, p.n, p.total).where(*where)
    at = {pct(q): i for i, q in enumerate(PERCENTILES)}
    found: dict[str, dict[date, list[Pick | None]]] = defaultdict(dict)
    for indicator, month, percent, waits, many, seconds in session.execute(statement):
        got = found[indicator].setdefault(month, [None] * len(PERCENTILES))
        got[at[percent]] = [waits, many, seconds]
    return found
