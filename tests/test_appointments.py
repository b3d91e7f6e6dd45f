"""Appointments: accepting a live consult books its slot; either side reschedules or
cancels with a reason; the calendar invitation keeps its UID and bumps its SEQUENCE; a
specialist is never double-booked; every time is shown in the reader's zone."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import icalendar
import pytest
from sqlmodel import Session, col, select

from telemed.accounts.models import Role, User
from telemed.appointments.models import Appointment, AppointmentChange
from telemed.consults.models import Consult, ConsultParticipant
from telemed.db import utcnow
from telemed.demo.seed import seed_demo
from telemed.errors import ValidationFailed
from telemed.notifications.models import Notification, OutboxAttachment, OutboxMessage
from telemed.offers import service as offers
from telemed.offers.models import ConsultOffer, OfferStatus
from telemed.offers.policy import OfferPolicy
from telemed.settings import Settings
from telemed.timefmt import parse_local
from telemed.uow import Units
from tests.conftest import LoginFn
from tests.directory_helpers import Specialists, offers_of
from tests.helpers import ApiClient, Users, consult_payload

MASERU = ZoneInfo("Africa/Maseru")


@pytest.fixture
def specialists(db: Session, settings: Settings, users: Users) -> Specialists:
    return Specialists(db, settings, users)


def open_offer(db: Session, consult_id: int) -> ConsultOffer:
    [offer] = [o for o in offers_of(db, consult_id) if o.status == OfferStatus.open]
    return offer


def state_of(db: Session, consult_id: int) -> str:
    db.rollback()
    consult = db.get(Consult, consult_id, populate_existing=True)
    assert consult is not None
    return str(consult.state)


def appointments_of(db: Session, consult_id: int) -> list[Appointment]:
    db.rollback()
    return list(
        db.exec(
            select(Appointment)
            .where(Appointment.consult_id == consult_id)
            .order_by(col(Appointment.id))
            .execution_options(populate_existing=True)
        )
    )


def request_and_accept(nurse: ApiClient, doctor: ApiClient, db: Session, **payload: object) -> int:
    consult_id = int(nurse.post("/api/v1/consults", consult_payload(**payload)).json()["id"])
    offer = open_offer(db, consult_id)
    assert offer.specialist_id == doctor.user.id
    accepted = doctor.post(f"/api/v1/offers/{offer.id}/accept")
    assert accepted.status_code == 200, accepted.text
    return consult_id


def ics_of(client: ApiClient, consult_id: int) -> icalendar.Calendar:
    response = client.get(f"/consults/{consult_id}/appointment.ics")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/calendar")
    assert "attachment" in response.headers["content-disposition"]
    return icalendar.Calendar.from_ical(response.content)


def event_of(calendar: icalendar.Calendar) -> icalendar.Event:
    [event] = calendar.walk("VEVENT")
    return event


def notices(db: Session, user: User | ApiClient, kind: str) -> list[Notification]:
    user_id = user.user.id if isinstance(user, ApiClient) else user.id
    db.rollback()
    return list(
        db.exec(
            select(Notification)
            .where(Notification.user_id == user_id, Notification.kind == kind)
            .order_by(col(Notification.id))
        )
    )


def invitations_sent(db: Session, user: User | ApiClient) -> list[icalendar.Calendar]:
    """The calendar invitations attached to the e-mails queued for ``user``."""
    user_id = user.user.id if isinstance(user, ApiClient) else user.id
    db.rollback()
    rows = db.exec(
        select(OutboxAttachment)
        .join(OutboxMessage, col(OutboxMessage.id) == col(OutboxAttachment.message_id))
        .where(OutboxMessage.user_id == user_id)
        .order_by(col(OutboxAttachment.id))
    )
    found = []
    for attachment in rows:
        assert attachment.content_type.startswith("text/calendar")
        found.append(icalendar.Calendar.from_ical(attachment.data))
    return found


def form(client: ApiClient, url: str, **fields: object) -> object:
    return client.client.post(
        url, data={**fields, "csrf_token": client.csrf}, follow_redirects=False
    )


def test_accepting_a_live_offer_books_its_slot_an_asynchronous_one_stays_accepted(
    specialists: Specialists, db: Session, users: Users, login: LoginFn
) -> None:
    mosotho = specialists.make()
    mosotho.language = "st"  # reads Sesotho: their invitation is in Sesotho, the nurse's not
    db.add(mosotho)
    db.commit()
    doctor = login(mosotho)
    nurse = login(users.make(Role.clinician))
    consult_id = int(nurse.post("/api/v1/consults", consult_payload(mode="video")).json()["id"])
    offer = open_offer(db, consult_id)
    assert doctor.post(f"/api/v1/offers/{offer.id}/accept").status_code == 200

    assert state_of(db, consult_id) == "scheduled"
    [appointment] = appointments_of(db, consult_id)
    assert (appointment.starts_at, appointment.ends_at) == (offer.slot_start, offer.slot_end)
    assert (appointment.status, appointment.sequence) == ("scheduled", 0)
    body = nurse.get(f"/api/v1/consults/{consult_id}/appointment").json()
    assert body["uid"] == appointment.uid
    assert body["specialist_name"] == doctor.user.full_name
    assert [c["action"] for c in body["changes"]] == ["booked"]
    events = nurse.get(f"/api/v1/consults/{consult_id}/events").json()
    assert events[-1]["to_state"] == "scheduled"
    assert events[-1]["reason"] == f"session booked with {doctor.user.full_name}"

    # Both sides are told, each with the invitation (REQUEST, SEQUENCE 0).
    for side in (nurse, doctor):
        [notice] = notices(db, side, "appointment_booked")
        assert notice.link == f"/consults/{consult_id}"
        assert "Fever" not in notice.body  # no patient text leaves by e-mail
        [calendar] = invitations_sent(db, side)
        assert str(calendar["METHOD"]) == "REQUEST"
        assert str(event_of(calendar)["UID"]) == appointment.uid
        summary = str(event_of(calendar)["SUMMARY"])
        assert summary.startswith("Puisano ea Telemed" if side is doctor else "Telemed consult")
    # The clinician reads Maseru time, zone named; the specialist's own too.
    page = nurse.client.get(f"/consults/{consult_id}").text
    maseru = appointment.starts_at.astimezone(MASERU)
    assert f"{maseru:%a %d %b %Y %H:%M} SAST" in page
    assert "your time, Africa/Maseru" in page
    assert doctor.user.full_name in page
    schedule = doctor.client.get("/schedule").text
    assert f"/consults/{consult_id}/appointment.ics" in schedule
    assert [i["consult_id"] for i in nurse.get("/api/v1/appointments").json()] == [consult_id]
    assert [i["consult_id"] for i in doctor.get("/api/v1/appointments").json()] == [consult_id]
    assert f"consult {consult_id}" in nurse.client.get("/schedule").text

    # An asynchronous consult has no session to book.
    later = int(nurse.post("/api/v1/consults", consult_payload(mode="asynchronous")).json()["id"])
    offer = open_offer(db, later)
    assert doctor.post(f"/api/v1/offers/{offer.id}/accept").status_code == 200
    assert state_of(db, later) == "accepted"
    assert appointments_of(db, later) == []
    assert nurse.get(f"/api/v1/consults/{later}/appointment").status_code == 404
    assert 'id="appointment"' not in nurse.client.get(f"/consults/{later}").text


def test_either_side_reschedules_the_uid_stays_and_the_sequence_goes_up(
    specialists: Specialists, db: Session, users: Users, login: LoginFn
) -> None:
    doctor = login(specialists.make())
    nurse = login(users.make(Role.clinician))
    consult_id = request_and_accept(nurse, doctor, db)
    [booked] = appointments_of(db, consult_id)
    first = (utcnow() + timedelta(days=2)).replace(minute=0, second=0, microsecond=0)

    moved = doctor.post(
        f"/api/v1/appointments/{booked.id}/reschedule",
        {
            "starts_at": first.astimezone(ZoneInfo("Africa/Johannesburg")).isoformat(),
            "reason": "ward round runs late",
        },
    )
    assert moved.status_code == 200, moved.text
    assert moved.json()["sequence"] == 1
    event = event_of(ics_of(doctor, consult_id))
    assert str(event["UID"]) == booked.uid
    assert int(event["SEQUENCE"]) == 1
    assert event.decoded("DTSTART") == first
    assert event.decoded("DTEND") - event.decoded("DTSTART") == booked.ends_at - booked.starts_at

    # The clinician moves it through the page, typing Maseru time.
    local = (first + timedelta(hours=3)).astimezone(MASERU)
    response = form(
        nurse,
        f"/appointments/{booked.id}/reschedule",
        starts_local=local.strftime("%Y-%m-%dT%H:%M"),
        reason="theatre list",
        sequence=1,
    )
    assert response.status_code == 303  # type: ignore[attr-defined]
    [now] = appointments_of(db, consult_id)
    assert (now.uid, now.sequence, now.status) == (booked.uid, 2, "scheduled")
    assert now.starts_at == first + timedelta(hours=3)
    assert now.ends_at - now.starts_at == booked.ends_at - booked.starts_at
    assert state_of(db, consult_id) == "scheduled"
    calendar = ics_of(nurse, consult_id)
    assert str(calendar["METHOD"]) == "REQUEST"
    assert int(event_of(calendar)["SEQUENCE"]) == 2
    assert "Fever" not in calendar.to_ical().decode()

    db.rollback()
    changes = db.exec(
        select(AppointmentChange)
        .where(AppointmentChange.appointment_id == booked.id)
        .order_by(col(AppointmentChange.id))
    ).all()
    assert [(c.action, c.sequence, c.actor_id, c.reason) for c in changes] == [
        ("booked", 0, doctor.user.id, ""),
        ("rescheduled", 1, doctor.user.id, "ward round runs late"),
        ("rescheduled", 2, nurse.user.id, "theatre list"),
    ]
    for side in (nurse, doctor):
        sent = notices(db, side, "appointment_rescheduled")
        assert len(sent) == 2
        assert [int(event_of(c)["SEQUENCE"]) for c in invitations_sent(db, side)] == [0, 1, 2]
    # A stale form (sequence 1 seen, now 2) is refused rather than applied blindly.
    stale = doctor.post(
        f"/api/v1/appointments/{booked.id}/reschedule",
        {"starts_at": (first + timedelta(hours=5)).isoformat(), "reason": "x", "sequence": 1},
    )
    assert stale.status_code == 409
    assert "changed meanwhile" in stale.json()["error"]["message"]


def test_a_specialist_cancelling_gives_the_consult_back_a_clinician_cancels_it(
    specialists: Specialists, db: Session, users: Users, login: LoginFn
) -> None:
    first_user, second_user = specialists.make(), specialists.make()
    nurse = login(users.make(Role.clinician))
    consult_id = int(nurse.post("/api/v1/consults", consult_payload()).json()["id"])
    offer = open_offer(db, consult_id)
    first, second = (
        (first_user, second_user)
        if offer.specialist_id == first_user.id
        else (second_user, first_user)
    )
    doctor = login(first)
    assert doctor.post(f"/api/v1/offers/{offer.id}/accept").status_code == 200
    [booked] = appointments_of(db, consult_id)
    assert (
        "offered to another specialist"
        in doctor.client.get(f"/appointments/{booked.id}/change").text
    )

    empty = form(doctor, f"/appointments/{booked.id}/cancel", cancel_reason=" ", sequence=0)
    assert empty.status_code == 422  # type: ignore[attr-defined]
    assert "say why" in empty.text  # type: ignore[attr-defined]
    cancelled = form(
        doctor, f"/appointments/{booked.id}/cancel", cancel_reason="family emergency", sequence=0
    )
    assert cancelled.status_code == 303  # type: ignore[attr-defined]
    [gone] = appointments_of(db, consult_id)
    assert (gone.status, gone.sequence) == ("cancelled", 1)
    calendar = ics_of(doctor, consult_id)  # the cancelled event, for their calendar
    assert str(calendar["METHOD"]) == "CANCEL"
    assert str(event_of(calendar)["STATUS"]) == "CANCELLED"
    assert (str(event_of(calendar)["UID"]), int(event_of(calendar)["SEQUENCE"])) == (gone.uid, 1)
    for side in (nurse, doctor):
        [notice] = notices(db, side, "appointment_cancelled")
        assert "offered to another specialist" in notice.body
        assert str(invitations_sent(db, side)[-1]["METHOD"]) == "CANCEL"
    # Back to the queue, offered to the other specialist at once; the first keeps reading
    # access but is no longer assigned (no call, no note) and is not offered it again.
    assert state_of(db, consult_id) == "offered"
    made = offers_of(db, consult_id)
    assert [(o.specialist_id, o.status) for o in made] == [
        (first.id, OfferStatus.withdrawn),
        (second.id, OfferStatus.open),
    ]
    relations = db.exec(
        select(ConsultParticipant.relation).where(
            ConsultParticipant.consult_id == consult_id, ConsultParticipant.user_id == first.id
        )
    ).all()
    assert list(relations) == ["offered"]
    assert doctor.get(f"/api/v1/consults/{consult_id}").status_code == 200
    events = nurse.get(f"/api/v1/consults/{consult_id}/events").json()
    assert events[-2]["to_state"] == "requested"
    assert events[-2]["reason"].startswith(f"appointment cancelled by {first.full_name}")

    # The second accepts (the first's acceptance no longer stands in the way) and is booked.
    other = login(second)
    assert other.post(f"/api/v1/offers/{made[1].id}/accept").status_code == 200
    assert state_of(db, consult_id) == "scheduled"
    current = appointments_of(db, consult_id)[-1]
    assert current.uid != gone.uid
    assert nurse.get(f"/api/v1/consults/{consult_id}/appointment").json()["id"] == current.id
    assert doctor.get(f"/api/v1/consults/{consult_id}/appointment").status_code == 404

    # The clinician's page warns; cancelling cancels the consult request.
    assert (
        "This cancels the consult request"
        in nurse.client.get(f"/appointments/{current.id}/change").text
    )
    done = nurse.post(f"/api/v1/appointments/{current.id}/cancel", {"reason": "patient died"})
    assert done.status_code == 200, done.text
    assert (done.json()["status"], done.json()["sequence"]) == ("cancelled", 1)
    assert state_of(db, consult_id) == "cancelled"
    assert str(ics_of(other, consult_id)["METHOD"]) == "CANCEL"
    [notice] = notices(db, other, "appointment_cancelled")
    assert "The consult request is cancelled." in notice.body

    again = nurse.post(
        f"/api/v1/appointments/{current.id}/reschedule",
        {"starts_at": (utcnow() + timedelta(days=1)).isoformat(), "reason": "try again"},
    )
    assert again.status_code == 409
    assert again.json()["error"]["message"] == "a cancelled appointment cannot be rescheduled"
    twice = nurse.post(f"/api/v1/appointments/{current.id}/cancel", {"reason": "again"})
    assert twice.status_code == 409
    assert [a.sequence for a in appointments_of(db, consult_id)] == [1, 1]


def test_a_specialist_is_never_double_booked(
    specialists: Specialists, db: Session, users: Users, login: LoginFn
) -> None:
    doctor = login(specialists.make())
    nurse = login(users.make(Role.clinician))
    first = request_and_accept(nurse, doctor, db)
    [a] = appointments_of(db, first)
    second = int(nurse.post("/api/v1/consults", consult_payload()).json()["id"])
    offer = open_offer(db, second)
    assert offer.slot_start is not None
    assert offer.slot_start != a.starts_at  # a booked slot is not offered again

    # The first session moves onto the second's offered slot: accepting it is refused.
    # (Each move confirms a time outside the availability window: this test is about
    # double booking, and slot + 10 min can pass the window's end at some hours.)
    clash = offer.slot_start + timedelta(minutes=10)
    moved = doctor.post(
        f"/api/v1/appointments/{a.id}/reschedule",
        {"starts_at": clash.isoformat(), "reason": "swap", "outside_confirmed": True},
    )
    assert moved.status_code == 200, moved.text
    refused = doctor.post(f"/api/v1/offers/{offer.id}/accept")
    assert refused.status_code == 409, refused.text
    assert f"(consult #{first})" in refused.json()["error"]["message"]
    assert state_of(db, second) == "offered"
    assert open_offer(db, second).id == offer.id
    assert appointments_of(db, second) == []

    later = offer.slot_start + timedelta(hours=2)
    assert (
        doctor.post(
            f"/api/v1/appointments/{a.id}/reschedule",
            {"starts_at": later.isoformat(), "reason": "make room", "outside_confirmed": True},
        ).status_code
        == 200
    )
    assert doctor.post(f"/api/v1/offers/{offer.id}/accept").status_code == 200
    [b] = appointments_of(db, second)

    # Moving the second onto the first: 409 naming the clash, nothing changed, nobody told.
    onto = nurse.post(
        f"/api/v1/appointments/{b.id}/reschedule",
        {
            "starts_at": (later + timedelta(minutes=15)).isoformat(),
            "reason": "suits us",
            "outside_confirmed": True,
        },
    )
    assert onto.status_code == 409
    message = onto.json()["error"]["message"]
    assert f"{doctor.user.full_name} already has an appointment" in message
    assert f"(consult #{first})" in message
    assert "SAST" in message  # in the clinician's own zone
    [unchanged] = appointments_of(db, second)
    assert (unchanged.starts_at, unchanged.sequence) == (b.starts_at, 0)
    told = [n.dedupe_key for n in notices(db, nurse, "appointment_rescheduled")]
    assert not [key for key in told if key.startswith(f"appointment:{b.id}:")]

    # Calls open around the appointment: 2 hours ahead, not yet; 6 minutes ahead, yes.
    closed = nurse.post(f"/api/v1/consults/{first}/call")
    assert closed.status_code == 409
    assert "the call opens at" in closed.json()["error"]["message"]
    # (the second consult's session may be within the hour: move it out of the way)
    away = (later + timedelta(hours=4)).isoformat()
    moved_away = nurse.post(
        f"/api/v1/appointments/{b.id}/reschedule",
        {"starts_at": away, "reason": "clinic", "outside_confirmed": True},
    )
    assert moved_away.status_code == 200, moved_away.text
    soon = (utcnow() + timedelta(minutes=6)).isoformat()
    assert (
        nurse.post(
            f"/api/v1/appointments/{a.id}/reschedule",
            {"starts_at": soon, "reason": "now", "outside_confirmed": True},
        ).status_code
        == 200
    )
    assert nurse.post(f"/api/v1/consults/{first}/call").status_code == 200


def test_bad_input_gets_a_clear_error_and_outsiders_see_nothing(
    specialists: Specialists, db: Session, users: Users, login: LoginFn
) -> None:
    doctor = login(specialists.make())
    nurse = login(users.make(Role.clinician))
    consult_id = request_and_accept(nurse, doctor, db)
    [a] = appointments_of(db, consult_id)
    url = f"/api/v1/appointments/{a.id}/reschedule"
    tomorrow = utcnow() + timedelta(days=1)

    naive = nurse.post(url, {"starts_at": "2030-01-10T10:00:00", "reason": "x"})
    assert naive.status_code == 422
    assert "UTC offset" in naive.json()["error"]["message"]
    past = nurse.post(
        url, {"starts_at": (utcnow() + timedelta(minutes=2)).isoformat(), "reason": "x"}
    )
    assert past.status_code == 422
    assert past.json()["error"]["message"] == "the new time must be at least 5 minutes from now"
    for reason in ("", "   "):
        empty = nurse.post(url, {"starts_at": tomorrow.isoformat(), "reason": reason})
        assert empty.status_code == 422
        assert empty.json()["error"]["fields"][0]["field"] == "reason"
    page = form(nurse, f"/appointments/{a.id}/reschedule", starts_local="", reason="x")
    assert page.status_code == 422  # type: ignore[attr-defined]
    assert "choose the new date and time" in page.text  # type: ignore[attr-defined]
    assert appointments_of(db, consult_id)[0].sequence == 0

    for outsider in (
        login(users.make(Role.clinician, facility="BEREA")),
        login(specialists.make()),
    ):
        assert outsider.get(f"/api/v1/consults/{consult_id}/appointment").status_code == 404
        assert outsider.client.get(f"/consults/{consult_id}/appointment.ics").status_code == 404
        moved = outsider.post(url, {"starts_at": tomorrow.isoformat(), "reason": "mine"})
        assert moved.status_code == 404
        cancel = outsider.post(f"/api/v1/appointments/{a.id}/cancel", {"reason": "mine"})
        assert cancel.status_code == 404
    coordinator = login(specialists.coordinator)
    assert coordinator.get(f"/api/v1/consults/{consult_id}/appointment").status_code == 200
    refused = coordinator.post(url, {"starts_at": tomorrow.isoformat(), "reason": "why not"})
    assert refused.status_code == 403
    assert appointments_of(db, consult_id)[0].sequence == 0


def next_clock_change(zone: ZoneInfo, after: datetime) -> date:
    """The first day after ``after`` on which ``zone``'s UTC offset changes."""
    day = after.date()
    for _ in range(400):
        day += timedelta(days=1)
        before = datetime.combine(day - timedelta(days=1), time(12), zone).utcoffset()
        if datetime.combine(day, time(12), zone).utcoffset() != before:
            return day
    raise AssertionError("no clock change within a year")


