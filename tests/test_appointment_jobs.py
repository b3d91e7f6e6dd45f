"""Reminders and no-shows on a controllable clock: the day-before and 15-minute reminders
go to both sides once per appointment version, and a session nobody joins becomes a
no-show that both sides and the coordinators hear about."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine
from sqlmodel import Session, col, select

from signaling.events import SessionEvent
from telemed.accounts.models import Role, User
from telemed.appointments import jobs
from telemed.appointments.models import Appointment, AppointmentChange, AppointmentStatus
from telemed.audit.models import AuditAction, AuditEntry
from telemed.consults.models import Consult
from telemed.db import pk, utcnow
from telemed.notifications.models import Notification
from telemed.offers.models import ConsultOffer
from telemed.sessions import service as call_service
from telemed.sessions.jobs import mark_no_shows
from telemed.sessions.models import CallEventKind, CallSession, CallSessionEvent
from telemed.settings import Settings
from telemed.uow import Units
from tests.conftest import LoginFn
from tests.directory_helpers import Specialists
from tests.helpers import ApiClient, Users, consult_payload


class Booked:
    def __init__(self, db: Session, nurse: ApiClient, doctor: ApiClient, consult_id: int) -> None:
        self.db, self.nurse, self.doctor, self.consult_id = db, nurse, doctor, consult_id

    @property
    def appointment(self) -> Appointment:
        """The consult's latest appointment."""
        self.db.rollback()
        found = self.db.exec(
            select(Appointment)
            .where(Appointment.consult_id == self.consult_id)
            .order_by(col(Appointment.id).desc())
        ).first()
        assert found is not None
        return found

    @property
    def state(self) -> str:
        self.db.rollback()
        consult = self.db.get(Consult, self.consult_id)
        assert consult is not None
        return str(consult.state)

    def move_to(self, starts_at: datetime) -> None:
        moved = self.doctor.post(
            f"/api/v1/appointments/{self.appointment.id}/reschedule",
            # A time the jobs need, wherever the specialist's hours are: confirmed as such.
            {
                "starts_at": starts_at.isoformat(),
                "reason": "clinic hours",
                "outside_confirmed": True,
            },
        )
        assert moved.status_code == 200, moved.text
        self.db.rollback()  # the jobs below read a fresh snapshot, as each job run does

    def changes(self) -> list[tuple[str, int | None, str]]:
        """The latest appointment's history: (action, actor id, reason), oldest first."""
        appointment_id = self.appointment.id
        return [
            (str(c.action), c.actor_id, c.reason)
            for c in self.db.exec(
                select(AppointmentChange)
                .where(AppointmentChange.appointment_id == appointment_id)
                .order_by(col(AppointmentChange.id))
            )
        ]

    def audited(self) -> list[tuple[str, int | None, str]]:
        """The audit rows of writes to the latest appointment: (action, actor id, detail).
        (Reads of a consult's appointment are audited on the consult's id.)"""
        appointment_id = self.appointment.id
        return [
            (str(e.action), e.actor_id, e.detail)
            for e in self.db.exec(
                select(AuditEntry)
                .where(
                    AuditEntry.object_type == "appointment",
                    AuditEntry.object_id == str(appointment_id),
                    AuditEntry.action != AuditAction.read,
                )
                .order_by(col(AuditEntry.id))
            )
        ]

    def notices(self, user: User | ApiClient, kind: str) -> list[Notification]:
        user_id = user.user.id if isinstance(user, ApiClient) else user.id
        self.db.rollback()
        return list(
            self.db.exec(
                select(Notification)
                .where(Notification.user_id == user_id, Notification.kind == kind)
                .order_by(col(Notification.id))
            )
        )


def book(
    db: Session,
    settings: Settings,
    users: Users,
    login: LoginFn,
    starts_in: timedelta | None = None,
) -> Booked:
    """A video consult accepted by a Johannesburg specialist: an appointment is booked
    (and moved to start ``starts_in`` from now, on a whole minute, if given)."""
    specialist = Specialists(db, settings, users).make()
    nurse = login(users.make(Role.clinician))
    consult_id = int(nurse.post("/api/v1/consults", consult_payload(mode="video")).json()["id"])
    db.rollback()
    [offer] = db.exec(select(ConsultOffer).where(ConsultOffer.consult_id == consult_id)).all()
    doctor = login(specialist)
    assert doctor.post(f"/api/v1/offers/{offer.id}/accept").status_code == 200
    booked = Booked(db, nurse, doctor, consult_id)
    assert booked.state == "scheduled"
    if starts_in is not None:
        booked.move_to(whole_minute(utcnow() + starts_in))
    return booked


def in_the_room(booked: Booked, at: datetime, *sides: ApiClient) -> None:
    """The signalling hub's record of ``sides`` joining the consult's call at ``at``."""
    db = booked.db
    call = CallSession(consult_id=booked.consult_id, room="test", started_at=at)
    db.add(call)
    db.flush()
    for side in sides:
        db.add(
            CallSessionEvent(
                call_session_id=call.id or 0,
                consult_id=booked.consult_id,
                kind=CallEventKind.joined,
                user_id=side.user.id,
                role=str(side.user.role),
                at=at,
            )
        )
    db.commit()


