"""Who may see and change an appointment: the one place these rules live.

- its two sides, the specialist it is booked with and the clinicians of the requesting
  facility, see it, download its invitation, reschedule and cancel it;
- coordinators see it (and may book a time for an accepted live consult) but leave changes
  to the two sides;
- nobody else learns it exists: 404, like every consult resource.
"""

from __future__ import annotations

from sqlmodel import Session

from telemed.accounts.models import Role, User
from telemed.appointments.models import Appointment
from telemed.consults import auth as consult_auth
from telemed.consults.models import Consult
from telemed.errors import Forbidden, NotFound
from telemed.i18n import N_


def is_side(user: User, consult: Consult, appointment: Appointment) -> bool:
    """The appointment's specialist, or a clinician of the consult's facility."""
    if consult_auth.is_requesting_clinician(user, consult):
        return True
    return user.role == Role.specialist and user.id == appointment.specialist_id


def can_see(user: User, consult: Consult, appointment: Appointment) -> bool:
    return user.role == Role.coordinator or is_side(user, consult, appointment)


def ensure_can_see(user: User, consult: Consult, appointment: Appointment) -> None:
    if not can_see(user, consult, appointment):
        raise NotFound(N_("consult %(consult_id)s has no appointment"), consult_id=consult.id)


def ensure_side(user: User, consult: Consult, appointment: Appointment) -> None:
    """Changes belong to the two sides; a coordinator (who can see it) gets 403."""
    if is_side(user, consult, appointment):
        return
    if can_see(user, consult, appointment):
        raise Forbidden(
            N_(
                "only the specialist and the requesting facility's clinicians can reschedule or "
                "cancel an appointment"
            )
        )
    raise NotFound(N_("appointment %(appointment_id)s not found"), appointment_id=appointment.id)


def can_book(session: Session, user: User, consult: Consult) -> bool:
    """A time for an accepted live consult is booked by its assigned specialist, the
    requesting facility's clinicians or a coordinator."""
    return (
        user.role == Role.coordinator
        or consult_auth.is_requesting_clinician(user, consult)
        or consult_auth.is_assigned_specialist(session, user, consult)
    )


def ensure_can_book(session: Session, user: User, consult: Consult) -> None:
    if not can_book(session, user, consult):
        raise Forbidden(
            N_(
                "a time is booked by the assigned specialist, the requesting facility's clinicians"
                " or a coordinator"
            )
        )


def clinician_side(user: User) -> bool:
    """A clinician cancelling cancels the consult request; a specialist gives it back."""
    return user.role == Role.clinician


def gets_invitations(user: User) -> bool:
    """The two sides download an appointment's ``.ics``; coordinators only see it."""
    return user.role in (Role.clinician, Role.specialist)
