"""The uptake rollup: the indicators' fact rows, counted once into sums per Maseru day and
month, so that the dashboard reads a few thousand rows instead of a year of every table.

Two tables (``telemed.uptake.models``):

* ``uptake_facts``: every indicator's fact rows, exactly as ``telemed.uptake.indicators``
  defines them (the same queries produce them), each placed on its Maseru day, with the day
  of the previous fact of the same subject (``prev_day``), its district, and for a waiting
  time its bin (``sql.wait_bin``);
* ``uptake_rollup``: their counts and sums per *grain*: month or day (``m``, ``d``), alone or
  per district (``D``), per facility (``F``, only the indicators of the by-place tables) or
  per specialty and urgency (``su``). A filter combining a place with a specialty or
  urgency reads ``uptake_facts`` itself (narrow by its facility index);

and beside them ``uptake_wait_picks`` (``telemed.uptake.picks``): each month's waiting-time
percentile bins, made again with the month rows they are read from.

**Distinct counts stay exact.** A subject counted "once per period" (a consult, a call)
counts in a bucket only on its first fact in that bucket: a fact whose ``prev_day`` is
before the bucket's first day. Buckets are whole Maseru days (or months, read from month
rows), so one comparison per row is exact, for any range, week or month. Subjects that
span consults (specialists, for "active specialists") keep their id in the rollup instead.

**How it stays correct: a job, with a staleness bound.** Nothing in the other domains
writes here (the layers forbid it, and a trigger would hide it). The ``uptake_rollup`` job
(``telemed.uptake.jobs``, every ``REFRESH_EVERY``) finds the consults touched since its last
run, by new rows in the tables the indicators read (ids above the watermarks it keeps, one
run of overlap) and by offers answered and notes signed since (their times, with a margin),
deletes those consults' fact rows, takes their counts off the rollup, computes their facts
again and adds them back, in one transaction. A change is therefore in the rollup within
``REFRESH_EVERY`` plus one run, unless its own transaction stayed open longer than a refresh
interval; the full rebuild (once a day, and whenever the rollup is missing) repairs even
that. The dashboard shows "figures as of" the last refresh (``UptakeRollupState.as_of``)
and counts directly from the clinical tables while no rollup exists.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Date,
    Float,
    Integer,
    Select,
    case,
    cast,
    delete,
    func,
    insert,
    literal,
    select,
    text,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session, col

from telemed.appointments.models import Appointment, AppointmentChange
from telemed.consults.models import Consult, ConsultEvent
from telemed.facilities.models import Facility
from telemed.notes.models import ConsultNote, ConsultOutcome
from telemed.offers.models import ConsultOffer
from telemed.precall.models import NetworkTest
from telemed.sessions.models import CallSession, CallSessionEvent
from telemed.uptake import picks
from telemed.uptake.filters import in_maseru, maseru_today
from telemed.uptake.indicators import INDICATORS, Indicator, Measure
from telemed.uptake.models import NO_BIN, NO_DAY, UptakeFact, UptakeRollup, UptakeRollupState
from telemed.uptake.sql import maseru_day, month_of, wait_bin

Say = Callable[[str], object]
REFRESH_EVERY = timedelta(minutes=1)
REBUILD_EVERY = timedelta(days=1)
MARGIN = timedelta(minutes=10)  # for the changes found by their times (offers, notes)
#: Subjects that span consults: kept in the rollup and counted distinct there.
SUBJECT_KEPT = frozenset({"active_specialists"})
#: The indicators of the by-place tables, the only ones summed per facility.
BY_PLACE = ("requests", "sessions_held", "escalated", "network_tests")
GRAINS: dict[str, tuple[str, ...]] = {
    "m": (),
    "d": (),
    "mD": ("district_id",),
    "dD": ("district_id",),
    "mF": ("district_id", "facility_id"),
    "dF": ("district_id", "facility_id"),
    "msu": ("specialty", "urgency"),
    "dsu": ("specialty", "urgency"),
}
KEY = (
    "grain",
    "indicator",
    "day",
    "prev_day",
    "district_id",
    "facility_id",
    "specialty",
    "urgency",
    "category",
    "subject",
    "vbin",
)
# The tables whose new rows mark their consult as touched (found by id above a watermark).
_BY_ID: dict[str, tuple[Any, Any]] = {
    "consults": (Consult, col(Consult.id)),
    "consult_events": (ConsultEvent, col(ConsultEvent.consult_id)),
    "consult_offers": (ConsultOffer, col(ConsultOffer.consult_id)),
    "call_sessions": (CallSession, col(CallSession.consult_id)),
    "call_session_events": (CallSessionEvent, col(CallSessionEvent.consult_id)),
    "consult_outcomes": (ConsultOutcome, col(ConsultOutcome.consult_id)),
    "consult_notes": (ConsultNote, col(ConsultNote.consult_id)),
    "appointments": (Appointment, col(Appointment.consult_id)),
    "appointment_changes": (AppointmentChange, None),
    "network_tests": (NetworkTest, None),
}


def _facts(ind: Indicator, where: Any = None) -> Select[Any]:
    """The indicator's fact rows as ``uptake_facts`` columns (``where`` on the facts)."""
    sub = ind.build().subquery("f")
    day: ColumnElement[Any] = sub.c.at if ind.dated else maseru_day(sub.c.at)
    no_day = literal(NO_DAY, Date)
    if ind.key in SUBJECT_KEPT:
        prev: ColumnElement[Any] = no_day
    else:
        previous = func.lag(day).over(partition_by=sub.c.subject, order_by=sub.c.at)
        prev = func.coalesce(previous, no_day)
    vbin = wait_bin(sub.c.value) if ind.measure is Measure.duration else literal(NO_BIN)
    statement = select(
        literal(ind.key).label("indicator"),
        cast(sub.c.consult_id, Integer).label("consult_id"),
        func.coalesce(col(Facility.district_id), 0).label("district_id"),
        func.coalesce(sub.c.facility_id, 0).label("facility_id"),
        func.coalesce(sub.c.specialty, "").label("specialty"),
        func.coalesce(sub.c.urgency, "").label("urgency"),
        func.coalesce(sub.c.category, "").label("category"),
        func.coalesce(sub.c.subject, 0).label("subject"),
        day.label("day"),
        prev.label("prev_day"),
        cast(sub.c.value, Float).label("value"),
        vbin.label("vbin"),
    ).outerjoin(Facility, col(Facility.id) == sub.c.facility_id)
    if where is not None:
        statement = statement.where(where(sub))
    return statement


