"""Who may join a consult's call, and when: the one place these rules live.

- the clinicians of the consult's facility (role ``clinician``);
- the specialist assigned to the consult (role ``specialist``); a specialist who was only
  offered the consult may read it but not join its call;
- a user invited as an observer (role ``observer``: the room takes 3);
- a call guest while the invitation stands (``consults.auth.guest_role``): an interpreter
  (role ``interpreter``) or a second specialist (role ``observer``); the room takes 3.

Coordinators see every consult but do not join calls. A refusal is audited.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Protocol

from sqlmodel import Session

from telemed.accounts.models import Role, User
from telemed.appointments import repository as appointments_repository
from telemed.audit import service as audit
from telemed.consults import auth as consult_auth
from telemed.consults.models import Consult, ConsultState, GuestRole, ParticipantRelation
from telemed.db import pk
from telemed.errors import Conflict, Forbidden
from telemed.i18n import N_

#: States in which a consult has no call: not requested yet, or over.
NO_CALL_STATES = frozenset({ConsultState.draft, ConsultState.cancelled, ConsultState.closed})


class Appointment(Protocol):
    """A booked slot (``telemed.appointments``' model is one). Calls open around it."""

    @property
    def starts_at(self) -> datetime: ...

    @property
    def ends_at(self) -> datetime: ...


def booked_appointment(session: Session, consult: Consult) -> Appointment | None:
    """The consult's scheduled appointment, if it has one."""
    return appointments_repository.active_for_consult(session, pk(consult))


#: The signalling role of each kind of call guest (docs/signaling-protocol.md §3).
GUEST_SIGNAL_ROLES = {GuestRole.interpreter: "interpreter", GuestRole.second_specialist: "observer"}


def call_role(session: Session, user: User, consult: Consult) -> str | None:
    """The user's role in the consult's call, or None if they may not join it."""
    if consult_auth.is_requesting_clinician(user, consult):
        return "clinician"
    relations = consult_auth.relations_of(session, user, consult)
    if user.role == Role.specialist and ParticipantRelation.assigned in relations:
        return "specialist"
    guest = consult_auth.guest_role(session, user, consult)
    if guest is not None:
        return GUEST_SIGNAL_ROLES[guest]
    if user.role != Role.clinician and ParticipantRelation.observer in relations:
        return "observer"
    return None


def ensure_call_participant(session: Session, user: User, consult: Consult) -> str:
    """The user's call role; 403 (audited) for anyone who is not a participant."""
    role = call_role(session, user, consult)
    if role is None:
        consult_id = pk(consult)
        audit.record_refusal(
            session,
            user,
            "call",
            consult_id,
            case_id=consult.case_id,
            consult_id=consult_id,
            detail="not a participant of this consult's call",
        )
        raise Forbidden(
            N_(
                "only the consult's clinicians, its assigned specialist and those invited "
                "can join its call"
            )
        )
    return role


def ensure_call_open(
    consult: Consult,
    *,
    now: datetime,
    appointment: Appointment | None = None,
    open_before: timedelta = timedelta(minutes=15),
    open_after: timedelta = timedelta(minutes=60),
) -> None:
    """409 unless a call may be started now.

    The consult must be open (not draft, cancelled or closed). With an appointment the call
    is open from ``open_before`` its start to ``open_after`` its end; without one (an
    asynchronous consult, or a live one not booked yet) whenever the consult is open.
    """
    state = ConsultState(consult.state)
    if state in NO_CALL_STATES:
        raise Conflict(
            N_("the consult is %(state)s; it has no call. Use its messages instead."),
            state=state.value,
        )
    if appointment is None:
        return
    opens, closes = appointment.starts_at - open_before, appointment.ends_at + open_after
    if now < opens:
        raise Conflict(
            N_("the call opens at %(opens)s, before the appointment"),
            opens=opens.isoformat(),
        )
    if now > closes:
        raise Conflict(N_("the appointment is over; book another or use the consult's messages"))
