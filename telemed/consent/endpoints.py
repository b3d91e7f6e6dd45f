"""Consent API: ``/api/v1/consults/{id}/consents``."""

from __future__ import annotations

from fastapi import APIRouter

from telemed.consent import service
from telemed.consent.schemas import (
    ConsentIn,
    ConsentList,
    ConsentPublic,
    ConsentStatePublic,
    WithdrawIn,
)
from telemed.consults.deps import ERRORS, CurrentConsult
from telemed.db import pk
from telemed.deps import CurrentUser, NowDep, PolicyDep, SessionDep
from telemed.flows import consent_recorded, consent_withdrawn
from telemed.web.access import CONSULT_READERS, REQUESTING_CLINICIANS

router = APIRouter(tags=["consent"])


def state_public(state: service.ConsentState) -> ConsentStatePublic:
    return ConsentStatePublic(
        sharing=ConsentPublic.model_validate(state.sharing) if state.sharing else None,
        call=ConsentPublic.model_validate(state.call) if state.call else None,
        sharing_given=state.sharing_given,
        call_given=state.call_given,
    )


@router.get("/consults/{consult_id}/consents", responses=ERRORS)
def list_consents(consult: CurrentConsult, user: CurrentUser, db: SessionDep) -> ConsentList:
    """The consent in force (per scope) and every record, withdrawals included."""
    rows = service.records(db, user, consult)
    return ConsentList(
        current=state_public(service.current(db, pk(consult))),
        records=[ConsentPublic.model_validate(r) for r in rows],
    )


@router.post("/consults/{consult_id}/consents", status_code=201, responses=ERRORS)
def record_consent(
    body: ConsentIn,
    consult: CurrentConsult,
    user: CurrentUser,
    db: SessionDep,
    now: NowDep,
    policy: PolicyDep,
) -> ConsentPublic:
    """Record the patient's (or guardian's) consent to share the case (`sharing`) or to a
    call (`call`): verbal, witnessed (`witness_name`) or written (`photo_attachment_id`,
    a photo of the signed form attached to the consult). Clinicians of the requesting
    facility only. A consult waiting for sharing consent is offered at once."""
    row = service.record(db, user, consult, body, now)
    consent_recorded(db, consult, row, policy, now)
    return ConsentPublic.model_validate(row)


@router.post("/consults/{consult_id}/consents/withdraw", status_code=201, responses=ERRORS)
def withdraw_consent(
    body: WithdrawIn, consult: CurrentConsult, user: CurrentUser, db: SessionDep, now: NowDep
) -> ConsentPublic:
    """Record a withdrawal (409 when no consent of that scope is in force). Withdrawing
    sharing consent withdraws the open offers; the assigned specialist is shown it."""
    row = service.withdraw(db, user, consult, body, now)
    consent_withdrawn(db, consult, row, user, now)
    return ConsentPublic.model_validate(row)


#: Who may use each route (``telemed.web.access``): declared, enforced elsewhere.
ACCESS = {
    "list_consents": CONSULT_READERS,
    "record_consent": REQUESTING_CLINICIANS,
    "withdraw_consent": REQUESTING_CLINICIANS,
}
