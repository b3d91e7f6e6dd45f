"""Who may see and do what with consults: the one place these rules live.

- clinicians: the consults of their own facility;
- specialists: the consults they are a participant of (offered, assigned, observer);
- coordinators: every consult;
- admins manage accounts and facilities and see no clinical data (least privilege);
- call guests (an interpreter or a second specialist invited into the call by a coordinator
  or the assigned specialist, ``CallGuest``) see the call page, with the consult's summary
  (number, specialty, language, state), while their invitation stands, and nothing else:
  not the clinical fields, the notes, the thread or the attachments. They reach the call
  through :func:`get_call_consult`, never through :func:`get_visible_consult`.

The other domains build their rules on two of these: "a clinician of the requesting
facility" (:func:`is_requesting_clinician`) and "the specialist assigned to the consult"
(:func:`is_assigned_specialist`); they never re-check the facility themselves.
"""

from __future__ import annotations

from sqlalchemy import ColumnElement, false, true
from sqlmodel import Session, col

from telemed.accounts.models import Role, User
from telemed.audit import service as audit
from telemed.consults import repository
from telemed.consults.models import Consult, GuestRole, ParticipantRelation
from telemed.db import pk
from telemed.errors import Forbidden, NotFound
from telemed.i18n import N_


def visibility_clause(user: User) -> ColumnElement[bool]:
    if user.role == Role.coordinator:
        return true()
    if user.role == Role.clinician and user.facility_id is not None:
        return col(Consult.facility_id) == user.facility_id
    if user.role == Role.specialist and user.id is not None:
        return col(Consult.id).in_(repository.participant_consult_ids(user.id))
    return false()


def clinician_facility(user: User) -> int | None:
    """The facility whose consults the user sees as one of its clinicians; None for any
    other role, even one recorded with a facility (an account's facility is not a pass)."""
    return user.facility_id if user.role == Role.clinician else None


def is_requesting_clinician(user: User, consult: Consult) -> bool:
    """A clinician of the facility that requested the consult."""
    facility = clinician_facility(user)
    return facility is not None and facility == consult.facility_id


def is_assigned_specialist(session: Session, user: User, consult: Consult) -> bool:
    """The specialist the consult is assigned to (not one it was only offered to)."""
    return user.role == Role.specialist and ParticipantRelation.assigned in relations_of(
        session, user, consult
    )


def relations_of(session: Session, user: User, consult: Consult) -> set[ParticipantRelation]:
    """How the user takes part in the consult (offered, assigned, observer), if at all."""
    if user.id is None or consult.id is None:
        return set()
    return repository.relations_of(session, consult.id, user.id)


def can_view(session: Session, user: User, consult: Consult) -> bool:
    if user.role == Role.coordinator:
        return True
    if user.role == Role.clinician:
        return is_requesting_clinician(user, consult)
    if user.role == Role.specialist:
        return repository.is_participant(session, pk(consult), pk(user))
    return False


def guest_role(session: Session, user: User, consult: Consult) -> GuestRole | None:
    """What the user is invited into the consult's call for, while the invitation stands."""
    if user.id is None or consult.id is None or not user.is_active:
        return None
    guest = repository.active_guest(session, consult.id, user.id)
    return GuestRole(guest.role) if guest is not None else None


def can_invite(session: Session, user: User, consult: Consult) -> bool:
    """Coordinators and the consult's assigned specialist invite (and revoke) call guests."""
    return user.role == Role.coordinator or is_assigned_specialist(session, user, consult)


def ensure_can_invite(session: Session, user: User, consult: Consult) -> None:
    if not can_invite(session, user, consult):
        raise Forbidden(N_("only a coordinator or the consult's specialist can invite to its call"))


def get_call_consult(session: Session, user: User, consult_id: int) -> Consult:
    """The consult for its call page and ticket: those who may see it, and its call guests
    (least privilege: the call is all a guest gets). 404 (audited) otherwise."""
    consult = repository.get_consult(session, consult_id)
    if consult is not None and guest_role(session, user, consult) is not None:
        return consult
    return get_visible_consult(session, user, consult_id)


def get_visible_consult(session: Session, user: User, consult_id: int) -> Consult:
    """The consult, or 404 whether it does not exist or is not the user's to see.

    A refused attempt on an existing consult is audited (the row persists although the
    request fails).
    """
    consult = repository.get_consult(session, consult_id)
    if consult is None:
        raise NotFound(N_("consult %(consult_id)s not found"), consult_id=consult_id)
    if not can_view(session, user, consult):
        audit.record_refusal(
            session,
            user,
            "consult",
            consult_id,
            case_id=consult.case_id,
            consult_id=consult_id,
            detail="not allowed to see this consult",
        )
        raise NotFound(N_("consult %(consult_id)s not found"), consult_id=consult_id)
    return consult


def can_create(user: User) -> bool:
    """Only clinicians request consults, for their own facility."""
    return user.role == Role.clinician and user.facility_id is not None


def ensure_can_create(user: User) -> int:
    """Returns the facility the consult is requested for."""
    if not can_create(user) or user.facility_id is None:
        raise Forbidden(N_("only a clinician of a facility can request a consult"))
    return user.facility_id


def ensure_requesting_clinician(user: User, consult: Consult) -> None:
    """Submitting, editing and cancelling belong to the requesting facility's clinicians."""
    if not is_requesting_clinician(user, consult):
        raise Forbidden(N_("only a clinician of the requesting facility can do this"))


def ensure_can_post(session: Session, user: User, consult: Consult) -> None:
    if not can_view(session, user, consult):
        raise NotFound(N_("consult %(consult_id)s not found"), consult_id=consult.id)
