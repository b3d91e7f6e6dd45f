"""The care jobs on a controllable clock: an answered asynchronous consult falls due for
its follow-up, the clinician is told once, an outcome closes it; the coordinators' daily
digest goes out once a day after 06:00 Maseru time; a registration about to expire is
flagged once."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlmodel import Session, col, select

from telemed.accounts.models import Role, User
from telemed.consults.models import Consult
from telemed.db import utcnow
from telemed.directory.jobs import reverification_reminders
from telemed.directory.models import SpecialistProfile
from telemed.notes.jobs import follow_ups_due
from telemed.notifications.models import Notification
from telemed.offers.jobs import daily_digest
from telemed.offers.models import ConsultOffer
from telemed.settings import Settings
from telemed.uow import Units
from tests.conftest import LoginFn
from tests.directory_helpers import Specialists
from tests.helpers import ApiClient, ManualClock, Users, consult_payload

NOTE = {
    "subjective": "Wheeze since infancy, night cough.",
    "objective": "Bilateral expiratory wheeze, SpO2 95%.",
    "assessment": "Moderate persistent asthma.",
    "plan": "Beclometasone 100 mcg twice daily with spacer; salbutamol as needed.",
    "diagnoses": ["J45.9"],
    "follow_up_instruction": "Review inhaler technique and night symptoms.",
}


def notices(db: Session, user: User, kind: str) -> list[Notification]:
    db.rollback()
    return list(
        db.exec(
            select(Notification)
            .where(Notification.user_id == user.id, Notification.kind == kind)
            .order_by(col(Notification.id))
        )
    )


def state_of(db: Session, consult_id: int) -> str:
    db.rollback()
    consult = db.get(Consult, consult_id)
    assert consult is not None
    return str(consult.state)


def answered_async_consult(
    db: Session, settings: Settings, users: Users, login: LoginFn, follow_up_on: str
) -> tuple[ApiClient, ApiClient, int]:
    """An asynchronous question accepted by a specialist who signs a note asking for a
    follow-up on ``follow_up_on``."""
    specialist = Specialists(db, settings, users).make(specialty="paediatrics")
    nurse = login(users.make(Role.clinician))
    payload = consult_payload(mode="asynchronous", urgency="routine")
    consult_id = int(nurse.post("/api/v1/consults", payload).json()["id"])
    db.rollback()
    [offer] = db.exec(select(ConsultOffer).where(ConsultOffer.consult_id == consult_id)).all()
    doctor = login(specialist)
    assert doctor.post(f"/api/v1/offers/{offer.id}/accept").status_code == 200
    assert state_of(db, consult_id) == "accepted"  # asynchronous: nothing to book
    base = f"/api/v1/consults/{consult_id}/notes"
    note = doctor.post(base, {**NOTE, "follow_up_on": follow_up_on})
    assert note.status_code == 201, note.text
    assert doctor.post(f"{base}/{note.json()['id']}/sign").status_code == 200
    return nurse, doctor, consult_id


def test_follow_up_falls_due_once_and_an_outcome_closes_the_consult(
    units: Units, db: Session, settings: Settings, users: Users, login: LoginFn, clock: ManualClock
) -> None:
    """On the application's clock, pinned at midday: the follow-up date, the job's runs and
    the clinician's home page all count days from one "today"."""
    now = clock.set_midday()
    today = now.date()
    nurse, _, consult_id = answered_async_consult(
        db, settings, users, login, (today + timedelta(days=3)).isoformat()
    )
    assert state_of(db, consult_id) == "answered_async"  # the signed note answered it

    assert follow_ups_due(units, settings, now) == []  # not yet due
    later = now + timedelta(days=3, hours=1)
    assert follow_ups_due(units, settings, later) == [consult_id]
    assert follow_ups_due(units, settings, later) == []  # the state says it's done
    assert state_of(db, consult_id) == "follow_up_due"
    clinician = db.get(User, nurse.user.id)
    assert clinician is not None
    [notice] = notices(db, clinician, "follow_up_due")
    assert notice.link == f"/consults/{consult_id}"
    assert "Kawasaki" not in notice.body  # no patient text leaves by e-mail
    assert "asthma" not in notice.body

    home = nurse.get("/")
    assert f"/consults/{consult_id}" in home.text
    outcome = nurse.post(
        f"/api/v1/consults/{consult_id}/outcomes",
        {"outcome": "treated_locally", "detail": "sleeps"},
    )
    assert outcome.status_code == 201, outcome.text
    assert state_of(db, consult_id) == "closed"
    events = nurse.get(f"/api/v1/consults/{consult_id}/events").json()
    # (the job ran three days ahead on the test's clock, so compare without order)
    assert {"answered_async", "follow_up_due", "closed"} <= {e["to_state"] for e in events}


@pytest.mark.parametrize(
    ("utc_hour", "sent"),
    [(3, False), (4, True)],  # 05:00 and 06:00 in Maseru (UTC+2, no daylight saving)
)
def test_the_daily_digest_goes_out_once_a_day_after_six_in_maseru(
    units: Units, db: Session, settings: Settings, users: Users, utc_hour: int, sent: bool
) -> None:
    coordinator = users.make(Role.coordinator)
    users.make(Role.coordinator)
    morning = datetime(2026, 11, 30, utc_hour, 5, tzinfo=UTC)
    assert daily_digest(units, settings, morning) == (2 if sent else 0)
    assert daily_digest(units, settings, morning + timedelta(hours=1)) == (0 if sent else 2)
    [digest] = notices(db, coordinator, "digest")
    assert digest.subject == "Telemed daily digest, 30 Nov 2026"
    assert "waiting for a specialist now" in digest.body
    next_day = morning + timedelta(days=1, hours=1)
    assert daily_digest(units, settings, next_day) == 2
    assert len(notices(db, coordinator, "digest")) == 2


def test_a_registration_about_to_expire_is_flagged_once(
    units: Units, db: Session, settings: Settings, users: Users
) -> None:
    specialists = Specialists(db, settings, users)
    soon, later = specialists.make(), specialists.make()
    for user, days in ((soon, 20), (later, 90)):
        profile = db.get(SpecialistProfile, user.id)
        assert profile is not None
        profile.registration_expires_on = utcnow().date() + timedelta(days=days)
        db.add(profile)
    db.commit()
    assert reverification_reminders(units, settings, utcnow()) == 1
    assert reverification_reminders(units, settings, utcnow()) == 0
    [notice] = notices(db, soon, "reverification")
    assert "expires on" in notice.subject
    assert notices(db, later, "reverification") == []
    assert len(notices(db, specialists.coordinator, "reverification")) == 1


def test_the_daily_digest_is_written_in_each_coordinators_language(
    units: Units, db: Session, settings: Settings, users: Users
) -> None:
    """Counted once, read in two languages: the Sesotho-speaking coordinator's digest has no
    English line in it, the English one's has no Sesotho."""
    english = users.make(Role.coordinator)
    sesotho = users.make(Role.coordinator)
    sesotho.language = "st"
    db.add(sesotho)
    db.commit()
    morning = datetime(2026, 11, 30, 5, 0, tzinfo=UTC)  # 07:00 in Maseru
    assert daily_digest(units, settings, morning) == 2
    [in_english] = notices(db, english, "digest")
    [in_sesotho] = notices(db, sesotho, "digest")
    assert "- waiting for a specialist now: none" in in_english.body
    assert "- tse emetseng setsebi hona joale: ha ho letho" in in_sesotho.body
    assert "waiting for a specialist" not in in_sesotho.body
    assert "litsebi tse emetseng ho netefatsoa: 0" in in_sesotho.body