def whole_minute(at: datetime) -> datetime:
    return at.replace(second=0, microsecond=0)


def test_reminders_go_out_the_day_before_and_15_minutes_before_once_each(
    units: Units, db: Session, settings: Settings, users: Users, login: LoginFn
) -> None:
    booked = book(db, settings, users, login, starts_in=timedelta(hours=30))
    start = booked.appointment.starts_at
    appointment = booked.appointment
    both = (booked.nurse, booked.doctor)

    assert jobs.send_reminders(units, settings, start - timedelta(hours=25)) == 0  # too early
    day_before = start - timedelta(hours=23, minutes=59)
    assert jobs.send_reminders(units, settings, day_before) == 2
    assert jobs.send_reminders(units, settings, day_before + timedelta(minutes=1)) == 0
    for side in both:
        [notice] = booked.notices(side, "reminder_24h")
        assert notice.link == f"/consults/{booked.consult_id}/call"
    # The nurse reads Maseru time (UTC+2), the Johannesburg specialist too (SAST, UTC+2).
    local = (start + timedelta(hours=2)).strftime("%H:%M")
    assert local in booked.notices(booked.nurse, "reminder_24h")[0].subject

    assert jobs.send_reminders(units, settings, start - timedelta(minutes=20)) == 0
    assert jobs.send_reminders(units, settings, start - timedelta(minutes=14)) == 2
    assert jobs.send_reminders(units, settings, start - timedelta(minutes=5)) == 0
    assert jobs.send_reminders(units, settings, start + timedelta(minutes=1)) == 0  # started
    for side in both:
        assert len(booked.notices(side, "reminder_15m")) == 1
    assert booked.appointment.sequence == appointment.sequence


def test_a_moved_appointment_is_reminded_again_but_a_late_booking_skips_the_day_before(
    units: Units, db: Session, settings: Settings, users: Users, login: LoginFn
) -> None:
    booked = book(db, settings, users, login, starts_in=timedelta(hours=30))
    first = booked.appointment.starts_at
    assert jobs.send_reminders(units, settings, first - timedelta(hours=23)) == 2
    # Moved two hours later, now less than 24 hours ahead: the change notice said it all.
    booked.move_to(first + timedelta(hours=2))
    assert jobs.send_reminders(units, settings, utcnow() + timedelta(minutes=1)) == 0
    moved = booked.appointment
    assert jobs.send_reminders(units, settings, moved.starts_at - timedelta(minutes=10)) == 2
    assert len(booked.notices(booked.doctor, "reminder_24h")) == 1


def test_no_reminder_for_a_consult_already_closed(
    units: Units, engine: Engine, db: Session, settings: Settings, users: Users, login: LoginFn
) -> None:
    """Ended early in a call and closed by its outcome: the slot tomorrow is still booked,
    but nobody is reminded of a session that will not be (issue 15)."""
    booked = book(db, settings, users, login, starts_in=timedelta(hours=30))
    start = booked.appointment.starts_at
    room = call_service.room_of(booked.consult_id)
    for side in (booked.nurse, booked.doctor):  # as the signalling hub reports them
        call_service.record_event(
            engine,
            SessionEvent(
                kind="joined",
                room=room,
                participant=call_service.participant_of(pk(side.user)),
                role=str(side.user.role),
                session=f"s-{side.user.id}",
                at=utcnow(),
                node="test",
            ),
        )
    assert booked.state == "in_session"
    ended = booked.doctor.client.post(
        f"/consults/{booked.consult_id}/call/end",
        data={"csrf_token": booked.doctor.csrf},
        follow_redirects=False,
    )
    assert ended.status_code == 303, ended.text
    recorded = booked.nurse.post(
        f"/api/v1/consults/{booked.consult_id}/outcomes", {"outcome": "treated_locally"}
    )
    assert recorded.status_code == 201, recorded.text
    assert booked.state == "closed"
    assert booked.appointment.status == AppointmentStatus.scheduled  # the row as it was
    assert jobs.send_reminders(units, settings, start - timedelta(hours=23)) == 0
    assert jobs.send_reminders(units, settings, start - timedelta(minutes=10)) == 0
    for side in (booked.nurse, booked.doctor):
        assert booked.notices(side, "reminder_24h") == []
        assert booked.notices(side, "reminder_15m") == []


