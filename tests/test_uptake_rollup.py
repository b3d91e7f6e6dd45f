"""The rollup (``telemed.uptake.rollup``, read by ``telemed.uptake.fast``) gives the same
numbers as counting from the clinical tables (``telemed.uptake.counting``), on the
hand-computed history of tests/uptake_fixture.py, for every indicator, grouping and kind of
filter, on SQLite and PostgreSQL; and still does after amendments and state changes brought
in by the job's incremental refresh."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, timedelta
from typing import Any

import pytest
from sqlmodel import Session, select

from telemed.accounts.models import Role, User
from telemed.consults.models import Consult, ConsultEvent, ConsultState, Urgency
from telemed.db import pk
from telemed.facilities.models import District
from telemed.notes.models import ConsultNote, ConsultOutcome, NoteStatus, Outcome
from telemed.offers.models import ConsultOffer, OfferStatus
from telemed.precall.models import NetworkRecommendation, NetworkTest
from telemed.sessions.models import CallEventKind, CallSession, CallSessionEvent
from telemed.uptake import counting, rollup, service
from telemed.uptake.counting import PERCENTILES, GroupBy
from telemed.uptake.fast import Rollup
from telemed.uptake.filters import Filters, Period
from telemed.uptake.indicators import INDICATORS, Measure
from telemed.uptake.models import UptakeRollup, UptakeWaitPick
from telemed.uptake.picks import WAITS, pct
from telemed.uptake.sql import WAIT_BIN_RATIO
from tests.helpers import Users
from tests.uptake_fixture import NOW, Fixture, build, t

MONTHS = Filters(Period.month, date(2026, 10, 1), date(2026, 12, 1))
VARIANTS = {
    "months": MONTHS,
    "weeks": replace(MONTHS, period=Period.week),
    "month not over": replace(MONTHS, end=date(2026, 11, 16)),  # day rows for November
    "district": replace(MONTHS, district="MS"),
    "facility": replace(MONTHS, facility="BEREA"),
    "specialty and urgency": replace(MONTHS, specialty="paediatrics", urgency=Urgency.urgent),
    "district and specialty": replace(MONTHS, district="MS", specialty="internal_medicine"),
}
GROUPINGS: list[tuple[GroupBy, ...]] = [
    ("bucket",),
    ("all",),
    ("bucket", "category"),
    ("category",),
]


def assert_same(db: Session, variants: tuple[str, ...] = tuple(VARIANTS)) -> None:
    """Every number the dashboard shows, read from the rollup and counted directly (one
    kind of filter per kind of rows read: month, day, district, facts, specialty)."""
    for name in variants:
        f = VARIANTS[name]
        fast = Rollup(db, f)
        for key, ind in INDICATORS.items():
            for by in GROUPINGS if ind.categories else GROUPINGS[:2]:
                direct = counting.grouped(db, ind, f, *by)
                assert fast.grouped(ind, *by) == pytest.approx(direct), (name, key, by)
            if ind.measure is Measure.duration:
                for one in ("bucket", "all"):
                    got, want = fast.waits(ind, one), counting.waits(db, ind, f, one)
                    assert got.keys() == want.keys(), (name, key, one)
                    for k, values in want.items():  # within the bins' 2 %
                        assert got[k] == pytest.approx(values, rel=0.02), (name, key, one)
        for key in rollup.BY_PLACE:
            ind = INDICATORS[key]
            places: list[tuple[GroupBy, ...]] = [
                ("facility",),
                ("district",),
                ("facility", "category"),
            ]
            for by in places:
                direct = counting.grouped(db, ind, f, *by)
                assert fast.grouped(ind, *by) == pytest.approx(direct), (name, key, by)
        rows = replace(INDICATORS["active_specialists"], measure=Measure.rows)
        assert fast.grouped(rows, "subject") == counting.grouped(db, rows, f, "subject"), name


@pytest.fixture
def fx(db: Session, users: Users) -> Fixture:
    built = build(db, users)
    assert rollup.refresh(db, NOW) == -1  # no rollup yet: built in bulk, indexes after
    db.commit()
    return built


def test_rollup_equals_direct_counting(db: Session, fx: Fixture) -> None:
    assert_same(db)


def _changes(db: Session, fx: Fixture) -> None:
    """After the rollup was built: an outcome corrected, a second call, a new request, a
    network test, an open offer declined in place, a note amended with a new follow-up day."""
    c1, c2, _c3, c4, _c5 = fx.consults
    later = NOW + timedelta(minutes=5)
    db.add(
        ConsultOutcome(
            consult_id=pk(c1),
            outcome=Outcome.referred,
            recorded_by_id=pk(fx.s2),
            recorded_at=t(11, 3, 9),
        )
    )
    call = CallSession(consult_id=pk(c4), room="fx-4b", started_at=t(11, 16, 9))
    db.add(call)
    db.flush()
    for kind, at in ((CallEventKind.media, t(11, 16, 9, 1)), (CallEventKind.reconnecting, later)):
        db.add(
            CallSessionEvent(
                call_session_id=pk(call),
                consult_id=pk(c4),
                kind=kind,
                at=at,
                detail='{"mode":"audio-only"}',
            )
        )
    new = Consult(
        case_id=c4.case_id,
        facility_id=c2.facility_id,
        specialty="paediatrics",
        urgency=Urgency.routine,
        mode=c4.mode,
        language=c4.language,
        question="?",
        created_by_id=pk(fx.clinician),
        requested_at=t(11, 20, 7),
        state=ConsultState.requested,
    )
    db.add(new)
    db.flush()
    db.add(ConsultEvent(consult_id=pk(new), at=t(11, 20, 7), to_state=ConsultState.requested))
    db.add(
        ConsultOffer(
            consult_id=pk(new),
            specialist_id=pk(fx.s1),
            offered_at=t(11, 20, 8),
            expires_at=t(11, 21, 8),
        )
    )
    db.add(
        NetworkTest(
            user_id=pk(fx.clinician),
            facility_id=c2.facility_id,
            created_at=t(11, 21, 9),
            connected=True,
            recommendation=NetworkRecommendation.asynchronous,
        )
    )
    db.commit()
    rollup.refresh(db, NOW + timedelta(minutes=1))
    db.commit()
    offer = db.exec(select(ConsultOffer).where(ConsultOffer.consult_id == pk(new))).one()
    offer.status, offer.responded_at = OfferStatus.declined, later  # answered in place
    db.add(offer)
    note = db.exec(select(ConsultNote).where(ConsultNote.consult_id == pk(c1))).one()
    db.add(
        ConsultNote(
            consult_id=pk(c1),
            series_id=note.series_id,
            version=2,
            amends_id=pk(note),
            amendment_reason="later follow-up",
            author_id=pk(fx.s2),
            author_role="specialist",
            status=NoteStatus.signed,
            follow_up_on=date(2026, 11, 27),
            signed_at=later,
        )
    )
    db.commit()


def test_refresh_keeps_the_rollup_equal_after_changes(db: Session, fx: Fixture) -> None:
    _changes(db, fx)
    touched = rollup.refresh(db, NOW + timedelta(minutes=6))
    db.commit()
    assert touched >= 2  # the new consult's offer and consult 1's amended note
    assert_same(db, ("months", "weeks", "district and specialty"))
    # the totals moved as the story says: a fifth request, consult 1's latest outcome
    fast = Rollup(db, MONTHS)
    assert fast.grouped(INDICATORS["requests"], "all") == {(0,): 5}
    assert fast.grouped(INDICATORS["outcomes"], "category")[("referred",)] == 1
    assert fast.grouped(INDICATORS["network_tests"], "category")[("asynchronous",)] == 1
    # and the incremental rollup is the one a full rebuild makes (zero rows aside)
    kept = _rows(db)
    rollup.rebuild(db, NOW + timedelta(minutes=7))
    db.commit()
    assert kept == _rows(db)


def _rows(db: Session) -> dict[tuple[Any, ...], tuple[int, float]]:
    rows = db.exec(select(UptakeRollup).where(UptakeRollup.n != 0)).all()
    return {tuple(getattr(r, k) for k in rollup.KEY): (r.n, round(r.total, 3)) for r in rows}


def test_dashboard_reads_the_rollup_with_its_time(db: Session, users: Users) -> None:
    build(db, users)
    coordinator: User = users.make(Role.coordinator)
    direct = service.dashboard(db, coordinator, MONTHS, NOW)
    assert direct.as_of is None
    rollup.rebuild(db, NOW)
    db.commit()
    fast = service.dashboard(db, coordinator, MONTHS, NOW)
    assert fast.as_of == NOW
    for a, b in zip(direct.tables + direct.gaps, fast.tables + fast.gaps, strict=True):
        assert [[c.value for c in row] for row in a.rows] == [
            [c.value for c in row] for row in b.rows
        ], a.key


def _picks(db: Session) -> dict[tuple[Any, ...], tuple[int, int, int, float]]:
    """The stored wait picks: key -> (bin, waits, waits in the bin, their seconds)."""
    rows = db.exec(select(UptakeWaitPick)).all()
    return {
        (r.scope, r.indicator, r.month, r.district_id, r.specialty, r.urgency, r.pct): (
            r.vbin,
            r.waits,
            r.n,
            round(r.total, 3),
        )
        for r in rows
    }


def assert_picks_live(db: Session) -> dict[tuple[Any, ...], tuple[int, int, int, float]]:
    """Every month's stored pick, in every scope the fixture's consults fall in, is the
    percentile counted from the clinical tables: as many waits, the bin holding the exact
    nearest-rank value, and a pick for every month and scope with waits and for no other."""
    stored, seen = _picks(db), set()
    districts = dict(db.exec(select(District.code, District.id)).all())
    scopes: list[tuple[str, dict[str, Any], tuple[int, str, str]]] = [("m", {}, (0, "", ""))]
    scopes += [("mD", {"district": c}, (districts[c], "", "")) for c in ("MS", "MF", "BE")]
    specialties, urgencies = ("paediatrics", "internal_medicine"), tuple(Urgency)
    scopes += [("ms", {"specialty": s}, (0, s, "")) for s in specialties]
    scopes += [("mu", {"urgency": u}, (0, "", u.value)) for u in urgencies]
    scopes += [
        ("msu", {"specialty": s, "urgency": u}, (0, s, u.value))
        for s in specialties
        for u in urgencies
    ]
    for scope, narrowing, dims in scopes:
        f = replace(MONTHS, **narrowing)
        months = [b.start for b in f.buckets()]
        for key in WAITS:
            live = counting.waits(db, INDICATORS[key], f, "bucket")
            rows = replace(INDICATORS[key], measure=Measure.rows)
            many = counting.grouped(db, rows, f, "bucket")
            for (bucket,), count in many.items():
                for p, exact in zip(PERCENTILES, live[bucket], strict=True):
                    at = (scope, key, months[bucket], *dims, pct(p))
                    vbin, waits, n, total = stored[at]
                    assert waits == count, at
                    assert WAIT_BIN_RATIO**vbin <= max(exact, 1.0) * (1 + 1e-9), at
                    assert exact < WAIT_BIN_RATIO ** (vbin + 1), at
                    assert total / n == pytest.approx(exact, rel=0.02), at
                    seen.add(at)
    assert seen == set(stored)
    return stored


def test_wait_picks_are_the_live_percentiles_before_and_after_a_late_change(
    db: Session, fx: Fixture
) -> None:
    before = assert_picks_live(db)
    _changes(db, fx)  # November, closed by NOW, gets a call and a specialist's answer
    rollup.refresh(db, NOW + timedelta(minutes=6))
    db.commit()
    after = assert_picks_live(db)
    moved = {k for k in before.keys() | after.keys() if before.get(k) != after.get(k)}
    assert moved
    assert {k[2] for k in moved} == {date(2026, 11, 1)}  # only November's
    rollup.rebuild(db, NOW + timedelta(minutes=7))
    db.commit()
    assert _picks(db) == after  # the refresh's picks are the full rebuild's
