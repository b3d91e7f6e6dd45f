"""Who may see and do what with consults: the one place these rules live.

- clinicians: the consults of their own facility;
- specialists: the consults they are a participant of (offered, assigned, observer);
- coordinators: every consult;
- admins manage accounts and facilities and see no clinical data (least privilege).
"""

from __future__ import annotations

from sqlalchemy import ColumnElement, false, true
from sqlmodel import Session, col

from telemed.accounts.models import Role, User
from telemed.audit import service as audit
from telemed.consults import repository
from telemed.consults.models import Consult
from telemed.errors import Forbidden, NotFound


def visibility_clause(user: User) -> ColumnElement[bool]:
    if user.role == Role.coordinator:
        return true()
    if user.role == Role.clinician and user.facility_id is not None:
        return col(Consult.facility_id) == user.facility_id
    if user.role == Role.specialist and user.id is not None:
        return col(Consult.id).in_(repository.participant_consult_ids(user.id))
    return false()


def can_view(session: Session, user: User, consult: Consult) -> bool:
    if user.role == Role.coordinator:
        return True
    if user.role == Role.clinician:
        return user.facility_id is not None and consult.facility_id == user.facility_id
    if user.role == Role.specialist:
        return repository.is_participant(session, consult.id or 0, user.id or 0)
    return False


def get_visible_consult(session: Session, user: User, consult_id: int) -> Consult:
    """The consult, or 404 whether it does not exist or is not the user's to see.

    A refused attempt on an existing consult is audited (the row persists although the
    request fails).
    """
    consult = repository.get_consult(session, consult_id)
    if consult is None:
        raise NotFound(f"consult {consult_id} not found")
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
        raise NotFound(f"consult {consult_id} not found")
    return consult


def ensure_can_create(user: User) -> int:
    """Only clinicians request consults, for their own facility; returns that facility."""
    if user.role != Role.clinician or user.facility_id is None:
        raise Forbidden("only a clinician of a facility can request a consult")
    return user.facility_id


def ensure_requesting_clinician(user: User, consult: Consult) -> None:
    """Submitting, editing and cancelling belong to the requesting facility's clinicians."""
    if user.role != Role.clinician or user.facility_id != consult.facility_id:
        raise Forbidden("only a clinician of the requesting facility can do this")


def ensure_can_post(session: Session, user: User, consult: Consult) -> None:
    if not can_view(session, user, consult):
        raise NotFound(f"consult {consult.id} not found")
