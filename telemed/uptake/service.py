"""The coordinator's uptake dashboard: indicators arranged in tables and chart series, the
consults behind a number (audited as a clinical read), and the whole-period gaps.

Read only; the request's unit of work owns the transaction. ``facility_month_values`` and
``month_filters`` (the DHIS2 export's input) are re-exported from ``monthly``.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select as sa_select
from sqlmodel import Session, col, func, select

from telemed.accounts.models import User
from telemed.audit import service as audit
from telemed.audit.models import AuditAction
from telemed.consults.models import Consult, Specialty
from telemed.directory.models import (
    AvailabilityWindow,
    SpecialistProfile,
    SpecialistSpecialty,
    VerificationStatus,
)
from telemed.errors import NotFound, ValidationFailed
from telemed.facilities.models import District, Facility
from telemed.uptake import counting
from telemed.uptake.auth import ensure_coordinator
from telemed.uptake.filters import Bucket, Filters, Period
from telemed.uptake.indicators import (
    GAPS,
    INDICATORS,
    OUTCOMES,
    RECOMMENDATIONS,
    Indicator,
    Measure,
)
from telemed.uptake.monthly import FacilityValue, facility_month_values, month_filters
from telemed.uptake.sql import stream
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

    def table(self, key: str) -> Table:
        for table in [*self.tables, *self.gaps, *(t for _c, t in self.charts)]:
            if table.key == key:
                return table
        raise NotFound(f"no table {key!r}", field="table")


def label(bucket: Bucket, period: Period) -> str:
    return f"{bucket.start:%b %Y}" if period is Period.month else f"{bucket.start:%d %b}"


class _Counter:
    """Per-bucket and whole-range amounts of the indicators, each queried once."""

    def __init__(self, session: Session, filters: Filters) -> None:
        self.session, self.filters = session, filters
        self.n = len(filters.buckets())
        self._cache: dict[tuple[str, str], Any] = {}

    def _get(self, key: str, by: counting.GroupBy) -> dict[Any, float]:
        if (key, by) not in self._cache:
            ind = INDICATORS[key]
            self._cache[key, by] = counting.grouped(self.session, ind, self.filters, by)
        return self._cache[key, by]  # type: ignore[no-any-return]

    def series(self, key: str, category: str | None = None) -> list[float]:
        if category is None:
            rows = self._get(key, "bucket")
            return [rows.get((i,), 0) for i in range(self.n)]
        rows = self._cache.get((key, "bc")) or self._both(key)
        return [rows.get((i, category), 0) for i in range(self.n)]

    def _both(self, key: str) -> dict[Any, float]:
        rows = counting.grouped(self.session, INDICATORS[key], self.filters, "bucket", "category")
        self._cache[key, "bc"] = rows
        return rows

    def total(self, key: str, category: str | None = None) -> float:
        if category is None:
            return self._get(key, "all").get((0,), 0)
        rows = counting.grouped(self.session, INDICATORS[key], self.filters, "category")
        return rows.get((category,), 0)

    def waits(self, key: str) -> tuple[dict[Any, list[float]], list[float] | None]:
        ind = INDICATORS[key]
        per = counting.waits(self.session, ind, self.filters, "bucket")
        whole = counting.waits(self.session, ind, self.filters, "all").get(0)
        return per, whole


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
    ensure_coordinator(user)
    c = _Counter(session, filters)
    buckets = filters.buckets()
    labels = [label(b, filters.period) for b in buckets]

    def pick(series: list[float], whole: float) -> Any:
        return lambda i: whole if i is None else series[i]

    made, accepted = c.series("offers_made"), c.series("offers_accepted")
    rate = counting.share_list(accepted, made)
    rate_total = counting.ratio(c.total("offers_accepted"), c.total("offers_made"))
    volume = _family_table(
        c,
        "volume",
        "Volume",
        [
            ("Requests", "requests", None),
            ("Offers made", "offers_made", None),
            ("Offers accepted", "offers_accepted", None),
        ],
        [("Acceptance rate", lambda i: percent(rate_total if i is None else rate[i]))],
    )
    waiting = Table("waiting", "Waiting (hours)", ["Period"])
    wait_data = {k: c.waits(k) for k in ("wait_acceptance", "wait_response", "wait_session")}
    for k in wait_data:
        name = INDICATORS[k].label
        waiting.columns += [f"{name}: median", f"{name}: 90th percentile"]
    for i, b in enumerate([*buckets, None]):
        row = [text("Total" if b is None else labels[i])]
        for per, whole in wait_data.values():
            got = whole if b is None else per.get(i)
            row += [hours(got[0] if got else None), hours(got[1] if got else None)]
        waiting.add(*row)
    endings = _family_table(
        c,
        "endings",
        "How consults end",
        [
            (INDICATORS[k].label, k, None)
            for k in ("sessions_held", "answered_async", "escalated", "cancelled", "no_shows")
        ]
        + [(o.replace("_", " ").capitalize(), "outcomes", o) for o in OUTCOMES],
    )
    offered = hours_offered(session, filters)
    used = c.series("hours_used")
    people = _family_table(
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
    follow = _family_table(
        c,
        "follow_up",
        "Follow-up",
        [("Follow-ups due", "follow_ups_due", None), ("Follow-ups done", "follow_ups_done", None)],
    )
    held, low = c.series("sessions_held"), c.series("calls_low")
    low_share = counting.share_list(low, held)
    low_total = counting.ratio(c.total("calls_low"), c.total("sessions_held"))
    calls = _family_table(
        c,
        "calls",
        "Calls",
        [
            ("Sessions held", "sessions_held", None),
            ("Audio-only or low", "calls_low", None),
            ("Dropped", "calls_dropped", None),
            ("Resumed", "calls_resumed", None),
        ],
        [("Share audio-only or low", lambda i: percent(low_total if i is None else low_share[i]))],
    )
    by_district = _by_place(session, c, "district")
    by_facility = _by_place(session, c, "facility")
    district_requests = {str(row[0].value): float(row[2].value or 0) for row in by_district.rows}
    reqs = c.series("requests")
    requests_chart = ChartData(
        "requests_chart",
        "Requests and sessions held",
        "consults",
        "bars",
        labels,
        [Series("Requests", list(reqs)), Series("Sessions held", list(held))],
    )
    acc = wait_data["wait_acceptance"][0]
    wait_chart = ChartData(
        "wait_chart",
        "Time to acceptance",
        "hours",
        "lines",
        labels,
        [
            Series(
                "Median",
                [round(acc[i][0] / 3600, 1) if i in acc else None for i in range(len(buckets))],
            ),
            Series(
                "90th percentile",
                [round(acc[i][1] / 3600, 1) if i in acc else None for i in range(len(buckets))],
            ),
        ],
    )
    share_chart = ChartData(
        "calls_chart",
        "Share of calls in audio-only or low mode",
        "%",
        "lines",
        labels,
        [
            Series(
                "Audio-only or low", [None if v is None else round(v * 100, 1) for v in low_share]
            )
        ],
    )
    charts = [(ch, _chart_table(ch)) for ch in (requests_chart, wait_chart, share_chart)]
    gaps = [
        dormant_facilities(session, filters, now),
        uncovered_specialties(session, filters),
        specialist_load(session, c),
    ]
    definitions = [(i.label, i.definition) for i in INDICATORS.values()]
    definitions += [(k.replace("_", " ").capitalize(), v) for k, v in GAPS.items()]
    return Dashboard(
        filters,
        buckets,
        [volume, waiting, endings, people, follow, calls, by_district, by_facility],
        charts,
        district_requests,
        gaps,
        definitions,
    )


def _chart_table(chart: ChartData) -> Table:
    table = Table(
        chart.key, chart.title, ["Period"] + [f"{s.name} ({chart.unit})" for s in chart.series]
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
    amounts = {k: counting.by_one(session, INDICATORS[k], f, by) for k in keys}
    if by == "district":
        places = [
            (d.code, d.name, d.code) for d in session.exec(select(District).order_by(District.name))
        ]
        table = Table(
            "districts",
            "By district",
            ["District", "Name", "Requests", "Sessions held", "Escalated"],
        )
    else:
        query = select(Facility, District).join(
            District, col(District.id) == col(Facility.district_id)
        )
        if f.district:
            query = query.where(District.code == f.district)
        if f.facility:
            query = query.where(Facility.code == f.facility)
        places = [
            (fa.id, fa.name, fa.code) for fa, _d in session.exec(query.order_by(Facility.name))
        ]
        table = Table(
            "facilities",
            "By facility",
            ["Facility", "Name", "Requests", "Sessions held", "Escalated"],
        )
    tests = counting.grouped(session, INDICATORS["network_tests"], f, by, "category")
    table.columns += [f"Network tests: {r}" for r in RECOMMENDATIONS]
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


def hours_offered(session: Session, filters: Filters) -> list[float]:
    """Per bucket: the weekly availability windows of verified specialists who are not
    away (and who offer the filtered specialty), in hours, times the bucket's weeks.
    Leave and extra hours are not taken off or added; district and facility filters do
    not apply (a specialist serves every facility)."""
    query = (
        select(AvailabilityWindow)
        .join(SpecialistProfile, col(SpecialistProfile.user_id) == col(AvailabilityWindow.user_id))
        .where(
            col(SpecialistProfile.status) == VerificationStatus.verified,
            col(SpecialistProfile.away).is_(False),
        )
    )
    if filters.specialty:
        query = query.where(
            col(AvailabilityWindow.user_id).in_(
                select(SpecialistSpecialty.user_id).where(
                    SpecialistSpecialty.specialty_code == filters.specialty
                )
            )
        )
    weekly = 0.0
    for w in session.exec(query):
        start = w.start_time.hour * 60 + w.start_time.minute
        end = w.end_time.hour * 60 + w.end_time.minute or 24 * 60
        weekly += max(0, end - start) / 60
    return [round(weekly * (b.end - b.start).days / 7, 1) for b in filters.buckets()]


def specialist_load(session: Session, c: _Counter) -> Table:
    """Consults each specialist accepted in the range against their weekly cap times the
    range's weeks."""
    f = c.filters
    by_specialist = counting.by_one(session, _accepted_by_specialist(), f, "subject")
    weeks = (f.end - f.first).days / 7
    table = Table(
        "load",
        "Load against caps",
        ["Specialist", "Accepted", "Weekly cap", "Cap over the period", "Load"],
    )
    if not by_specialist:
        return table
    rows = session.exec(
        select(User, SpecialistProfile)
        .join(SpecialistProfile, col(SpecialistProfile.user_id) == col(User.id))
        .where(col(User.id).in_(list(by_specialist)))
        .order_by(User.full_name)
    )
    for user, profile in rows:
        n = by_specialist[user.id]
        cap = None if profile.weekly_cap is None else profile.weekly_cap * weeks
        table.add(
            text(user.full_name),
            number(n),
            text("no cap" if profile.weekly_cap is None else str(profile.weekly_cap)),
            Cell(cap, NONE if cap is None else f"{cap:,.0f}"),
            percent(None if not cap else n / cap),
        )
    return table


