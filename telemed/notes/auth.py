"""Who may write notes and outcomes (reading follows the consult's visibility).

- the specialist assigned to the consult writes the specialist's note;
- clinicians of the requesting facility write their own notes and record the outcome;
- only a note's author edits, signs or amends it.
"""

from __future__ import annotations

from sqlmodel import Session, select

from telemed.accounts.models import Role, User
from telemed.consults.models import Consult, ConsultParticipant, ParticipantRelation
from telemed.errors import Forbidden
from telemed.notes.models import ConsultNote


def is_assigned_specialist(session: Session, user: User, consult: Consult) -> bool:
    return (
        user.role == Role.specialist
        and session.exec(
            select(ConsultParticipant.id).where(
                ConsultParticipant.consult_id == consult.id,
                ConsultParticipant.user_id == user.id,
                ConsultParticipant.relation == ParticipantRelation.assigned,
            )
        ).first()
        is not None
    )


def is_facility_clinician(user: User, consult: Consult) -> bool:
    return user.role == Role.clinician and user.facility_id == consult.facility_id


def can_write_note(session: Session, user: User, consult: Consult) -> bool:
    return is_facility_clinician(user, consult) or is_assigned_specialist(session, user, consult)


def ensure_can_write_note(session: Session, user: User, consult: Consult) -> None:
    if not can_write_note(session, user, consult):
        raise Forbidden(
            "notes are written by the assigned specialist or the requesting facility's clinicians"
        )


def ensure_author(user: User, note: ConsultNote) -> None:
    if note.author_id != user.id:
        raise Forbidden("only the note's author can change, sign or amend it")


def ensure_can_record_outcome(user: User, consult: Consult) -> None:
    if not is_facility_clinician(user, consult):
        raise Forbidden("the outcome is recorded by the requesting facility's clinicians")
