"""Starting a booked session early, when both sides agree (issue 15, "call now").

A call opens ``call_open_before_minutes`` before its appointment. Two people who are both
free now need not wait for the slot: one side asks to start now (an ``early_asked``
change at the appointment's current SEQUENCE, and a notice to the other side), and when
the other side asks too the appointment moves to now, keeping its length, as a
``rescheduled`` change with its notices and updated invitations. The call is then open at
once. A reschedule (new SEQUENCE) voids the asks made before it: an old "yes" never moves
a new time.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlmodel import Session, col, select

from telemed.accounts.models import User
from telemed.appointments import changes, notices, service
from telemed.appointments.models import (
    Appointment,
    AppointmentChange,
    AppointmentStatus,
    ChangeAction,
)
from telemed.audit.models import AuditAction
from telemed.consults import reasons
from telemed.consults import service as consults
from telemed.consults.models import Consult, ConsultState
from telemed.db import pk
from telemed.errors import Conflict
from telemed.i18n import N_
from telemed.settings import Settings

AGREED = "both sides agreed to start now"


@dataclass(frozen=True)
class EarlyStart:
    """Where the asks stand for one appointment at its current SEQUENCE."""

    specialist_asked: bool
    clinician_asked: bool

    def asked_by(self, user: User, appointment: Appointment) -> bool:
        return (
            self.specialist_asked
            if user.id == appointment.specialist_id
            else (self.clinician_asked)
        )

    def other_asked(self, user: User, appointment: Appointment) -> bool:
        return (
            self.clinician_asked
            if user.id == appointment.specialist_id
            else (self.specialist_asked)
        )


def asks(session: Session, appointment: Appointment) -> EarlyStart:
    actors = {
        actor_id
        for actor_id in session.exec(
            select(AppointmentChange.actor_id).where(
                AppointmentChange.appointment_id == pk(appointment),
                AppointmentChange.action == ChangeAction.early_asked,
                col(AppointmentChange.sequence) == appointment.sequence,
            )
        )
        if actor_id is not None
    }
    return EarlyStart(
        specialist_asked=appointment.specialist_id in actors,
        clinician_asked=bool(actors - {appointment.specialist_id}),
    )


def call_open(appointment: Appointment, now: datetime, open_before: timedelta) -> bool:
    return now >= appointment.starts_at - open_before


def may_ask(
    appointment: Appointment, consult: Consult, now: datetime, open_before: timedelta
) -> bool:
    """A scheduled session whose call is not open yet may be started early."""
    return (
        appointment.status == AppointmentStatus.scheduled
        and consult.state == ConsultState.scheduled
        and not call_open(appointment, now, open_before)
    )


def start_now(
    session: Session,
    user: User,
    appointment_id: int,
    now: datetime,
    *,
    settings: Settings,
) -> tuple[Appointment, bool]:
    """One side asks to start now; True with the appointment once both sides have (it then
    starts ``now``). 409 when the call is open already, the session is not scheduled, the
    user asked already, or the specialist has another appointment now."""
    open_before = timedelta(minutes=settings.call_open_before_minutes)
    with session.begin_nested():  # refused: nothing changed
        appointment, consult = changes.lock_for_change(session, user, appointment_id, None)
        if not may_ask(appointment, consult, now, open_before):
            raise Conflict(
                N_("this session cannot be started early: its call is open or it is over"),
                field="start_now",
            )
        state = asks(session, appointment)
        if state.asked_by(user, appointment):
            raise Conflict(
                N_("you asked to start now already; the other side is asked to agree"),
                field="start_now",
            )
        if not state.other_asked(user, appointment):
            service.record_change(
                session, appointment, user, ChangeAction.early_asked, now, reason=""
            )
            consults.record_fact(
                session,
                consult,
                user,
                reasons.english(reasons.ASKED_EARLY, name=user.full_name),
                now,
            )
            others = [u for u in service.sides_of(session, appointment, consult) if u.id != user.id]
            notices.early_asked(
                session, appointment, consult, asker=user, recipients=others, now=now
            )
            return appointment, False
        length = appointment.ends_at - appointment.starts_at
        changes.move(
            session,
            user,
            appointment,
            consult,
            now,
            now + length,
            AGREED,
            now,
            settings=settings,
            outside_confirmed=True,  # both sides are ready now: that is the agreement
        )
        service.audit_change(
            session, user, AuditAction.update, appointment, consult, f"started early: {AGREED}"
        )
    return appointment, True
