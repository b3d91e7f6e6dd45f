"""Call now (issue 15, item 3): an emergency accepted for now, or an urgent one the
specialist starts now, opens its call at once; a booked session starts early when both
sides agree; a finished consult releases the rest of its slot; a reschedule outside the
specialist's availability asks to be confirmed. On the injected clock, both databases."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

import pytest
from sqlmodel import Session, col, select

from telemed.accounts.models import Role, User
from telemed.appointments.models import Appointment
from telemed.consults import service as consults
from telemed.consults.models import Consult, ConsultState
from telemed.directory.schemas import WindowIn
from telemed.notifications.models import Notification
from telemed.settings import Settings
from tests.conftest import LoginFn
from tests.directory_helpers import Specialists
from tests.helpers import ApiClient, ManualClock, Users, consult_payload
from tests.test_appointments import open_offer

# Monday 7 December 2026, 10:00 in Johannesburg and Maseru.
MONDAY = datetime(2026, 12, 7, 8, 0, tzinfo=UTC)


@pytest.fixture
def specialists(db: Session, settings: Settings, users: Users) -> Specialists:
    return Specialists(db, settings, users)


def appointment_of(db: Session, consult_id: int) -> Appointment:
    db.rollback()
    [appointment] = db.exec(
        select(Appointment)
        .where(Appointment.consult_id == consult_id)
        .execution_options(populate_existing=True)
    ).all()
    return appointment


def kinds_for(db: Session, user: User) -> list[str]:
    db.rollback()
    return [
        n.kind
        for n in db.exec(
            select(Notification)
            .where(Notification.user_id == user.id)
            .order_by(col(Notification.id))
        )
    ]


def request(nurse: ApiClient, **payload: object) -> int:
    made = nurse.post("/api/v1/consults", consult_payload(**payload))
    assert made.status_code == 201, made.text
    return int(made.json()["id"])


def accept(doctor: ApiClient, db: Session, consult_id: int, query: str = "") -> None:
    """The specialist accepts the consult's open offer (``query``: e.g. start now)."""
    accepted = doctor.post(f"/api/v1/offers/{open_offer(db, consult_id).id}/accept{query}")
    assert accepted.status_code == 200, accepted.text


def call_ticket_status(client: ApiClient, consult_id: int) -> int:
    return client.post(f"/api/v1/consults/{consult_id}/call").status_code


def test_an_emergency_accepted_for_now_opens_its_call_at_once(
    specialists: Specialists, users: Users, login: LoginFn, db: Session, clock: ManualClock
) -> None:
    clock.set(MONDAY)
    doctor = login(specialists.make())
    nurse = login(users.make(Role.clinician))
    consult_id = request(nurse, urgency="emergency")
    offer = open_offer(db, consult_id)
    # The offered slot has begun by the time it is accepted: without "now" that would
    # book the specialist's next free slot, half an hour on.
    assert offer.slot_start == MONDAY
    clock.advance(timedelta(minutes=2))
    accepted = doctor.post(f"/api/v1/offers/{offer.id}/accept")
    assert accepted.status_code == 200, accepted.text

    appointment = appointment_of(db, consult_id)
    now = MONDAY + timedelta(minutes=2)
    assert (appointment.starts_at, appointment.ends_at) == (now, now + timedelta(minutes=30))
    assert call_ticket_status(nurse, consult_id) == 200
    assert call_ticket_status(doctor, consult_id) == 200


def test_urgent_consults_start_now_on_request_routine_ones_never(
    specialists: Specialists, users: Users, login: LoginFn, db: Session, clock: ManualClock
) -> None:
    clock.set(MONDAY)
    doctor = login(specialists.make())
    nurse = login(users.make(Role.clinician))
    urgent = request(nurse, urgency="urgent")
    accept(doctor, db, urgent, "?start_now=true")
    assert appointment_of(db, urgent).starts_at == MONDAY
    assert call_ticket_status(nurse, urgent) == 200

    routine = request(nurse, urgency="routine")
    offer = open_offer(db, routine)
    refused = doctor.post(f"/api/v1/offers/{offer.id}/accept?start_now=true")
    assert refused.status_code == 422, refused.text
    assert refused.json()["error"]["fields"][0]["field"] == "start_now"
    # Without it the routine consult is booked at its offered slot, after the urgent one.
    assert doctor.post(f"/api/v1/offers/{offer.id}/accept").status_code == 200
    booked = appointment_of(db, routine)
    assert booked.starts_at == offer.slot_start
    assert booked.starts_at >= MONDAY + timedelta(minutes=30)
    assert call_ticket_status(nurse, routine) == 409  # its call opens 15 minutes before


