"""The coordinator's uptake dashboard: indicators arranged in tables and chart series, the
consults behind a number (audited as a clinical read), and the whole-period gaps.

Read only; the request's unit of work owns the transaction. ``facility_month_values`` and
``month_filters`` (the DHIS2 export's input) are re-exported from ``monthly``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlmodel import Session, col, select

from telemed.accounts.models import User
from telemed.consults.models import Specialty
from telemed.errors import NotFound
from telemed.facilities.models import District, Facility
from telemed.i18n import N_, Joined
from telemed.uptake import counting, gaps, rollup
from telemed.uptake.auth import ensure_coordinator
from telemed.uptake.fast import Rollup
from telemed.uptake.filters import Bucket, Filters, Period
from telemed.uptake.indicators import (
    GAPS,
    INDICATORS,
    OUTCOMES,
    RECOMMENDATIONS,
    Indicator,
)
from telemed.uptake.monthly import FacilityValue, facility_month_values, month_filters
from telemed.uptake.tables import NONE, Cell, Table, hours, number, percent, text

__all__ = ["FacilityValue", "facility_month_values", "month_filters"]

DORMANT_DAYS = 30
CONSULTS_PAGE = 50


@dataclass
class Series:
    name: str
    values: list[float | None]


@dataclass
class ChartData:
    key: str
    title: str
    unit: str
    kind: str  # "bars" or "lines"
    labels: list[str]
    series: list[Series]


@dataclass
class Dashboard:
    filters: Filters
    buckets: list[Bucket]
    tables: list[Table]
    charts: list[tuple[ChartData, Table]]
    district_requests: dict[str, float]
    gaps: list[Table]
    definitions: list[tuple[str, str]] = field(default_factory=list)
    as_of: datetime | None = None  # read from the rollup: every change before then is counted

    def table(self, key: str) -> Table:
        for table in [*self.tables, *self.gaps, *(t for _c, t in self.charts)]:
            if table.key == key:
                return table
        raise NotFound(N_("no table %(key)s"), key=repr(key), field="table")


def label(bucket: Bucket, period: Period) -> str:
    return f"{bucket.start:%b %Y}" if period is Period.month else f"{bucket.start:%d %b}"


class _Counter:
    """Per-bucket and whole-range amounts of the indicators for one set of filters, each
    query run once however many tables and charts show its numbers: from the rollup when
    there is one (``fast``), else counted directly from the clinical tables."""

    def __init__(self, session: Session, filters: Filters, fast: Rollup | None) -> None:
        self.session, self.filters, self.fast = session, filters, fast
        self.n = len(filters.buckets())
        self._grouped: dict[tuple[str, tuple[counting.GroupBy, ...]], dict[Any, float]] = {}
        self._waits: dict[str, tuple[dict[Any, list[float]], list[float] | None]] = {}

    def grouped(self, ind: Indicator, *by: counting.GroupBy) -> dict[Any, float]:
        if self.fast is not None:
            return self.fast.grouped(ind, *by)
        return counting.grouped(self.session, ind, self.filters, *by)

    def get(self, key: str, *by: counting.GroupBy) -> dict[Any, float]:
        if (key, by) not in self._grouped:
            self._grouped[key, by] = self.grouped(INDICATORS[key], *by)
        return self._grouped[key, by]

    def series(self, key: str, category: str | None = None) -> list[float]:
        if category is None:
            rows = self.get(key, "bucket")
            return [rows.get((i,), 0) for i in range(self.n)]
        rows = self.get(key, "bucket", "category")
        return [rows.get((i, category), 0) for i in range(self.n)]

    def total(self, key: str, category: str | None = None) -> float:
        if category is None:
            return self.get(key, "all").get((0,), 0)
        return self.get(key, "category").get((category,), 0)

    def by_one(self, key: str, by: counting.GroupBy) -> dict[Any, float]:
        return {k[0]: v for k, v in self.get(key, by).items()}

    def _wait(self, ind: Indicator, by: counting.GroupBy) -> dict[Any, list[float]]:
        if self.fast is not None:
            return self.fast.waits(ind, by)
        return counting.waits(self.session, ind, self.filters, by)

    def waits(self, key: str) -> tuple[dict[Any, list[float]], list[float] | None]:
        """``({bucket: [median, p90]}, [median, p90] over the range or None)``."""
        if key not in self._waits:
            ind = INDICATORS[key]
            self._waits[key] = (self._wait(ind, "bucket"), self._wait(ind, "all").get(0))
        return self._waits[key]


def _link(filters: Filters, key: str, bucket: Bucket | None, category: str | None = None) -> str:
    return "/coordinator/uptake/consults?" + filters.query(
        indicator=key, bucket=bucket.key if bucket else None, category=category
    )


def _family_table(
    c: _Counter,
    key: str,
    title: str,
    columns: list[tuple[str, str, str | None]],
    extra: list[tuple[str, Any]] | None = None,
) -> Table:
    """One row per bucket and a total row; ``columns`` are (heading, indicator, category)."""
    f = c.filters
    buckets = f.buckets()
    table = Table(
        key, title, ["Period"] + [h for h, _k, _c in columns] + [h for h, _ in extra or []]
    )
    data = {(k, cat): c.series(k, cat) for _h, k, cat in columns}
    for i, b in enumerate(buckets):
        cells = [text(label(b, f.period))]
        cells += [number(data[k, cat][i], _link(f, k, b, cat)) for _h, k, cat in columns]
        cells += [fn(i) for _h, fn in extra or []]
        table.add(*cells)
    cells = [text("Total")]
    cells += [number(c.total(k, cat), _link(f, k, None, cat)) for _h, k, cat in columns]
    cells += [fn(None) for _h, fn in extra or []]
    table.add(*cells)
    return table


def dashboard(session: Session, user: User, filters: Filters, now: datetime) -> Dashboard:
    """Every table and chart of the dashboard for ``filters`` (coordinators only)."""
    ensure_coordinator(user)
    fresh = rollup.state(session)
    c = _Counter(session, filters, None if fresh is None else Rollup(session, filters))
    by_district = _by_place(session, c, "district")
    tables = [
        _volume(c),
        _waiting(c),
        _endings(c),
        _people(c, gaps.hours_offered(session, filters)),
        _family_table(
            c,
            "follow_up",
            "Follow-up",
            [
                ("Follow-ups due", "follow_ups_due", None),
                ("Follow-ups done", "follow_ups_done", None),
            ],
        ),
        _calls(c),
        by_district,
        _by_place(session, c, "facility"),
    ]
    definitions = [(i.label, i.definition) for i in INDICATORS.values()]
    definitions += [(k.replace("_", " ").capitalize(), v) for k, v in GAPS.items()]
    return Dashboard(
        filters,
        filters.buckets(),
        tables,
        [(chart, _chart_table(chart)) for chart in _charts(c)],
        {str(row[0].value): float(row[2].value or 0) for row in by_district.rows},
        [
            gaps.dormant_facilities(session, filters, now),
            gaps.uncovered_specialties(session, filters),
            gaps.specialist_load(session, filters, c.grouped),
        ],
        definitions,
        None if fresh is None else fresh.as_of,
    )


def _ratio_column(c: _Counter, heading: str, part: str, whole: str) -> tuple[str, Any]:
    """A column of ``part / whole`` per bucket, and over the whole range in the total row."""
    shares = counting.share_list(c.series(part), c.series(whole))
    overall = counting.ratio(c.total(part), c.total(whole))
    return heading, lambda i: percent(overall if i is None else shares[i])


def _volume(c: _Counter) -> Table:
    return _family_table(
        c,
        "volume",
        "Volume",
        [
            ("Requests", "requests", None),
            ("Offers made", "offers_made", None),
            ("Offers accepted", "offers_accepted", None),
        ],
        [_ratio_column(c, "Acceptance rate", "offers_accepted", "offers_made")],
    )


WAITS = ("wait_acceptance", "wait_response", "wait_session")


def _waiting(c: _Counter) -> Table:
    """Median and 90th percentile per bucket and over the range, in hours."""
    table = Table("waiting", "Waiting (hours)", ["Period"])
    for key in WAITS:
        name = INDICATORS[key].label
        table.columns += [
            Joined("{}: {}", name, N_("Median")),
            Joined("{}: {}", name, N_("90th percentile")),
        ]
    labels = [label(b, c.filters.period) for b in c.filters.buckets()]
    for i, name in [*enumerate(labels), (None, "Total")]:
        row = [text(name)]
        for key in WAITS:
            per, whole = c.waits(key)
            got = whole if i is None else per.get(i)
            row += [hours(got[0] if got else None), hours(got[1] if got else None)]
        table.add(*row)
    return table


ENDINGS = ("sessions_held", "answered_async", "escalated", "cancelled", "no_shows")


def _endings(c: _Counter) -> Table:
    return _family_table(
        c,
        "endings",
        "How consults end",
        [(INDICATORS[k].label, k, None) for k in ENDINGS]
        + [(o.replace("_", " ").capitalize(), "outcomes", o) for o in OUTCOMES],
    )


def _people(c: _Counter, offered: list[float]) -> Table:
    used = c.series("hours_used")
    return _family_table(
        c,
        "people",
        "People",
        [("Active specialists", "active_specialists", None)],
        [
            (
                "Volunteer hours offered",
                lambda i: number(sum(offered) if i is None else offered[i]),
            ),
            (
                "Volunteer hours used",
                lambda i: number(round(c.total("hours_used") if i is None else used[i], 1)),
            ),
        ],
    )


def _calls(c: _Counter) -> Table:
    return _family_table(
        c,
        "calls",
        "Calls",
        [
            ("Sessions held", "sessions_held", None),
            ("Audio-only or low", "calls_low", None),
            ("Dropped", "calls_dropped", None),
            ("Resumed", "calls_resumed", None),
        ],
        [_ratio_column(c, "Share audio-only or low", "calls_low", "sessions_held")],
    )


def _charts(c: _Counter) -> list[ChartData]:
    labels = [label(b, c.filters.period) for b in c.filters.buckets()]
    per, _whole = c.waits("wait_acceptance")

    def wait(rank: int) -> list[float | None]:
        return [round(per[i][rank] / 3600, 1) if i in per else None for i in range(c.n)]

    low = counting.share_list(c.series("calls_low"), c.series("sessions_held"))
    return [
        ChartData(
            "requests_chart",
            N_("Requests and sessions held"),
            "consults",
            "bars",
            labels,
            [
                Series(N_("Requests"), list(c.series("requests"))),
                Series(N_("Sessions held"), list(c.series("sessions_held"))),
            ],
        ),
        ChartData(
            "wait_chart",
            N_("Time to acceptance (hours)"),
            "hours",
            "lines",
            labels,
            [Series(N_("Median"), wait(0)), Series(N_("90th percentile"), wait(1))],
        ),
        ChartData(
            "calls_chart",
            N_("Share of calls in audio-only or low mode (%)"),
            "%",
            "lines",
            labels,
            [
                Series(
                    N_("Audio-only or low"), [None if v is None else round(v * 100, 1) for v in low]
                )
            ],
        ),
    ]


def _chart_table(chart: ChartData) -> Table:
    table = Table(
        chart.key,
        chart.title,
        ["Period"] + [Joined("{} ({})", s.name, chart.unit) for s in chart.series],
    )
    for i, name in enumerate(chart.labels):
        table.add(
            text(name),
            *(
                Cell(None, NONE) if s.values[i] is None else number(s.values[i] or 0)
                for s in chart.series
            ),
        )
    return table


def _by_place(session: Session, c: _Counter, by: counting.GroupBy) -> Table:
    f = c.filters
    keys = ("requests", "sessions_held", "escalated")
    places: list[tuple[Any, str, str]]
    amounts = {k: c.by_one(k, by) for k in keys}
    if by == "district":
        names = select(col(District.code), col(District.name), col(District.code))
        places = [
            (k, name, code) for k, name, code in session.execute(names.order_by(District.name))
        ]
        table = Table(
            "districts",
            "By district",
            ["District", "Name", "Requests", "Sessions held", "Escalated"],
        )
    else:
        query = select(col(Facility.id), col(Facility.name), col(Facility.code)).join(
            District, col(District.id) == col(Facility.district_id)
        )
        if f.district:
            query = query.where(District.code == f.district)
        if f.facility:
            query = query.where(Facility.code == f.facility)
        places = [
            (k, name, code) for k, name, code in session.execute(query.order_by(Facility.name))
        ]
        table = Table(
            "facilities",
            "By facility",
            ["Facility", "Name", "Requests", "Sessions held", "Escalated"],
        )
    tests = c.get("network_tests", by, "category")
    table.columns += [Joined("{}: {}", N_("Network tests"), r) for r in RECOMMENDATIONS]
    for key, name, code in places:
        narrowed = Filters(f.period, f.first, f.end, **_place(by, code, f))
        cells = [text(str(code)), text(name)]
        cells += [number(amounts[k].get(key, 0), _link(narrowed, k, None)) for k in keys]
        cells += [number(tests.get((key, r), 0)) for r in RECOMMENDATIONS]
        table.add(*cells)
    return table


def _place(by: str, code: str, f: Filters) -> dict[str, Any]:
    base = {
        "specialty": f.specialty,
        "urgency": f.urgency,
        "district": f.district,
        "facility": f.facility,
    }
    base[by] = code
    return base


@dataclass
class FilterOptions:
    districts: list[tuple[str, str]]
    facilities: list[tuple[str, str]]
    specialties: list[tuple[str, str]]


def filter_options(session: Session) -> FilterOptions:
    """The codes the filter form offers (a few hundred at most)."""
    return FilterOptions(
        [(d.code, d.name) for d in session.exec(select(District).order_by(District.name))],
        [(f.code, f.name) for f in session.exec(select(Facility).order_by(Facility.name))],
        [
            (s.code, s.name)
            for s in session.exec(
                select(Specialty).where(col(Specialty.active).is_(True)).order_by(Specialty.name)
            )
        ],
    )
