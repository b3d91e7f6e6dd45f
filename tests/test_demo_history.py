"""The demo's six months of history: spread over the districts and the months, coherent
with the lifecycle, and leaving the demo users' own pages as they were."""

from __future__ import annotations

from datetime import timedelta

from sqlmodel import Session, col, func, select

from telemed.accounts.models import Role, User
from telemed.consults.lifecycle import TRANSITIONS
from telemed.consults.models import Consult, ConsultEvent
from telemed.db import utcnow
from telemed.demo.history import DORMANT, QUIET_DAYS, SKIP
from telemed.demo.seed import seed_demo
from telemed.facilities.models import District, Facility
from telemed.settings import Settings
from telemed.uptake import counting, gaps
from telemed.uptake.filters import parse
from telemed.uptake.indicators import INDICATORS


def test_history_makes_the_dashboard_meaningful(db: Session, settings: Settings) -> None:
    now = utcnow()
    assert seed_demo(db, settings)
    db.commit()
    history = select(Consult).where(col(Consult.requested_at) < now - timedelta(days=QUIET_DAYS))
    consults = db.exec(history).all()
    assert len(consults) > 300
    districts = db.exec(
        select(func.count(func.distinct(District.code)))
        .join(Facility, col(Facility.district_id) == col(District.id))
        .join(Consult, col(Consult.facility_id) == col(Facility.id))
    ).one()
    assert districts >= 8
    filters = parse(db, now, period="month")
    per_month = counting.by_one(db, INDICATORS["requests"], filters, "bucket")
    assert all(per_month.get(i, 0) > 20 for i in range(5))  # the five full months before this
    for key in (
        "sessions_held",
        "answered_async",
        "escalated",
        "no_shows",
        "calls_low",
        "calls_dropped",
        "follow_ups_due",
        "network_tests",
        "active_specialists",
    ):
        assert counting.total(db, INDICATORS[key], filters) > 0, key
    dormant = {row[0].value for row in gaps.dormant_facilities(db, filters, now).rows}
    assert set(DORMANT) <= dormant


def test_history_follows_the_lifecycle(db: Session, settings: Settings) -> None:
    assert seed_demo(db, settings)
    db.commit()
    events = db.exec(select(ConsultEvent).order_by(ConsultEvent.consult_id, ConsultEvent.id)).all()
    last: dict[int, ConsultEvent] = {}
    for event in events:
        before = last.get(event.consult_id)
        if before is not None:
            assert event.to_state in TRANSITIONS[before.to_state], (before, event)
            assert event.at >= before.at
        last[event.consult_id] = event
    for consult in db.exec(select(Consult)):
        if consult.id in last:
            assert consult.state == last[consult.id].to_state


def test_history_leaves_the_demo_users_pages_alone(db: Session, settings: Settings) -> None:
    now = utcnow()
    assert seed_demo(db, settings)
    db.commit()
    skipped = select(Facility.id).where(col(Facility.code).in_(SKIP))
    at_demo_clinics = db.exec(select(Consult).where(col(Consult.facility_id).in_(skipped))).all()
    assert len(at_demo_clinics) < 10  # the hand-made demo consults only
    recent = db.exec(
        select(func.count())
        .select_from(ConsultEvent)
        .where(
            col(ConsultEvent.at) > now - timedelta(days=QUIET_DAYS - 1),
            col(ConsultEvent.at) < now - timedelta(hours=1),
        )
    ).one()
    assert recent == 0
    assert (
        db.exec(select(func.count()).select_from(User).where(User.role == Role.clinician)).one()
        == 2
    )