def _accepted_by_specialist() -> Indicator:
    """Accepted offers per specialist: the active specialists' facts, every row counted."""
    return replace(INDICATORS["active_specialists"], measure=Measure.rows)


def dormant_facilities(session: Session, filters: Filters, now: datetime) -> Table:
    """Facilities (of the filtered district or facility) with no consult requested in the
    30 days before the end of the range (or before now, if the range runs to today)."""
    until = min(filters.end_utc, now)
    since = until - timedelta(days=DORMANT_DAYS)
    recent = (
        select(col(Consult.id))
        .where(
            col(Consult.facility_id) == col(Facility.id),
            col(Consult.requested_at) >= since,
            col(Consult.requested_at) < until,
        )
        .exists()
    )
    last = (
        select(func.max(Consult.requested_at))
        .where(col(Consult.facility_id) == col(Facility.id), col(Consult.requested_at) < until)
        .scalar_subquery()
    )
    query = (
        select(Facility, District, last)
        .join(District, col(District.id) == col(Facility.district_id))
        .where(~recent)
    )
    query = _place_where(query, filters)
    table = Table(
        "dormant",
        f"Dormant facilities (no request in {DORMANT_DAYS} days)",
        ["Facility", "Name", "District", "Last request"],
    )
    for facility, district, last_at in session.exec(query.order_by(Facility.name)):
        when = "never" if last_at is None else f"{_as_utc(last_at):%Y-%m-%d}"
        table.add(text(facility.code), text(facility.name), text(district.name), text(when))
    return table