def test_both_sides_agree_to_start_a_booked_session_early(
    specialists: Specialists, users: Users, login: LoginFn, db: Session, clock: ManualClock
) -> None:
    clock.set(MONDAY)
    doctor = login(specialists.make())
    nurse = login(users.make(Role.clinician))
    consult_id = request(nurse, urgency="routine")
    accept(doctor, db, consult_id)
    booked = appointment_of(db, consult_id)
    booked_at, sequence = booked.starts_at, booked.sequence  # the row object is refreshed
    assert booked_at - MONDAY >= timedelta(minutes=30)
    assert call_ticket_status(nurse, consult_id) == 409
    clock.advance(timedelta(minutes=3))
    now = MONDAY + timedelta(minutes=3)

    asked = nurse.post(f"/api/v1/appointments/{booked.id}/start-now")
    assert asked.status_code == 200, asked.text
    assert asked.json()["started"] is False
    assert "early_start" in kinds_for(db, doctor.user)
    assert appointment_of(db, consult_id).starts_at == booked_at  # not yet
    again = nurse.post(f"/api/v1/appointments/{booked.id}/start-now")
    assert again.status_code == 409  # one side asking twice is not an agreement
    assert call_ticket_status(nurse, consult_id) == 409

    # The specialist's page offers to agree; agreeing goes to the call.
    page = doctor.get(f"/consults/{consult_id}")
    assert "Agree and start now" in page.text
    agreed = doctor.client.post(
        f"/appointments/{booked.id}/start-now",
        data={"csrf_token": doctor.csrf},
        follow_redirects=False,
    )
    assert agreed.status_code == 303, agreed.text
    assert agreed.headers["location"] == f"/consults/{consult_id}/call"
    moved = appointment_of(db, consult_id)
    assert (moved.starts_at, moved.ends_at - moved.starts_at) == (now, timedelta(minutes=30))
    assert moved.sequence == sequence + 1
    assert call_ticket_status(nurse, consult_id) == 200
    assert call_ticket_status(doctor, consult_id) == 200
    # Once open, there is nothing left to start early.
    assert nurse.post(f"/api/v1/appointments/{booked.id}/start-now").status_code == 409


def test_a_finished_consult_releases_the_rest_of_its_slot(
    specialists: Specialists,
    users: Users,
    login: LoginFn,
    db: Session,
    clock: ManualClock,
) -> None:
    clock.set(MONDAY)
    doctor = login(specialists.make())
    nurse = login(users.make(Role.clinician))
    first = request(nurse, urgency="urgent")
    accept(doctor, db, first, "?start_now=true")
    second = request(nurse, urgency="routine")
    accept(doctor, db, second)
    held = appointment_of(db, first)
    later = appointment_of(db, second)
    onto = {"starts_at": (MONDAY + timedelta(minutes=10)).isoformat(), "reason": "sooner"}
    clash = nurse.post(f"/api/v1/appointments/{later.id}/reschedule", onto)
    assert clash.status_code == 409
    assert f"(consult #{first})" in clash.json()["error"]["message"]

    # The first consult is completed ten minutes into its slot: the rest of it is free.
    db.rollback()
    consult = db.get(Consult, first, populate_existing=True)
    assert consult is not None
    consults.transition(
        db, consult, ConsultState.completed, actor=doctor.user, reason="done", at=MONDAY
    )
    db.commit()
    moved = nurse.post(f"/api/v1/appointments/{later.id}/reschedule", onto)
    assert moved.status_code == 200, moved.text
    assert appointment_of(db, first).id == held.id  # the first's record itself is kept

    # Cancelling a consult frees its slot the same way.
    third = request(nurse, urgency="routine")
    accept(doctor, db, third)
    third_at = appointment_of(db, third)
    assert (
        nurse.post(f"/api/v1/consults/{third}/cancel", {"reason": "transferred"}).status_code == 200
    )
    onto_third = {"starts_at": third_at.starts_at.isoformat(), "reason": "that time"}
    assert nurse.post(f"/api/v1/appointments/{later.id}/reschedule", onto_third).status_code == 200


def test_a_reschedule_outside_availability_asks_for_confirmation(
    specialists: Specialists, users: Users, login: LoginFn, db: Session, clock: ManualClock
) -> None:
    clock.set(MONDAY)
    mornings = [WindowIn(weekday=d, start=time(8), end=time(13)) for d in range(7)]
    doctor = login(specialists.make(windows=mornings))
    nurse = login(users.make(Role.clinician))
    consult_id = request(nurse, urgency="routine")
    accept(doctor, db, consult_id)
    booked = appointment_of(db, consult_id)
    booked_at = booked.starts_at  # the row object is refreshed by each read
    evening = datetime(2026, 12, 7, 18, 0, tzinfo=UTC)  # 20:00 in Johannesburg

    body = {"starts_at": evening.isoformat(), "reason": "after clinic"}
    asked = nurse.post(f"/api/v1/appointments/{booked.id}/reschedule", body)
    assert asked.status_code == 409
    error = asked.json()["error"]
    assert error["fields"][0]["field"] == "outside_confirmed"
    assert "outside Dr Volunteer 1's availability" in error["message"]
    assert appointment_of(db, consult_id).starts_at == booked_at

    # The page asks, with a confirm button; confirming moves it.
    page = nurse.client.post(
        f"/appointments/{booked.id}/reschedule",
        data={
            "starts_local": "2026-12-07T20:00",
            "reason": "after clinic",
            "csrf_token": nurse.csrf,
        },
        follow_redirects=False,
    )
    assert page.status_code == 409
    assert 'id="confirm-outside"' in page.text
    assert 'name="outside_confirmed" value="1"' in page.text
    assert appointment_of(db, consult_id).starts_at == booked_at
    confirmed = nurse.client.post(
        f"/appointments/{booked.id}/reschedule",
        data={
            "starts_local": "2026-12-07T20:00",
            "reason": "after clinic",
            "outside_confirmed": "1",
            "csrf_token": nurse.csrf,
        },
        follow_redirects=False,
    )
    assert confirmed.status_code == 303, confirmed.text
    assert appointment_of(db, consult_id).starts_at == evening
    # A time inside the mornings needs no confirmation.
    inside = {"starts_at": "2026-12-08T09:00:00+02:00", "reason": "morning after all"}
    assert nurse.post(f"/api/v1/appointments/{booked.id}/reschedule", inside).status_code == 200
