"""The appointments job: reminders 24 hours and 15 minutes before a live session, and
none for a consult that is over (``NO_SESSION_AHEAD``) though its slot is still booked.

Idempotent by database state: a reminder is one notification whose dedupe key names the
appointment, its SEQUENCE and the recipient, so a repeated run (or the next leader after a
failover) queues nothing new, and a rescheduled appointment (new SEQUENCE) is reminded
afresh. (No-shows are decided by who joined the call: ``telemed.sessions.jobs``.)
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from sqlmodel import Session

from telemed.appointments import repository, service
from telemed.appointments.models import Appointment
from telemed.consults.models import Consult, ConsultState
from telemed.db import pk
from telemed.i18n import gettext, use_language
from telemed.labels import label
from telemed.notifications.service import already_queued, notify
from telemed.settings import Settings
from telemed.timefmt import local
from telemed.uow import Units

log = logging.getLogger(__name__)

DAY_BEFORE = timedelta(hours=24)
JUST_BEFORE = timedelta(minutes=15)
# A consult in one of these states has had its say: no session is coming, whatever its
# appointment row still says (ended early, answered by messages, closed, cancelled).
NO_SESSION_AHEAD = frozenset(
    {
        ConsultState.completed,
        ConsultState.answered_async,
        ConsultState.follow_up_due,
        ConsultState.closed,
        ConsultState.cancelled,
    }
)


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
    """Queue the reminders due at ``now``; returns how many notifications were queued. Each
    appointment is a unit of work of its own: one that fails is rolled back and logged.

    A reminder stays due for many runs (every minute of its window): the keys already used
    are read in one query, so only the new ones cost anything."""
    with units.one() as session:
        due = [
            (appointment, consult, kind)
            for appointment, consult in repository.scheduled_starting(
                session, now, now + DAY_BEFORE
            )
            if consult.state not in NO_SESSION_AHEAD
            and (kind := reminder_kind(appointment, now)) is not None
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
    """The reminders of one appointment (read in the run's first unit; only read here)."""
    queued = 0
    for user in service.sides_of(session, appointment, consult):
        key = _reminder_key(kind, appointment, pk(user))
        if key in done:
            continue
        just_before = kind == "reminder_15m"
        with use_language(user.language):  # the recipient's words, dates and zone
            names = {
                "id": consult.id,
                "when": local(appointment.starts_at, user.timezone),
                "specialty": label(consult.specialty),
            }
            subject = (
                gettext("Reminder: consult %(id)s in 15 minutes, %(when)s")
                if just_before
                else gettext("Reminder: consult %(id)s tomorrow, %(when)s")
            ) % names
            body = (
                gettext("Your live consult %(id)s (%(specialty)s) starts %(when)s.") % names
                + "\n"
                + gettext("Join the call from the consult page when it is time.")
            )
            # By SMS too only just before: the day-before e-mail can wait to be read.
            sms = gettext("Telemed: consult %(id)s starts %(when)s.") % names
        queued += notify(
            session,
            user,
            kind=kind,
            subject=subject,
            body=body,
            dedupe_key=key,
            link=f"/consults/{consult.id}/call",
            sms=sms if just_before else None,
            now=now,
        )
    return queued