def _as_utc(value: datetime) -> datetime:
    """A time from a scalar subquery (SQLite gives it without its zone) in Maseru."""
    from telemed.uptake.filters import MASERU

    return (value if value.tzinfo else value.replace(tzinfo=UTC)).astimezone(MASERU)


def _place_where(query: Any, filters: Filters) -> Any:
    if filters.district:
        query = query.where(col(District.code) == filters.district)
    if filters.facility:
        query = query.where(col(Facility.code) == filters.facility)
    return query


def uncovered_specialties(session: Session, filters: Filters) -> Table:
    """Active specialties that no verified specialist who is not away and has at least
    one weekly availability window offers."""
    covered = (
        select(col(SpecialistSpecialty.specialty_code))
        .join(SpecialistProfile, col(SpecialistProfile.user_id) == col(SpecialistSpecialty.user_id))
        .where(
            col(SpecialistProfile.status) == VerificationStatus.verified,
            col(SpecialistProfile.away).is_(False),
            select(col(AvailabilityWindow.id))
            .where(col(AvailabilityWindow.user_id) == col(SpecialistSpecialty.user_id))
            .exists(),
        )
    )
    query = select(Specialty).where(
        col(Specialty.active).is_(True), col(Specialty.code).not_in(covered)
    )
    if filters.specialty:
        query = query.where(col(Specialty.code) == filters.specialty)
    table = Table("uncovered", "Specialties with no cover", ["Specialty", "Name"])
    for specialty in session.exec(query.order_by(Specialty.name)):
        table.add(text(specialty.code), text(specialty.name))
    return table


