"""The no-show job: a booked live session that nobody (or only one side) joined.

Here rather than beside the appointments because who joined is the calls' record; the
appointment and the consult change only through ``appointments.service`` (a change row,
an audit row, the consult's event and the notices, like any cancellation). Idempotent by
database state: a no-show moves the consult out of ``scheduled`` and the appointment out
of ``scheduled``, which the next run no longer selects.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from sqlmodel import Session

from telemed.appointments import changes as appointment_changes
from telemed.appointments import repository as appointments_repository
from telemed.appointments import service as appointments
from telemed.appointments.models import Appointment
from telemed.consults import reasons
from telemed.consults import repository as consults_repository
from telemed.consults.models import ConsultState
from telemed.db import pk
from telemed.sessions import repository
from telemed.settings import Settings
from telemed.uow import Units

# "Nobody joined 15 minutes after the start" (issue 4): then the consult is a no-show.
log = logging.getLogger(__name__)

NO_SHOW_AFTER = timedelta(minutes=15)


def mark_no_shows(units: Units, settings: Settings, now: datetime) -> list[int]:
    """Consults still ``scheduled`` 15 minutes after the start with nobody having joined,
    or at the end of the slot with only one side having joined, become ``no_show``; both
    sides and the coordinators are told. Returns the appointment ids marked."""
    opened = timedelta(minutes=settings.call_open_before_minutes)
    with units.one() as session:
        started = [
            pk(a)
            for a in appointments_repository.scheduled_started_by(session, now - NO_SHOW_AFTER)
        ]
    marked = []
    for appointment_id in started:
        marked_one = units.attempt(
            f"checking appointment {appointment_id} for a no-show failed",
            log,
            _check,
            appointment_id,
            opened,
            now,
        )
        if marked_one:
            marked.append(appointment_id)
    return marked


def _check(session: Session, appointment_id: int, opened: timedelta, now: datetime) -> bool:
    """One appointment, in a unit of work of its own: True if it was marked a no-show."""
    appointment = session.get(Appointment, appointment_id)
    if appointment is None:
        return False
    consult = consults_repository.get_consult(session, appointment.consult_id)
    if consult is None:
        return False
    if consult.state != ConsultState.scheduled:
        # The session happened (or the consult moved on by other means).
        if appointment.ends_at <= now and consult.state != ConsultState.in_session:
            appointment_changes.mark_completed(session, appointment, consult, now)
        return False
    people = appointments.sides_of(session, appointment, consult)
    joined = repository.joined_since(session, pk(consult), appointment.starts_at - opened)
    if people and all(u.id in joined for u in people):
        # Both sides were in the room: the session was held (the consult is back to
        # scheduled after the call, until the specialist ends the consult).
        if appointment.ends_at <= now:
            appointment_changes.mark_completed(session, appointment, consult, now)
        return False
    if joined and appointment.ends_at > now:
        return False  # one side is waiting in the room: give the other until the end
    present = [u.full_name for u in people if u.id in joined]
    absent = [u.full_name for u in people if u.id not in joined]
    reason = (
        reasons.english(reasons.NOBODY_JOINED)
        if not joined
        else reasons.english(
            reasons.ONLY_SOME_JOINED, absent=", ".join(absent), present=", ".join(present)
        )
    )
    appointment_changes.mark_no_show(session, appointment, consult, reason, now, sides=people)
    return True
