"""Filtering, bucketing and aggregating an indicator's fact rows, in the database.

Every function here takes an ``Indicator`` (``telemed.uptake.indicators``) and the
dashboard's ``Filters`` and returns small results: one number per bucket, facility,
district or category. Nothing loads the rows being counted.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from typing import Any, Literal

from sqlalchemy import Select, distinct, func, literal, select
from sqlalchemy.sql.selectable import Subquery
from sqlmodel import Session, col

from telemed.facilities.models import District, Facility
from telemed.uptake.filters import Filters, maseru_midnight
from telemed.uptake.indicators import Indicator, Measure
from telemed.uptake.sql import bucket_of, percentiles

GroupBy = Literal["bucket", "facility", "district", "category", "subject", "all"]
PERCENTILES = (0.5, 0.9)


def _edges(ind: Indicator, filters: Filters) -> list[datetime] | list[date]:
    days = [b.start for b in filters.buckets()] + [filters.end]
    if ind.dated:
        return days
    return [maseru_midnight(d) for d in days]


def filtered(ind: Indicator, filters: Filters) -> Subquery:
    """The indicator's fact rows within the filters' range and codes, with their bucket."""
    sub = ind.build().subquery("facts")
    edges = _edges(ind, filters)
    where: list[Any] = [sub.c.at >= edges[0], sub.c.at < edges[-1]]
    if filters.facility:
        where.append(
            sub.c.facility_id
            == select(col(Facility.id))
            .where(col(Facility.code) == filters.facility)
            .scalar_subquery()
        )
    if filters.district:
        where.append(
            sub.c.facility_id.in_(
                select(col(Facility.id))
                .join(District, col(District.id) == col(Facility.district_id))
                .where(col(District.code) == filters.district)
            )
        )
    if ind.consult_based and filters.specialty:
        where.append(sub.c.specialty == filters.specialty)
    if ind.consult_based and filters.urgency:
        where.append(sub.c.urgency == filters.urgency.value)
    return (
        select(*sub.c, bucket_of(sub.c.at, edges).label("bucket"))
        .where(*where)
        .subquery("filtered")
    )


def _group_key(rows: Subquery, by: GroupBy) -> Any:
    if by == "district":
        # The district of the row's facility, joined by ``_placed`` (a scalar subquery
        # here ran once per fact row: 0.8 s of a 20,000-consult dashboard).
        return col(District.code)
    if by == "facility":
        return rows.c.facility_id
    if by == "all":
        return literal(0)
    return rows.c[by]


def _placed(statement: Select[Any], rows: Subquery, by: tuple[GroupBy, ...]) -> Select[Any]:
    """``statement`` joined to the facility and district of each row when grouped by
    district (outer joins: a row without a facility counts under no district, as before)."""
    if "district" not in by:
        return statement
    return statement.outerjoin(Facility, col(Facility.id) == rows.c.facility_id).outerjoin(
        District, col(District.id) == col(Facility.district_id)
    )


def _amount(ind: Indicator, rows: Subquery) -> Any:
    if ind.measure is Measure.total:
        return func.coalesce(func.sum(rows.c.value), 0.0)
    if ind.measure is Measure.duration:
        return func.count(rows.c.value)
    if ind.measure is Measure.rows:
        return func.count()
    return func.count(distinct(rows.c.subject))


def grouped(
    session: Session, ind: Indicator, filters: Filters, *by: GroupBy
) -> dict[tuple[Any, ...], float]:
    """``{(key, ...): amount}``: distinct subjects counted, values summed, or (durations)
    how many values. Keys absent from the result are zero."""
    rows = filtered(ind, filters)
    keys = [_group_key(rows, b).label(f"k{i}") for i, b in enumerate(by)]
    statement: Select[Any] = select(*keys, _amount(ind, rows).label("amount")).select_from(rows)
    statement = _placed(statement, rows, by).group_by(*keys)
    return {tuple(r[:-1]): r[-1] for r in session.execute(statement)}


def by_one(session: Session, ind: Indicator, filters: Filters, by: GroupBy) -> dict[Any, float]:
    return {k[0]: v for k, v in grouped(session, ind, filters, by).items()}


def total(session: Session, ind: Indicator, filters: Filters) -> float:
    return by_one(session, ind, filters, "all").get(0, 0)


def seconds_sums(
    session: Session, ind: Indicator, filters: Filters, by: GroupBy
) -> dict[Any, tuple[float, int]]:
    """``{key: (sum of seconds, how many)}`` of a duration indicator (for DHIS2, which
    computes averages itself from sums and counts)."""
    rows = filtered(ind, filters)
    key = _group_key(rows, by).label("k")
    statement = _placed(
        select(key, func.coalesce(func.sum(rows.c.value), 0.0), func.count(rows.c.value))
        .select_from(rows)
        .where(rows.c.value.is_not(None)),
        rows,
        (by,),
    ).group_by(key)
    return {r[0]: (float(r[1]), int(r[2])) for r in session.execute(statement)}


def waits(
    session: Session, ind: Indicator, filters: Filters, by: GroupBy
) -> dict[Any, list[float]]:
    """``{key: [median, p90]}`` in seconds (nearest rank) of a duration indicator."""
    rows = filtered(ind, filters)
    key = _group_key(rows, by).label("k")
    keyed = _placed(select(key, rows.c.value.label("v")).select_from(rows), rows, (by,))
    values = keyed.subquery("values")
    return percentiles(session, values, "k", "v", PERCENTILES)


def consult_ids(ind: Indicator, filters: Filters, category: str | None) -> Select[Any]:
    """The ids of the consults behind an indicator's number (for the consult list)."""
    rows = filtered(ind, filters)
    statement = select(rows.c.consult_id).where(rows.c.consult_id.is_not(None))
    if category:
        statement = statement.where(rows.c.category == category)
    return statement.distinct()


def series(values: dict[Any, float], n: int) -> list[float]:
    """Bucket-indexed amounts as a list of ``n`` (zeros for empty buckets)."""
    return [values.get(i, 0) for i in range(n)]


def ratio(part: float, whole: float) -> float | None:
    return None if not whole else part / whole


def share_list(parts: Sequence[float], wholes: Sequence[float]) -> list[float | None]:
    return [ratio(p, w) for p, w in zip(parts, wholes, strict=True)]