def test_a_reschedule_across_londons_clock_change_shows_each_side_its_own_time(
    specialists: Specialists, db: Session, users: Users, login: LoginFn
) -> None:
    london = ZoneInfo("Europe/London")
    doctor = login(specialists.make(time_zone="Europe/London"))
    nurse = login(users.make(Role.clinician))
    consult_id = request_and_accept(nurse, doctor, db)
    [a] = appointments_of(db, consult_id)
    change = next_clock_change(london, utcnow() + timedelta(days=2))
    before = datetime.combine(change - timedelta(days=1), time(10), london)
    after = datetime.combine(change + timedelta(days=1), time(10), london)
    assert before.utcoffset() != after.utcoffset()

    moved = doctor.post(
        f"/api/v1/appointments/{a.id}/reschedule",
        {"starts_at": before.isoformat(), "reason": "clinic day"},
    )
    assert moved.status_code == 200, moved.text
    # Across the change, typed as 10:00 on the specialist's own clock.
    response = form(
        doctor,
        f"/appointments/{a.id}/reschedule",
        starts_local=f"{after:%Y-%m-%d}T10:00",
        reason="after the clocks change",
        sequence=1,
    )
    assert response.status_code == 303  # type: ignore[attr-defined]
    [now] = appointments_of(db, consult_id)
    assert now.starts_at == after.astimezone(UTC)
    assert now.starts_at - before.astimezone(UTC) == timedelta(days=2) - (
        after.utcoffset() - before.utcoffset()  # type: ignore[operator]
    )
    mine = doctor.client.get(f"/consults/{consult_id}").text
    assert f"{after:%a %d %b %Y} 10:00 {after.tzname()}" in mine
    assert "your time, Europe/London" in mine
    theirs = nurse.client.get(f"/consults/{consult_id}").text
    maseru = now.starts_at.astimezone(MASERU)
    assert f"{maseru:%a %d %b %Y %H:%M} SAST" in theirs
    assert f"For {doctor.user.full_name}: {after:%a %d %b %Y} 10:00 {after.tzname()}" in theirs
    latest = notices(db, doctor, "appointment_rescheduled")[-1]
    assert f"10:00 {after.tzname()}" in latest.subject
    assert event_of(ics_of(doctor, consult_id)).decoded("DTSTART") == after.astimezone(UTC)