@dataclass
class ConsultRow:
    id: int
    facility: str
    district: str
    specialty: str
    urgency: str
    state: str
    requested_at: datetime | None


@dataclass
class ConsultPage:
    indicator: Indicator
    filters: Filters
    bucket: Bucket | None
    category: str | None
    rows: list[ConsultRow]
    page: int
    has_next: bool


def _behind(
    filters: Filters, indicator: str, bucket: str | None, category: str | None
) -> tuple[Indicator, Filters, Bucket | None]:
    ind = INDICATORS.get(indicator)
    if ind is None or not ind.consult_based:
        raise ValidationFailed(f"unknown indicator {indicator!r}", field="indicator")
    chosen = None
    if bucket:
        chosen = next((b for b in filters.buckets() if b.key == bucket), None)
        if chosen is None:
            raise ValidationFailed(
                f"bucket {bucket!r} is not a period of the range", field="bucket"
            )
        filters = filters.narrowed(chosen)
    if category and ind.categories and category not in ind.categories:
        raise ValidationFailed(f"unknown category {category!r}", field="category")
    return ind, filters, chosen


def _consult_rows(ind: Indicator, filters: Filters, category: str | None) -> Any:
    ids = counting.consult_ids(ind, filters, category).subquery("ids")
    return (
        sa_select(
            col(Consult.id),
            col(Facility.code),
            col(District.name),
            col(Consult.specialty),
            col(Consult.urgency),
            col(Consult.state),
            col(Consult.requested_at),
        )
        .join(ids, ids.c.consult_id == col(Consult.id))
        .join(Facility, col(Facility.id) == col(Consult.facility_id))
        .join(District, col(District.id) == col(Facility.district_id))
        .order_by(col(Consult.id).desc())
    )


def consults_behind(
    session: Session,
    user: User,
    filters: Filters,
    indicator: str,
    *,
    bucket: str | None = None,
    category: str | None = None,
    page: int = 1,
) -> ConsultPage:
    """The consults counted in one number of the dashboard, newest first, a page at a
    time; the list is a clinical read and audited (which consults were shown to whom)."""
    ensure_coordinator(user)
    ind, narrowed, chosen = _behind(filters, indicator, bucket, category)
    rows = [
        ConsultRow(*r)
        for r in session.execute(
            _consult_rows(ind, narrowed, category)
            .limit(CONSULTS_PAGE + 1)
            .offset((page - 1) * CONSULTS_PAGE)
        )
    ]
    shown = rows[:CONSULTS_PAGE]
    audit.record_access(
        session,
        user,
        AuditAction.list,
        "uptake_consults",
        indicator,
        detail=f"{filters.query(bucket=bucket, category=category)} consults "
        + ",".join(str(r.id) for r in shown),
    )
    return ConsultPage(ind, filters, chosen, category, shown, page, len(rows) > CONSULTS_PAGE)


CSV_COLUMNS = ["consult", "facility", "district", "specialty", "urgency", "state", "requested_at"]


def consults_export(
    session: Session,
    user: User,
    filters: Filters,
    indicator: str,
    *,
    bucket: str | None = None,
    category: str | None = None,
) -> Any:
    """The query of every consult behind a number, for a streamed CSV. Checked and
    audited here, in the request's unit of work, before the first row is sent: one row
    naming the indicator and the filters (a million ids would not fit in it)."""
    ensure_coordinator(user)
    ind, narrowed, _chosen = _behind(filters, indicator, bucket, category)
    audit.record_access(
        session,
        user,
        AuditAction.download,
        "uptake_consults",
        indicator,
        detail=f"CSV {filters.query(bucket=bucket, category=category)}",
    )
    return _consult_rows(ind, narrowed, category)


def export_rows(session: Session, statement: Any) -> Iterator[list[Any]]:
    """The rows of ``consults_export``'s query, fetched in chunks."""
    for r in stream(session, statement):
        at = r[6]
        yield [*r[:6], "" if at is None else _as_utc(at).isoformat(timespec="seconds")]


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