def test_nobody_joining_makes_a_no_show_once(
    units: Units, db: Session, settings: Settings, users: Users, login: LoginFn
) -> None:
    booked = book(db, settings, users, login, starts_in=timedelta(hours=2))
    start = booked.appointment.starts_at
    coordinator = users.make(Role.coordinator)

    assert mark_no_shows(units, settings, start + timedelta(minutes=14)) == []
    assert booked.state == "scheduled"
    appointment_id = booked.appointment.id
    assert mark_no_shows(units, settings, start + timedelta(minutes=16)) == [appointment_id]
    assert mark_no_shows(units, settings, start + timedelta(minutes=17)) == []
    assert booked.state == "no_show"
    assert booked.appointment.status == AppointmentStatus.no_show
    for user in (booked.nurse, booked.doctor, coordinator):
        [notice] = booked.notices(user, "no_show")
        assert "nobody joined" in notice.body
    events = booked.nurse.get(f"/api/v1/consults/{booked.consult_id}/events").json()
    assert events[-1]["to_state"] == "no_show"
    assert events[-1]["reason"] == "nobody joined within 15 minutes of the start"
    # The clinician books a new time: the consult is scheduled again, with a new appointment.
    assert "Book a time" in booked.nurse.get(f"/consults/{booked.consult_id}").text
    again = whole_minute(utcnow() + timedelta(days=1))
    rebooked = booked.nurse.post(
        f"/api/v1/consults/{booked.consult_id}/appointment", {"starts_at": again.isoformat()}
    )
    assert rebooked.status_code in (200, 201), rebooked.text
    assert booked.state == "scheduled"
    assert booked.appointment.starts_at == again


def test_a_no_show_writes_its_change_row_and_audit_row_like_a_cancellation(
    db: Session, settings: Settings, users: Users, login: LoginFn, units: Units
) -> None:
    """The job marks the no-show through the appointments service: the appointment's
    history and the audit trail both say the system made it a no-show, and why."""
    booked = book(db, settings, users, login, starts_in=timedelta(hours=2))
    start = booked.appointment.starts_at
    changes_before = booked.changes()  # booked, then moved to its start (see ``book``)
    assert [action for action, _, _ in changes_before] == ["booked", "rescheduled"]
    audited_before = booked.audited()

    assert mark_no_shows(units, settings, start + timedelta(minutes=16)) == [booked.appointment.id]
    reason = "nobody joined within 15 minutes of the start"
    assert booked.changes() == [*changes_before, ("no_show", None, reason)]
    assert booked.audited()[len(audited_before) :] == [("update", None, "no show (system)")]
    # The history is shown on the consult page and in the API like any other change.
    detail = booked.nurse.get(f"/api/v1/consults/{booked.consult_id}/appointment").json()
    assert [c["action"] for c in detail["changes"]] == ["booked", "rescheduled", "no_show"]
    assert (
        "<strong>no show</strong> by system"
        in booked.nurse.get(f"/consults/{booked.consult_id}").text
    )
    # A second run finds nothing to do: no second change row, no second audit row.
    assert mark_no_shows(units, settings, start + timedelta(minutes=30)) == []
    assert len(booked.changes()) == 3
    assert len(booked.audited()) == len(audited_before) + 1


def test_one_side_waiting_gets_until_the_end_of_the_slot(
    units: Units, db: Session, settings: Settings, users: Users, login: LoginFn
) -> None:
    booked = book(db, settings, users, login, starts_in=timedelta(hours=2))
    start = booked.appointment.starts_at
    appointment = booked.appointment
    in_the_room(booked, start + timedelta(minutes=1), booked.nurse)
    assert mark_no_shows(units, settings, start + timedelta(minutes=16)) == []
    assert booked.state == "scheduled"
    end = appointment.ends_at
    assert mark_no_shows(units, settings, end + timedelta(seconds=1)) == [appointment.id]
    [notice] = booked.notices(booked.nurse, "no_show")
    assert f"{booked.doctor.user.full_name} did not join" in notice.body


def test_reminder_times_follow_each_readers_zone_across_daylight_saving(
    units: Units, db: Session, settings: Settings, users: Users, login: LoginFn
) -> None:
    """A London specialist's reminder for a session on the day the clocks go forward."""
    booked = book(db, settings, users, login)
    london = db.get(User, booked.doctor.user.id)
    assert london is not None
    london.timezone = "Europe/London"
    db.add(london)
    db.commit()
    start = datetime(2027, 3, 28, 9, 0, tzinfo=UTC)  # 10:00 BST, 11:00 in Maseru
    appointment = booked.appointment
    appointment.starts_at, appointment.ends_at = start, start + timedelta(minutes=30)
    appointment.updated_at = start - timedelta(days=3)
    db.add(appointment)
    db.commit()
    assert jobs.send_reminders(units, settings, start - timedelta(hours=20)) == 2
    assert "10:00 BST" in booked.notices(london, "reminder_24h")[0].subject
    assert "11:00 SAST" in booked.notices(booked.nurse, "reminder_24h")[0].subject


def test_a_held_session_is_no_no_show(
    units: Units, db: Session, settings: Settings, users: Users, login: LoginFn
) -> None:
    booked = book(db, settings, users, login, starts_in=timedelta(hours=2))
    start = booked.appointment.starts_at
    appointment = booked.appointment
    in_the_room(booked, start + timedelta(minutes=2), booked.nurse, booked.doctor)
    assert mark_no_shows(units, settings, start + timedelta(minutes=16)) == []
    assert mark_no_shows(units, settings, appointment.ends_at + timedelta(minutes=1)) == []
    assert booked.state == "scheduled"
    assert booked.appointment.status == AppointmentStatus.completed
    assert booked.changes()[-1] == ("completed", None, "")
    assert booked.audited()[-1] == ("update", None, "completed (system)")
    assert booked.notices(booked.nurse, "no_show") == []