def test_a_time_the_clocks_skip_is_refused_and_a_repeated_one_is_its_first() -> None:
    with pytest.raises(ValidationFailed, match="does not exist in Europe/London"):
        parse_local("2027-03-28T01:30", "Europe/London")
    assert parse_local("2027-10-31T01:30", "Europe/London") == datetime(
        2027, 10, 31, 0, 30, tzinfo=UTC
    )
    assert parse_local("2027-03-28 12:00", "Africa/Maseru") == datetime(
        2027, 3, 28, 10, 0, tzinfo=UTC
    )
    with pytest.raises(ValidationFailed, match="YYYY-MM-DD"):
        parse_local("tomorrow", "Africa/Maseru")


def test_hand_assignment_books_the_next_free_slot_or_a_time_typed_later(
    specialists: Specialists,
    db: Session,
    units: Units,
    users: Users,
    login: LoginFn,
    policy: OfferPolicy,
) -> None:
    nurse = login(users.make(Role.clinician))
    ids = [
        int(nurse.post("/api/v1/consults", consult_payload(urgency="emergency")).json()["id"])
        for _ in range(2)
    ]
    db.rollback()
    offers.process_due_offers(units, utcnow() + timedelta(minutes=6), policy)
    assert [state_of(db, i) for i in ids] == ["escalated", "escalated"]
    available = specialists.make()
    never = specialists.make(windows=[])
    coordinator = login(specialists.coordinator)

    start = utcnow()
    assigned = coordinator.post(
        f"/api/v1/consults/{ids[0]}/assign", {"specialist_id": available.id}
    )
    assert assigned.status_code == 200, assigned.text
    assert state_of(db, ids[0]) == "scheduled"
    [a] = appointments_of(db, ids[0])
    assert a.specialist_id == available.id
    assert start + timedelta(minutes=5) <= a.starts_at <= start + timedelta(hours=1)
    assert assigned.json()["slot_start"] is not None

    # No free time at all: accepted, said so on the consult; the clinician books a time.
    assert (
        coordinator.post(
            f"/api/v1/consults/{ids[1]}/assign", {"specialist_id": never.id}
        ).status_code
        == 200
    )
    assert state_of(db, ids[1]) == "accepted"
    events = nurse.get(f"/api/v1/consults/{ids[1]}/events").json()
    # (ordered by time: the clock driven ahead above puts the escalation "later")
    assert any("has no free time" in e["reason"] for e in events)
    assert f"/consults/{ids[1]}/appointment/book" in nurse.client.get(f"/consults/{ids[1]}").text
    local = (
        (utcnow() + timedelta(days=1))
        .astimezone(MASERU)
        .replace(hour=9, minute=0, second=0, microsecond=0)
    )
    booked = form(
        nurse,
        f"/consults/{ids[1]}/appointment/book",
        starts_local=local.strftime("%Y-%m-%dT%H:%M"),
    )
    assert booked.status_code == 303  # type: ignore[attr-defined]
    assert state_of(db, ids[1]) == "scheduled"
    [b] = appointments_of(db, ids[1])
    assert (b.specialist_id, b.starts_at) == (never.id, local.astimezone(UTC))
    assert b.ends_at - b.starts_at == timedelta(minutes=30)
    assert len(notices(db, never, "appointment_booked")) == 1
    again = nurse.post(
        f"/api/v1/consults/{ids[1]}/appointment",
        {"starts_at": (utcnow() + timedelta(days=2)).isoformat()},
    )
    assert again.status_code == 409


