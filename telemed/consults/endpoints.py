"""Consults JSON API."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response
from sqlmodel import Session

from telemed.cases.models import Case
from telemed.cases.schemas import CasePublic
from telemed.consent.schemas import ConsultRequest
from telemed.consults import repository, service
from telemed.consults.deps import ERRORS, CurrentConsult
from telemed.consults.models import Consult, ConsultState
from telemed.consults.schemas import (
    ConsultPage,
    ConsultPublic,
    ConsultSummary,
    ConsultUpdate,
    EventPublic,
    ParticipantPublic,
    ReasonIn,
    SpecialtyPublic,
)
from telemed.db import pk
from telemed.deps import CurrentUser, NowDep, PolicyDep, SessionDep, SettingsDep
from telemed.flows import consult_requested, request_consult
from telemed.idempotency.deps import IdempotencyDep
from telemed.web.access import (
    ANY_USER,
    CLINICIAN,
    CONSULT_READERS,
    REQUESTING_CLINICIANS,
    SIGNED_IN,
    Access,
)

router = APIRouter(tags=["consults"])


def consult_public(db: Session, consult: Consult) -> ConsultPublic:
    case = db.get(Case, consult.case_id)
    assert case is not None
    return ConsultPublic.model_validate(
        {
            **ConsultSummary.model_validate(consult).model_dump(),
            "language": consult.language,
            "history": consult.history,
            "examination": consult.examination,
            "current_treatment": consult.current_treatment,
            "vitals": service.vitals_of(consult),
            "created_by_id": consult.created_by_id,
            "case": CasePublic.model_validate(case),
            "events": [
                EventPublic.model_validate(e) for e in repository.events_of(db, pk(consult))
            ],
            "participants": [
                ParticipantPublic.model_validate(p)
                for p in repository.participants_of(db, pk(consult))
            ],
        }
    )


@router.get("/specialties")
def list_specialties(_user: CurrentUser, db: SessionDep) -> list[SpecialtyPublic]:
    """The specialties a consult can ask for."""
    return [SpecialtyPublic.model_validate(s) for s in repository.list_specialties(db)]


@router.get("/consults", response_model=ConsultPage)
def list_consults(
    user: CurrentUser,
    db: SessionDep,
    settings: SettingsDep,
    page: Annotated[int, Query(ge=1, le=100000)] = 1,
    page_size: Annotated[int | None, Query(ge=1, le=100)] = None,
    state: ConsultState | None = None,
) -> Response:
    """The consults you may see, newest first: your facility's (clinician), those you take
    part in (specialist), or all (coordinator)."""
    result = service.list_visible(
        db, user, page=page, page_size=page_size or settings.page_size, state=state
    )
    page_model = ConsultPage(
        items=[ConsultSummary.model_validate(c) for c in result.items],
        page=result.page,
        page_size=result.page_size,
        has_next=result.has_next,
    )
    # Built and validated above: serialise once instead of letting FastAPI validate again.
    return Response(page_model.model_dump_json(), media_type="application/json")


@router.post("/consults", status_code=201, responses=ERRORS, response_model=ConsultPublic)
def create_consult(
    body: ConsultRequest,
    user: CurrentUser,
    db: SessionDep,
    now: NowDep,
    policy: PolicyDep,
    idem: IdempotencyDep,
) -> Response:
    """Request a consult (or save a draft with `submit: false`) for a new or known patient
    of your facility, with the patient's consent if taken now (`consent`; without a sharing
    consent no offer is made until one is recorded). Clinicians only. With an
    `Idempotency-Key`, a repeat returns the first answer instead of a second consult."""
    consult = request_consult(db, user, body.consult(), body.consent, policy, now)
    return idem.respond(consult_public(db, consult), consult=consult)


@router.get("/consults/{consult_id}", responses=ERRORS)
def get_consult(consult: CurrentConsult, user: CurrentUser, db: SessionDep) -> ConsultPublic:
    """One consult with its patient, lifecycle events and participants."""
    service.record_read(db, user, consult)
    return consult_public(db, consult)


@router.patch("/consults/{consult_id}", responses=ERRORS)
def update_consult(
    body: ConsultUpdate, consult: CurrentConsult, user: CurrentUser, db: SessionDep
) -> ConsultPublic:
    """Edit a draft (clinicians of the requesting facility)."""
    return consult_public(db, service.update_draft(db, user, consult, body))


@router.post("/consults/{consult_id}/submit", responses=ERRORS)
def submit_consult(
    consult: CurrentConsult,
    user: CurrentUser,
    db: SessionDep,
    now: NowDep,
    policy: PolicyDep,
) -> ConsultPublic:
    """Send a draft to the specialists: draft -> requested."""
    service.submit(db, user, consult, now)
    consult_requested(db, consult, policy, now)
    return consult_public(db, consult)


@router.post("/consults/{consult_id}/cancel", responses=ERRORS)
def cancel_consult(
    body: ReasonIn, consult: CurrentConsult, user: CurrentUser, db: SessionDep, now: NowDep
) -> ConsultPublic:
    """Cancel a consult that is no longer needed, saying why."""
    return consult_public(db, service.cancel(db, user, consult, body.reason, now))


@router.get("/consults/{consult_id}/events", responses=ERRORS)
def list_events(consult: CurrentConsult, user: CurrentUser, db: SessionDep) -> list[EventPublic]:
    """The consult's lifecycle, oldest first (append-only)."""
    service.record_read(db, user, consult, "consult_events")
    return [EventPublic.model_validate(e) for e in repository.events_of(db, pk(consult))]


#: Who may use each route (``telemed.web.access``): declared, enforced elsewhere.
ACCESS = {
    "list_specialties": ANY_USER,
    # An admin (or anyone) gets the consults they may see: none, for an admin.
    "list_consults": Access(*SIGNED_IN, scope="only the consults the user may see"),
    "create_consult": Access(CLINICIAN, scope="a clinician of a facility, for it"),
    "get_consult": CONSULT_READERS,
    "update_consult": REQUESTING_CLINICIANS,
    "submit_consult": REQUESTING_CLINICIANS,
    "cancel_consult": REQUESTING_CLINICIANS,
    "list_events": CONSULT_READERS,
}
