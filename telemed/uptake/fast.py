"""The dashboard's numbers read from the rollup (``telemed.uptake.rollup``): the same
answers as ``telemed.uptake.counting`` (``tests/test_uptake_rollup.py`` checks it), from a
few grouped queries for every indicator at once instead of one query per number.

``grouped`` and ``waits`` take the same arguments and give the same shapes as their
namesakes in ``counting``. Counts and sums are exact. Waiting-time percentiles are read
from bins 2 % wide (``sql.WAIT_BIN_RATIO``): each is the mean of the waits in the bin the
nearest rank falls in, so within 2 % of the exact value (exact when the bin's waits are
equal).

Which rows are read: month rows for whole months of a monthly range and day rows for the
rest (weeks, a month not over yet); the rows of no place, of one district, or of one
specialty and urgency, by the filters; the fact rows themselves when a filter names a
facility, or a place together with a specialty or urgency. A waiting time's percentiles in
a whole month read from month rows are its stored picks (``telemed.uptake.picks``), read by
key; the whole range's are summed from the bins.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import date
from typing import Any

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    and_,
    case,
    cast,
    func,
    literal,
    or_,
    select,
    union_all,
)
from sqlmodel import Session, col

from telemed.facilities.models import District, Facility
from telemed.uptake import picks
from telemed.uptake.counting import PERCENTILES, GroupBy
from telemed.uptake.filters import Filters, Period, month_start, next_month
from telemed.uptake.indicators import INDICATORS, Indicator, Measure
from telemed.uptake.models import UptakeFact, UptakeRollup
from telemed.uptake.rollup import BY_PLACE, SUBJECT_KEPT, kept_subject, state
from telemed.uptake.sql import bucket_of

Key = tuple[Any, ...]
ALL = -1  # the bucket of the whole range, beside the buckets 0, 1, ...


class Rollup:
    """The rollup's answers for one set of filters, each query run once."""

    def __init__(self, session: Session, filters: Filters) -> None:
        self.session, self.filters = session, filters
        buckets = filters.buckets()
        self.edges: list[date] = [b.start for b in buckets] + [filters.end]
        self._cache: dict[tuple[str, bool], Any] = {}
        kept = state(session)  # the page has read it already: no query
        self._picks = kept is not None and kept.picks_built
        self._districts = {0: None} | dict(
            session.execute(select(col(District.id), col(District.code))).all()
        )
        self._ids = {
            "district": self._id(col(District.id), col(District.code), filters.district),
            "facility": self._id(col(Facility.id), col(Facility.code), filters.facility),
        }

    def _id(self, column: Any, code: Any, value: str | None) -> int | None:
        if not value:
            return None
        found: int = self.session.execute(select(column).where(code == value)).scalar_one()
        return found

    # -- where the rows come from ----------------------------------------------------------

    def _source(self, consult_based: bool, by_place: bool) -> tuple[Any, list[Any], Any, Any]:
        """(table columns, conditions, n, total) of the rows the filters need."""
        f = self.filters
        sorts = consult_based and bool(f.specialty or f.urgency)
        district, facility = self._ids["district"], self._ids["facility"]
        if facility is not None or (sorts and (district is not None or by_place)):
            t = UptakeFact.__table__.c  # type: ignore[attr-defined]
            where = [t.day >= self.edges[0], t.day < self.edges[-1]]
            return t, where + self._dims(t, sorts), literal(1), func.coalesce(t.value, 0.0)
        t = UptakeRollup.__table__.c  # type: ignore[attr-defined]
        grain = "F" if by_place else "D" if district is not None else "su" if sorts else ""
        if f.period is Period.month:
            split = max(self.edges[0], month_start(self.edges[-1]))
        else:
            split = self.edges[0]
        when = or_(
            and_(t.grain == "m" + grain, t.day >= self.edges[0], t.day < split),
            and_(t.grain == "d" + grain, t.day >= split, t.day < self.edges[-1]),
        )
        return t, [when, *self._dims(t, sorts)], t.n, t.total

    def _dims(self, t: Any, sorts: bool) -> list[Any]:
        f, where = self.filters, []
        if self._ids["district"] is not None:
            where.append(t.district_id == self._ids["district"])
        if self._ids["facility"] is not None:
            where.append(t.facility_id == self._ids["facility"])
        if sorts and f.specialty:
            where.append(t.specialty == f.specialty)
        if sorts and f.urgency:
            where.append(t.urgency == f.urgency.value)
        return where

    def _bucket_start(self, day: Any) -> ColumnElement[Any]:
        whens = [(day < edge, literal(self.edges[i])) for i, edge in enumerate(self.edges[1:])]
        return case(*whens, else_=None)

    def _subject(self, t: Any) -> Any:
        return t.subject if "n" in t else kept_subject(t)

    # -- the three queries -----------------------------------------------------------------

    def _counts(self, consult_based: bool, durations: bool = False) -> dict[str, list[Any]]:
        """Per indicator: rows (bucket, category, subject, first in bucket, first in range,
        all, total). The waiting times' rows (one per bin: most of a year's rows) are read
        only when asked for (``durations``): the dashboard takes waits from ``_bins``."""
        key = ("durations" if durations else "counts", consult_based)
        if key not in self._cache:
            t, where, n, total = self._source(consult_based, by_place=False)
            keys = [
                k
                for k, i in INDICATORS.items()
                if i.consult_based == consult_based and (i.measure is Measure.duration) == durations
            ]
            first = self.edges[0]
            bucket = bucket_of(t.day, self.edges).label("bucket")
            subject = self._subject(t).label("subject")
            statement = (
                select(
                    t.indicator,
                    bucket,
                    t.category,
                    subject,
                    func.sum(case((t.prev_day < self._bucket_start(t.day), n), else_=0)),
                    func.sum(case((t.prev_day < first, n), else_=0)),
                    func.sum(n),
                    func.sum(total),
                )
                .where(t.indicator.in_(keys), *where)
                .group_by(t.indicator, bucket, t.category, subject)
            )
            rows: dict[str, list[Any]] = defaultdict(list)
            for row in self.session.execute(statement):
                rows[row[0]].append(tuple(row[1:]))
            self._cache[key] = rows
        return self._cache[key]  # type: ignore[no-any-return]

    def _places(self, consult_based: bool) -> dict[str, list[Any]]:
        """Per by-place indicator: rows (facility, district, category, first in range)."""
        key = ("places", consult_based)
        if key not in self._cache:
            t, where, n, _total = self._source(consult_based, by_place=True)
            keys = [k for k in BY_PLACE if INDICATORS[k].consult_based == consult_based]
            first = self.edges[0]
            statement = (
                select(
                    t.indicator,
                    t.facility_id,
                    t.district_id,
                    t.category,
                    func.sum(case((t.prev_day < first, n), else_=0)),
                )
                .where(t.indicator.in_(keys), *where)
                .group_by(t.indicator, t.facility_id, t.district_id, t.category)
            )
            rows: dict[str, list[Any]] = defaultdict(list)
            for row in self.session.execute(statement):
                rows[row[0]].append(tuple(row[1:]))
            self._cache[key] = rows
        return self._cache[key]  # type: ignore[no-any-return]

    def _bins(self) -> dict[str, dict[Any, list[Any]]]:
        """Per waiting time and bucket (``ALL`` for the whole range): for each of
        ``PERCENTILES``, [how many waits, how many in the bin and their sum of seconds] of
        the bin the nearest rank falls in.

        Whole months of a monthly range read their picks by key (``picks``, kept by the
        rollup); the rest, and the whole range, from the bins: the database adds them up (a
        running sum in bin order) and sends back only the bins holding a percentile, a few
        dozen rows instead of every bin of every bucket."""
        key = ("bins", True)
        if key not in self._cache:
            found: dict[str, dict[Any, list[Any]]] = defaultdict(dict)
            covered = self._covered()
            if covered:
                scope, dims = self._pick_scope()  # type: ignore[misc]
                index = {self.edges[i]: i for i in range(covered)}
                for wait, months in picks.read(self.session, scope, dims, index).items():
                    for month, picked in months.items():
                        found[wait][index[month]] = picked
            t, where, n, total = self._source(True, by_place=False)
            keys = picks.WAITS
            # the waits by number, not name: the database sorts them (for the running sums)
            # far faster as integers than as collated text
            number = case(*((t.indicator == k, literal(i)) for i, k in enumerate(keys)))
            amounts = (cast(func.sum(n), BigInteger).label("n"), func.sum(total).label("s"))
            waits, cut = t.indicator.in_(keys), self.edges[covered]
            # each row read once: the picked months' bins summed for the range only, the
            # other buckets' per bucket (and into the range from there)
            whole: list[Any] = []
            if covered:
                whole.append(
                    select(number.label("ind"), t.vbin, *amounts)
                    .where(waits, t.day < cut, *where)
                    .group_by(number, t.vbin)
                )
            hist: list[Any] = []
            if covered < len(self.edges) - 1:
                bucket = bucket_of(t.day, self.edges)
                per = (
                    select(number.label("ind"), bucket.label("bucket"), t.vbin, *amounts)
                    .where(waits, t.day >= cut, *where)
                    .group_by(number, bucket, t.vbin)
                    .cte("per")
                )
                hist.append(select(per.c.ind, per.c.bucket, per.c.vbin, per.c.n, per.c.s))
                whole.append(select(per.c.ind, per.c.vbin, per.c.n, per.c.s))
            ranged: Any = union_all(*whole) if len(whole) > 1 else whole[0]
            w = ranged.subquery("whole").c
            hist.append(
                select(
                    w.ind,
                    literal(ALL).label("bucket"),
                    w.vbin,
                    cast(func.sum(w.n), BigInteger).label("n"),
                    func.sum(w.s).label("s"),
                ).group_by(w.ind, w.vbin)
            )
            both: Any = union_all(*hist) if len(hist) > 1 else hist[0]
            statement = picks.running(both.subquery("hist"), ["ind", "bucket"])
            result: list[Any] = list(self.session.execute(statement).all())
            for ind, at, count, upto, many, seconds, _vbin in result:
                got = found[keys[ind]].setdefault(at, [None] * len(PERCENTILES))
                for i in picks.holds(count, upto, many):
                    got[i] = [count, many, seconds]
            self._cache[key] = found
        return self._cache[key]  # type: ignore[no-any-return]

    def _pick_scope(self) -> tuple[str, dict[str, Any]] | None:
        """The picks' scope and key of these filters, if they read month rows (no facility,
        no place with a specialty or urgency)."""
        f, district = self.filters, self._ids["district"]
        if self._ids["facility"] is not None:
            return None
        if district is not None:
            return None if f.specialty or f.urgency else ("mD", {"district_id": district})
        dims: dict[str, Any] = {}
        if f.specialty:
            dims["specialty"] = f.specialty
        if f.urgency:
            dims["urgency"] = f.urgency.value
        return "m" + ("s" if f.specialty else "") + ("u" if f.urgency else ""), dims

    def _covered(self) -> int:
        """How many of the first buckets are whole months read from month rows, whose
        waits the stored picks give (0 while the rollup has none, for weeks, for the
        filters that read facts)."""
        if not self._picks or self.filters.period is not Period.month:
            return 0
        if self._pick_scope() is None:
            return 0
        split, edges, k = max(self.edges[0], month_start(self.edges[-1])), self.edges, 0
        while k < len(edges) - 1 and edges[k].day == 1 and edges[k + 1] == next_month(edges[k]):
            if edges[k + 1] > split:
                break
            k += 1
        return k

    # -- the answers -----------------------------------------------------------------------

    def grouped(self, ind: Indicator, *by: GroupBy) -> dict[Key, float]:
        """As ``counting.grouped``: ``{(key, ...): amount}``, zeros left out."""
        if {"facility", "district"} & set(by):
            return self._by_place(ind, by)
        kept = ind.key in SUBJECT_KEPT and ind.measure is Measure.distinct
        per_bucket = "bucket" in by
        amounts: dict[Key, float] = defaultdict(float)
        subjects: dict[Key, set[Any]] = defaultdict(set)
        counts = self._counts(ind.consult_based, ind.measure is Measure.duration)
        for bucket, category, subject, first_b, first_r, every, total in counts[ind.key]:
            values = {"bucket": bucket, "category": category or None, "subject": subject}
            key = tuple(0 if b == "all" else values[b] for b in by)
            if kept:
                if every:
                    subjects[key].add(subject)
            elif ind.measure is Measure.distinct:
                amounts[key] += first_b if per_bucket else first_r
            elif ind.measure is Measure.total:
                amounts[key] += total
            else:
                amounts[key] += every
        if kept:
            return {k: len(v) for k, v in subjects.items() if v}
        return {k: v for k, v in amounts.items() if v}

    def _by_place(self, ind: Indicator, by: tuple[GroupBy, ...]) -> dict[Key, float]:
        if ind.key not in BY_PLACE or ind.measure is not Measure.distinct:
            raise ValueError(f"the rollup sums {ind.key!r} by place only in the by-place tables")
        amounts: dict[Key, float] = defaultdict(float)
        for facility, district, category, first_r in self._places(ind.consult_based)[ind.key]:
            values = {
                "facility": facility or None,
                "district": self._districts.get(district),
                "category": category or None,
            }
            amounts[tuple(0 if b == "all" else values[b] for b in by)] += first_r
        return {k: v for k, v in amounts.items() if v}

    def waits(self, ind: Indicator, by: GroupBy) -> dict[Any, list[float]]:
        """As ``counting.waits``: ``{bucket or 0: [median, p90]}`` in seconds; each the
        mean of the waits in the bin the nearest rank falls in."""
        out = {}
        for at, picked in self._bins()[ind.key].items():
            if (at == ALL) == (by == "all"):
                out[0 if at == ALL else at] = [float(s) / n for _count, n, s in picked]
        return out