FACT_COLUMNS = [
    "indicator",
    "consult_id",
    "district_id",
    "facility_id",
    "specialty",
    "urgency",
    "category",
    "subject",
    "day",
    "prev_day",
    "value",
    "vbin",
]


def _insert_facts(
    session: Session, where: Any = None, keys: Iterable[str] = (), say: Say | None = None
) -> None:
    table = UptakeFact.__table__  # type: ignore[attr-defined]
    for key in keys or INDICATORS:
        started = time.perf_counter()
        statement = _facts(INDICATORS[key], where)
        session.execute(insert(table).from_select(FACT_COLUMNS, statement))
        if say is not None:
            say(f"  facts of {key} in {time.perf_counter() - started:.1f} s")


def _grain_select(grain: str, where: Any = None) -> Select[Any]:
    """The fact rows (``where`` on ``uptake_facts``) summed at ``grain``, as rollup rows."""
    dims = GRAINS[grain]
    f = UptakeFact.__table__.c  # type: ignore[attr-defined]
    keys = _grain_keys(grain, f, grain.startswith("m"), kept_subject(f))
    statement = select(
        *keys,
        func.count().label("n"),
        func.coalesce(func.sum(f.value), 0.0).label("total"),
    ).group_by(*keys[1:])
    if "facility_id" in dims:
        statement = statement.where(f.indicator.in_(BY_PLACE))
    if where is not None:
        statement = statement.where(where)
    return statement


#: The order a rebuild makes the grains in, each from the facts (``None``) or from a finer
#: grain already made: a month row is the sum of its days' rows (its ``prev_day`` taken to
#: its month), a row of no place the sum of its districts' rows. Reading the facts (tens of
#: millions of rows at a million consults) once per day grain instead of once per grain
#: is most of the first build's time saved; the sums are the same.
BUILD_ORDER: tuple[tuple[str, str | None], ...] = (
    ("dD", None),
    ("d", "dD"),
    ("mD", "dD"),
    ("m", "d"),
    ("dF", None),
    ("mF", "dF"),
    ("dsu", None),
    ("msu", "dsu"),
)


def _derived_select(grain: str, source: str) -> Select[Any]:
    """The rollup rows of ``source`` (a finer grain) summed at ``grain``."""
    r = UptakeRollup.__table__.c  # type: ignore[attr-defined]
    monthly = grain.startswith("m") and source.startswith("d")
    keys = _grain_keys(grain, r, monthly, r.subject)
    return (
        select(*keys, func.sum(r.n).label("n"), func.sum(r.total).label("total"))
        .where(r.grain == source)
        .group_by(*keys[1:])
    )


