"""Appointment jobs: reminders 24 hours and 15 minutes before, and no-shows.

Both are idempotent by database state, and each appointment is a unit of work of its own
(``units.item``): one that fails is rolled back and logged, the others go on. A reminder
is one notification whose dedupe key names the appointment, its SEQUENCE and the
recipient, so a repeated run (or the next leader after a failover) queues nothing new, and
a rescheduled appointment (new SEQUENCE) is reminded afresh. A no-show moves the consult
out of ``scheduled``, which the next run no longer selects.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from sqlmodel import Session, col, select

from telemed.accounts.models import User
from telemed.appointments.models import Appointment, AppointmentStatus
from telemed.appointments.notices import local
from telemed.consults import service as consults
from telemed.consults.models import Consult, ConsultState
from telemed.notifications.service import already_queued, notify, notify_coordinators
from telemed.sessions.models import CallEventKind, CallSessionEvent
from telemed.settings import Settings
from telemed.uow import Units

log = logging.getLogger(__name__)

DAY_BEFORE = timedelta(hours=24)
JUST_BEFORE = timedelta(minutes=15)
# "Nobody joined 15 minutes after the start" (issue 4): then the consult is a no-show.
NO_SHOW_AFTER = timedelta(minutes=15)


def _people(session: Session, appointment: Appointment, consult: Consult) -> list[User]:
    """The two sides of the appointment: the specialist and the requesting clinician."""
    found = [session.get(User, appointment.specialist_id), session.get(User, consult.created_by_id)]
    return [user for user in found if user is not None]


def _scheduled_between(
    session: Session, start: datetime, end: datetime
) -> list[tuple[Appointment, Consult]]:
    rows = session.exec(
        select(Appointment, Consult)
        .join(Consult, col(Consult.id) == col(Appointment.consult_id))
        .where(
            Appointment.status == AppointmentStatus.scheduled,
            col(Appointment.starts_at) > start,
            col(Appointment.starts_at) <= end,
        )
        .order_by(col(Appointment.starts_at))
    )
    return [(appointment, consult) for appointment, consult in rows]


def _reminder_key(kind: str, appointment: Appointment, user_id: int) -> str:
    return f"{kind}:appointment{appointment.id}:seq{appointment.sequence}:user{user_id}"


def reminder_kind(appointment: Appointment, now: datetime) -> str | None:
    """Which reminder is due now, if any. The day-before one only for appointments booked
    (or last moved) before the 24-hour mark: a later booking's own notice said it all."""
    lead = appointment.starts_at - now
    if lead <= timedelta(0):
        return None
    if lead <= JUST_BEFORE:
        return "reminder_15m"
    if lead <= DAY_BEFORE and appointment.updated_at <= appointment.starts_at - DAY_BEFORE:
        return "reminder_24h"
    return None


def send_reminders(units: Units, settings: Settings, now: datetime) -> int:
    """Queue the reminders due at ``now``; returns how many notifications were queued.

    A reminder stays due for many runs (every minute of its window): the keys already used
    are read in one query, so only the new ones cost anything."""
    with units.one() as session:
        due = [
            (appointment, consult, kind)
            for appointment, consult in _scheduled_between(session, now, now + DAY_BEFORE)
            if (kind := reminder_kind(appointment, now)) is not None
        ]
        keys = {
            appointment.id: [
                _reminder_key(kind, appointment, user_id)
                for user_id in (appointment.specialist_id, consult.created_by_id)
            ]
            for appointment, consult, kind in due
        }
        done = already_queued(session, [key for pair in keys.values() for key in pair])
    queued = 0
    for appointment, consult, kind in due:
        if done.issuperset(keys[appointment.id]):
            continue
        queued += (
            units.attempt(
                f"reminding of appointment {appointment.id} failed",
                log,
                _remind,
                appointment,
                consult,
                kind,
                done,
                now,
            )
            or 0
        )
    return queued