def test_the_demo_has_a_booked_session_on_both_sides(
    db: Session, settings: Settings, login: LoginFn
) -> None:
    assert seed_demo(db, settings)
    db.commit()  # the test owns the unit of work, as the command line does
    # the one booked now (the demo's history holds past, completed ones)
    [appointment] = db.exec(select(Appointment).where(Appointment.status == "scheduled")).all()
    consult = db.get(Consult, appointment.consult_id)
    assert consult is not None
    assert (consult.state, appointment.status) == ("scheduled", "scheduled")
    for user_id in (appointment.specialist_id, consult.created_by_id):
        [notice] = db.exec(
            select(Notification).where(
                Notification.user_id == user_id, Notification.kind == "appointment_booked"
            )
        ).all()
        assert notice.link == f"/consults/{consult.id}"


def test_submitting_a_booked_consult_again_is_refused_and_keeps_the_booking(
    specialists: Specialists, db: Session, users: Users, login: LoginFn
) -> None:
    """Found by the authorization matrix: "submit" on a scheduled consult sent it back to
    ``requested``, dropping the booking and offering it anew. Only a draft is submitted."""
    doctor = login(specialists.make())
    nurse = login(users.make(Role.clinician))
    consult_id = request_and_accept(nurse, doctor, db)
    [booked] = appointments_of(db, consult_id)
    assert state_of(db, consult_id) == "scheduled"
    for url in (f"/api/v1/consults/{consult_id}/submit", f"/consults/{consult_id}/submit"):
        again = nurse.post(url)
        assert again.status_code == 409, again.text
    assert (
        "only a draft is submitted"
        in nurse.post(f"/api/v1/consults/{consult_id}/submit").json()["error"]["message"]
    )
    assert state_of(db, consult_id) == "scheduled"
    [still] = appointments_of(db, consult_id)
    assert (still.id, still.status, still.sequence) == (booked.id, booked.status, booked.sequence)
