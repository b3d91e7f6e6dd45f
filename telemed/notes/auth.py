"""Who may write notes and outcomes (reading follows the consult's visibility).

- the specialist assigned to the consult writes the specialist's note;
- clinicians of the requesting facility write their own notes and record the outcome;
- only a note's author edits, signs or amends it.
"""

from __future__ import annotations

from sqlmodel import Session

from telemed.accounts.models import User
from telemed.consults import auth as consult_auth
from telemed.consults.models import Consult
from telemed.errors import Forbidden
from telemed.i18n import N_
from telemed.notes.models import ConsultNote


def can_write_note(session: Session, user: User, consult: Consult) -> bool:
    return consult_auth.is_requesting_clinician(user, consult) or (
        consult_auth.is_assigned_specialist(session, user, consult)
    )


def ensure_can_write_note(session: Session, user: User, consult: Consult) -> None:
    if not can_write_note(session, user, consult):
        raise Forbidden(
            N_(
                "notes are written by the assigned specialist or the requesting facility's "
                "clinicians"
            )
        )


def ensure_author(user: User, note: ConsultNote) -> None:
    if note.author_id != user.id:
        raise Forbidden(N_("only the note's author can change, sign or amend it"))


def can_record_outcome(user: User, consult: Consult) -> bool:
    return consult_auth.is_requesting_clinician(user, consult)


def ensure_can_record_outcome(user: User, consult: Consult) -> None:
    if not can_record_outcome(user, consult):
        raise Forbidden(N_("the outcome is recorded by the requesting facility's clinicians"))
