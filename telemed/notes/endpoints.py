"""Notes, outcomes, follow-ups and ICD-10 lookup: JSON API."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response

from telemed.consults import service as consults
from telemed.consults.deps import ERRORS, CurrentConsult
from telemed.db import pk
from telemed.deps import CurrentUser, NowDep, SessionDep
from telemed.idempotency.deps import IdempotencyDep
from telemed.notes import icd10, repository, service
from telemed.notes.schemas import (
    FollowUpPublic,
    Icd10Public,
    NoteAmend,
    NoteCreate,
    NoteFields,
    NotePublic,
    OutcomeIn,
    OutcomePublic,
)
from telemed.validation import Id
from telemed.web.access import (
    ANY_USER,
    CONSULT_READERS,
    CONSULT_SIDES,
    NOTE_AUTHOR,
    REQUESTING_CLINICIANS,
    SIGNED_IN,
    Access,
)

router = APIRouter(tags=["notes"])


@router.get("/icd10")
def search_icd10(
    _user: CurrentUser, q: Annotated[str, Query(min_length=1, max_length=100)]
) -> list[Icd10Public]:
    """WHO ICD-10 codes by code prefix (`J45`) or words of the title (`kawasaki`)."""
    return [Icd10Public(code=c.code, title=c.title) for c in icd10.search(q)]


@router.get("/consults/{consult_id}/notes", responses=ERRORS)
def list_notes(consult: CurrentConsult, user: CurrentUser, db: SessionDep) -> list[NotePublic]:
    """Every version of every note, oldest first; drafts only for their author."""
    consults.record_read(db, user, consult, "notes")
    notes = [
        n
        for n in repository.notes_of(db, [pk(consult)])
        if n.status == "signed" or n.author_id == user.id
    ]
    return service.public(db, notes)


@router.post(
    "/consults/{consult_id}/notes", status_code=201, responses=ERRORS, response_model=NotePublic
)
def create_note(
    body: NoteCreate,
    consult: CurrentConsult,
    user: CurrentUser,
    db: SessionDep,
    idem: IdempotencyDep,
) -> Response:
    """Start a note (a draft): SOAP, ICD-10 diagnoses, follow-up for the clinician. With an
    `Idempotency-Key`, a repeat returns the first answer instead of a second note."""
    note = service.public(db, [service.create(db, user, consult, body)])[0]
    return idem.respond(note, consult=consult)


@router.patch("/consults/{consult_id}/notes/{note_id}", responses=ERRORS)
def update_note(
    note_id: Id, body: NoteFields, consult: CurrentConsult, user: CurrentUser, db: SessionDep
) -> NotePublic:
    """Edit your draft; a signed note is locked (409)."""
    note = service.get_for(db, consult, note_id)
    return service.public(db, [service.update_draft(db, user, consult, note, body)])[0]


@router.post("/consults/{consult_id}/notes/{note_id}/sign", responses=ERRORS)
def sign_note(
    note_id: Id, consult: CurrentConsult, user: CurrentUser, db: SessionDep
) -> NotePublic:
    """Sign your draft: from now on it is locked and visible to everyone on the consult."""
    note = service.get_for(db, consult, note_id)
    return service.public(db, [service.sign(db, user, consult, note)])[0]


@router.post(
    "/consults/{consult_id}/notes/{note_id}/amendments",
    status_code=201,
    responses=ERRORS,
    response_model=NotePublic,
)
def amend_note(
    note_id: Id,
    body: NoteAmend,
    consult: CurrentConsult,
    user: CurrentUser,
    db: SessionDep,
    idem: IdempotencyDep,
) -> Response:
    """Amend a signed note: a new draft version linked to it, with the reason (a repeat
    with the same `Idempotency-Key` returns the first answer)."""
    note = service.get_for(db, consult, note_id)
    amended = service.public(db, [service.amend(db, user, consult, note, body)])[0]
    return idem.respond(amended, consult=consult)


@router.get("/consults/{consult_id}/outcomes", responses=ERRORS)
def list_outcomes(
    consult: CurrentConsult, user: CurrentUser, db: SessionDep
) -> list[OutcomePublic]:
    """Outcomes recorded by the clinician, oldest first; the last one is current."""
    consults.record_read(db, user, consult, "outcomes")
    return [OutcomePublic.model_validate(o) for o in repository.outcomes_of(db, [pk(consult)])]


@router.post(
    "/consults/{consult_id}/outcomes",
    status_code=201,
    responses=ERRORS,
    response_model=OutcomePublic,
)
def record_outcome(
    body: OutcomeIn,
    consult: CurrentConsult,
    user: CurrentUser,
    db: SessionDep,
    now: NowDep,
    idem: IdempotencyDep,
) -> Response:
    """Record what happened to the patient (clinicians of the requesting facility); a
    repeat with the same `Idempotency-Key` returns the first answer."""
    outcome = OutcomePublic.model_validate(service.record_outcome(db, user, consult, body, now))
    return idem.respond(outcome, consult=consult)


@router.get("/follow-ups")
def follow_ups(user: CurrentUser, db: SessionDep, now: NowDep) -> list[FollowUpPublic]:
    """Your facility's follow-ups due within three days or overdue, soonest first."""
    return service.follow_ups_for(db, user, now)


#: Who may use each route (``telemed.web.access``): declared, enforced elsewhere.
ACCESS = {
    "search_icd10": ANY_USER,
    "list_notes": CONSULT_READERS,
    "create_note": CONSULT_SIDES,
    "update_note": NOTE_AUTHOR,
    "sign_note": NOTE_AUTHOR,
    "amend_note": NOTE_AUTHOR,
    "list_outcomes": CONSULT_READERS,
    "record_outcome": REQUESTING_CLINICIANS,
    # Selected by the user's facility whatever the role (see docs/RELIABILITY.md).
    "follow_ups": Access(
        *SIGNED_IN, scope="a clinician: their facility's follow-ups; others: none"
    ),
}