def _grain_keys(grain: str, c: Any, monthly: bool, subject: Any) -> list[ColumnElement[Any]]:
    """A rollup row's key at ``grain`` from the columns ``c`` (facts or finer rollup rows):
    days taken to their month if ``monthly``, the dimensions the grain has not set to
    0 or ''."""
    dims = GRAINS[grain]
    return [
        literal(grain).label("grain"),
        c.indicator,
        (month_of(c.day) if monthly else c.day).label("day"),
        (month_of(c.prev_day) if monthly else c.prev_day).label("prev_day"),
        (c.district_id if "district_id" in dims else literal(0)).label("district_id"),
        (c.facility_id if "facility_id" in dims else literal(0)).label("facility_id"),
        (c.specialty if "specialty" in dims else literal("")).label("specialty"),
        (c.urgency if "urgency" in dims else literal("")).label("urgency"),
        c.category,
        subject,
        c.vbin,
    ]


def kept_subject(f: Any) -> ColumnElement[Any]:
    """The subject where it spans consults (``SUBJECT_KEPT``), else 0."""
    return case((f.indicator.in_(sorted(SUBJECT_KEPT)), f.subject), else_=0).label("subject")


def rebuild(session: Session, now: datetime, say: Say | None = None, bulk: bool = False) -> None:
    """Everything again from the clinical tables (in the caller's transaction); on
    PostgreSQL the sorts get memory enough. ``bulk`` (the first build: nobody reads the
    rollup yet) drops the two tables' secondary indexes for the load and makes them again
    after it, one sort each instead of millions of insertions; the daily rebuild keeps
    them, so that the dashboard can read the old rollup meanwhile."""
    connection = session.connection()
    if connection.dialect.name == "postgresql":
        session.execute(text("SET LOCAL work_mem = '128MB'"))
        session.execute(text("SET LOCAL maintenance_work_mem = '256MB'"))
    indexes = []
    if bulk:
        indexes = [
            *UptakeFact.__table__.indexes,  # type: ignore[attr-defined]
            *UptakeRollup.__table__.indexes,  # type: ignore[attr-defined]
        ]
    for index in indexes:
        index.drop(connection)
    session.execute(delete(UptakeRollup))
    session.execute(delete(UptakeFact))
    _insert_facts(session, say=say)
    table = UptakeRollup.__table__  # type: ignore[attr-defined]
    for grain, source in BUILD_ORDER:
        started = time.perf_counter()
        select_ = _grain_select(grain) if source is None else _derived_select(grain, source)
        session.execute(insert(table).from_select([*KEY, "n", "total"], select_))
        if say is not None:
            say(f"  rollup {grain} in {time.perf_counter() - started:.1f} s")
    for index in indexes:
        index.create(connection)
    picks.store(session)
    state = session.get(UptakeRollupState, 1)
    marks = {name: [m, m] for name, m in _max_ids(session).items()}
    if state is None:
        state = UptakeRollupState(id=1, as_of=now, built_at=now)
    state.as_of, state.built_at, state.watermarks = now, now, json.dumps(marks)
    state.picks_built = True
    session.add(state)
    session.flush()


def _max_ids(session: Session) -> dict[str, int]:
    return {
        name: int(session.execute(select(func.max(model.id))).scalar() or 0)
        for name, (model, _c) in _BY_ID.items()
    }


def _touched(session: Session, marks: dict[str, list[int]], since: datetime) -> set[int]:
    """The consults with a row new since the older watermark, an offer answered or a note
    signed since ``since``."""
    touched: set[int] = set()
    for name, (model, consult) in _BY_ID.items():
        above = col(model.id) > marks.get(name, [0, 0])[0]
        if name == "appointment_changes":
            query: Any = select(col(Appointment.consult_id)).join(
                AppointmentChange, col(AppointmentChange.appointment_id) == col(Appointment.id)
            )
            touched.update(session.execute(query.where(above)).scalars())
        elif consult is not None:
            touched.update(session.execute(select(consult).where(above)).scalars())
    for query in (
        select(col(ConsultOffer.consult_id)).where(col(ConsultOffer.responded_at) >= since),
        select(col(ConsultNote.consult_id)).where(col(ConsultNote.signed_at) >= since),
    ):
        touched.update(session.execute(query).scalars())
    return touched


