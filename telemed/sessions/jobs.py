"""The no-show job: a booked live session that nobody (or only one side) joined.

Here rather than beside the appointments because who joined is the calls' record; the
appointment and the consult change only through ``appointments.service`` (a change row,
an audit row, the consult's event and the notices, like any cancellation). Idempotent by
database state: a no-show moves the consult out of ``scheduled`` and the appointment out
of ``scheduled``, which the next run no longer selects.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlmodel import Session

from telemed.appointments import repository as appointments_repository
from telemed.appointments import service as appointments
from telemed.appointments.jobs import each
from telemed.consults import repository as consults_repository
from telemed.consults.models import ConsultState
from telemed.sessions import repository
from telemed.settings import Settings

# "Nobody joined 15 minutes after the start" (issue 4): then the consult is a no-show.
NO_SHOW_AFTER = timedelta(minutes=15)


def mark_no_shows(session: Session, settings: Settings, now: datetime) -> list[int]:
    """Consults still ``scheduled`` 15 minutes after the start with nobody having joined,
    or at the end of the slot with only one side having joined, become ``no_show``; both
    sides and the coordinators are told. Returns the appointment ids marked."""
    opened = timedelta(minutes=settings.call_open_before_minutes)
    marked = []
    for appointment in appointments_repository.scheduled_started_by(session, now - NO_SHOW_AFTER):
        with each(session, "checking for a no-show", appointment.id or 0):
            consult = consults_repository.get_consult(session, appointment.consult_id)
            if consult is None:
                continue
            if consult.state != ConsultState.scheduled:
                # The session happened (or the consult moved on by other means).
                if appointment.ends_at <= now and consult.state != ConsultState.in_session:
                    appointments.mark_completed(session, appointment, consult, now)
                continue
            people = appointments.sides_of(session, appointment, consult)
            joined = repository.joined_since(
                session, consult.id or 0, appointment.starts_at - opened
            )
            if people and all(u.id in joined for u in people):
                # Both sides were in the room: the session was held (the consult is back to
                # scheduled after the call, until the specialist ends the consult).
                if appointment.ends_at <= now:
                    appointments.mark_completed(session, appointment, consult, now)
                continue
            if joined and appointment.ends_at > now:
                continue  # one side is waiting in the room: give the other until the end
            present = [u.full_name for u in people if u.id in joined]
            absent = [u.full_name for u in people if u.id not in joined]
            reason = (
                "nobody joined within 15 minutes of the start"
                if not joined
                else f"{', '.join(absent)} did not join (only {', '.join(present)} did)"
            )
            appointments.mark_no_show(session, appointment, consult, reason, now, sides=people)
            marked.append(appointment.id or 0)
    return marked
