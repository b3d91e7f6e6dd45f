"""Who may see and do what with consults: the one place these rules live.

- clinicians: the consults of their own facility;
- specialists: the consults they are a participant of (offered, assigned, observer);
- coordinators: every consult;
- admins manage accounts and facilities and see no clinical data (least privilege).

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
from telemed.consults.models import Consult, ParticipantRelation
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


def is_requesting_clinician(user: User, consult: Consult) -> bool:
    """A clinician of the facility that requested the consult."""
    return (
        user.role == Role.clinician
        and user.facility_id is not None
        and user.facility_id == consult.facility_id
    )


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