def _sums(session: Session, where: Any) -> dict[tuple[Any, ...], list[float]]:
    out: dict[tuple[Any, ...], list[float]] = {}
    for grain in GRAINS:
        for row in session.execute(_grain_select(grain, where)):
            out[tuple(row[: len(KEY)])] = [row.n, row.total]
    return out


def _apply(
    session: Session, before: dict[Any, list[float]], after: dict[Any, list[float]]
) -> set[tuple[str, Any]]:
    """Adds ``after - before`` to the rollup's rows (creating the missing ones). Rows may
    fall to zero and stay: a zero counts nothing. Returns the (wait, month) pairs whose
    month rows moved, at any grain: their picks must be made again."""
    delta: dict[Any, list[float]] = {}
    for key in before.keys() | after.keys():
        old, new = before.get(key, [0, 0.0]), after.get(key, [0, 0.0])
        if old != new:
            delta[key] = [new[0] - old[0], new[1] - old[1]]
    moved = {(k[1], k[2]) for k in delta if k[0].startswith("m") and k[1] in picks.WAITS}
    if not delta:
        return moved
    rows = [dict(zip(KEY, key, strict=True), n=d[0], total=d[1]) for key, d in delta.items()]
    table = UptakeRollup.__table__  # type: ignore[attr-defined]
    dialect = session.get_bind().dialect.name
    upsert: Any = (postgresql if dialect == "postgresql" else sqlite).insert(table)
    upsert = upsert.on_conflict_do_update(
        index_elements=list(KEY),
        set_={"n": table.c.n + upsert.excluded.n, "total": table.c.total + upsert.excluded.total},
    )
    for start in range(0, len(rows), 500):
        session.execute(upsert, rows[start : start + 500])
    return moved


def _redo(
    session: Session, where: Any, insert_where: Any, keys: Iterable[str]
) -> set[tuple[str, Any]]:
    """The facts matching ``where`` computed again, and the rollup moved by the change;
    returns the (wait, month) pairs moved (``_apply``)."""
    before = _sums(session, where)
    session.execute(delete(UptakeFact).where(where))
    _insert_facts(session, insert_where, keys)
    return _apply(session, before, _sums(session, where))


def ensure_picks(session: Session, state: UptakeRollupState) -> bool:
    """Makes every month's wait picks if this rollup has none yet (built before them);
    whether it did."""
    if state.picks_built:
        return False
    picks.store(session)
    state.picks_built = True
    session.add(state)
    session.flush()
    return True


def refresh(session: Session, now: datetime) -> int:
    """Brings the rollup up to ``now`` (rebuilt if missing or older than a day); returns
    how many consults were counted again. In the caller's transaction."""
    state = session.execute(
        select(UptakeRollupState).where(col(UptakeRollupState.id) == 1).with_for_update()
    ).scalar_one_or_none()
    if state is None or now - state.built_at >= REBUILD_EVERY:
        rebuild(session, now, bulk=state is None)
        return -1
    ensure_picks(session, state)
    marks: dict[str, list[int]] = json.loads(state.watermarks)
    newest = _max_ids(session)
    moved: set[tuple[str, Any]] = set()
    touched = sorted(_touched(session, marks, state.as_of - MARGIN))
    consult_keys = [k for k, i in INDICATORS.items() if i.consult_based]
    fact = UptakeFact.__table__.c  # type: ignore[attr-defined]
    for start in range(0, len(touched), 1000):
        chunk = touched[start : start + 1000]
        moved |= _redo(
            session,
            fact.consult_id.in_(chunk),
            lambda sub, chunk=chunk: sub.c.consult_id.in_(chunk),
            consult_keys,
        )
    tests_above = marks.get("network_tests", [0, 0])[0]
    earliest = session.execute(
        select(func.min(col(NetworkTest.created_at))).where(col(NetworkTest.id) > tests_above)
    ).scalar()
    if earliest is not None:  # new tests: their facts are on or after that day
        since_day = maseru_today(in_maseru(earliest))
        _redo(
            session,
            (fact.indicator == "network_tests")
            & (fact.day >= since_day)
            & (fact.subject > tests_above),
            lambda sub: sub.c.subject > tests_above,
            [k for k, i in INDICATORS.items() if not i.consult_based],
        )
    picks.store(session, moved)
    state.watermarks = json.dumps(
        {name: [marks.get(name, [0, 0])[1], m] for name, m in newest.items()}
    )
    state.as_of = now
    session.add(state)
    session.flush()
    return len(touched)


def state(session: Session) -> UptakeRollupState | None:
    return session.get(UptakeRollupState, 1)