def _remind(
    session: Session,
    appointment: Appointment,
    consult: Consult,
    kind: str,
    done: set[str],
    now: datetime,
) -> int:
    queued = 0
    for user in _people(session, appointment, consult):
        key = _reminder_key(kind, appointment, user.id or 0)
        if key in done:
            continue
        when = local(appointment.starts_at, user.timezone)
        just_before = kind == "reminder_15m"
        soon = "in 15 minutes" if just_before else "tomorrow"
        queued += notify(
            session,
            user,
            kind=kind,
            subject=f"Reminder: consult {consult.id} {soon}, {when}",
            body=(
                f"Your live consult {consult.id} ({consult.specialty}) starts {when}.\n"
                f"Join the call from the consult page when it is time."
            ),
            dedupe_key=key,
            link=f"/consults/{consult.id}/call",
            # By SMS too only just before: the day-before e-mail can wait to be read.
            sms=f"Telemed: consult {consult.id} starts {when}." if just_before else None,
            now=now,
        )
    return queued


def _who_joined(session: Session, consult_id: int, since: datetime) -> set[int]:
    rows = session.exec(
        select(CallSessionEvent.user_id).where(
            CallSessionEvent.consult_id == consult_id,
            CallSessionEvent.kind == CallEventKind.joined,
            col(CallSessionEvent.at) >= since,
        )
    )
    return {user_id for user_id in rows if user_id is not None}


def mark_no_shows(units: Units, settings: Settings, now: datetime) -> list[int]:
    """Consults still ``scheduled`` 15 minutes after the start with nobody having joined,
    or at the end of the slot with only one side having joined, become ``no_show``; both
    sides and the coordinators are told. Returns the appointment ids marked."""
    marked = []
    with units.one() as session:
        due = session.exec(
            select(Appointment.id)
            .where(
                Appointment.status == AppointmentStatus.scheduled,
                col(Appointment.starts_at) <= now - NO_SHOW_AFTER,
            )
            .order_by(col(Appointment.starts_at))
        ).all()
    for appointment_id in due:
        if appointment_id is not None and units.attempt(
            f"checking appointment {appointment_id} for a no-show failed",
            log,
            _check_no_show,
            settings,
            appointment_id,
            now,
        ):
            marked.append(appointment_id)
    return marked


def _check_no_show(
    session: Session, settings: Settings, appointment_id: int, now: datetime
) -> bool:
    """Whether the appointment (still scheduled, read again in this unit) was a no-show and
    is now marked so."""
    opened = timedelta(minutes=settings.call_open_before_minutes)
    appointment = session.get(Appointment, appointment_id)
    if appointment is None or appointment.status != AppointmentStatus.scheduled:
        return False
    consult = session.get(Consult, appointment.consult_id)
    if consult is None:
        return False
    if consult.state != ConsultState.scheduled:
        # The session happened (or the consult moved on by other means).
        if appointment.ends_at <= now and consult.state != ConsultState.in_session:
            appointment.status = AppointmentStatus.completed
            session.add(appointment)
        return False
    people = _people(session, appointment, consult)
    joined = _who_joined(session, consult.id or 0, appointment.starts_at - opened)
    if people and all(u.id in joined for u in people):
        # Both sides were in the room: the session was held (the consult is back to
        # scheduled after the call, until the specialist ends the consult).
        if appointment.ends_at <= now:
            appointment.status = AppointmentStatus.completed
            session.add(appointment)
        return False
    if joined and appointment.ends_at > now:
        return False  # one side is waiting in the room: give the other until the end
    present = [u.full_name for u in people if u.id in joined]
    absent = [u.full_name for u in people if u.id not in joined]
    reason = (
        "nobody joined within 15 minutes of the start"
        if not joined
        else f"{', '.join(absent)} did not join (only {', '.join(present)} did)"
    )
    consults.transition(session, consult, ConsultState.no_show, actor=None, reason=reason, at=now)
    appointment.status = AppointmentStatus.no_show
    session.add(appointment)
    key = f"no_show:appointment{appointment.id}:seq{appointment.sequence}"
    subject = f"Consult {consult.id}: the live session did not take place"
    body = f"The session of consult {consult.id} was a no-show: {reason}."
    for user in people:
        notify(
            session,
            user,
            kind="no_show",
            subject=subject,
            body=body + "\nOpen the consult to book a new time or go on by messages.",
            dedupe_key=f"{key}:user{user.id}",
            link=f"/consults/{consult.id}",
            now=now,
        )
    notify_coordinators(
        session,
        kind="no_show",
        subject=subject,
        body=body,
        dedupe_key=key,
        link=f"/consults/{consult.id}",
        now=now,
    )
    return True
