"""Offers JSON API: a specialist's inbox, accept, decline; the coordinators' escalation
queue and manual assignment."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from telemed.deps import CurrentUser, NowDep, PolicyDep, SessionDep, SettingsDep
from telemed.offers import queries, service
from telemed.offers.models import OfferStatus
from telemed.offers.schemas import (
    AssignIn,
    DeclineIn,
    EscalatedPublic,
    OfferPublic,
    OfferWithConsult,
)
from telemed.validation import Id
from telemed.web.access import COORDINATORS, SPECIALIST_OWN
from telemed.web.errors import error_responses

router = APIRouter(tags=["offers"])

ERRORS = error_responses(401, 403, 404, 409, 422)


@router.get("/offers", responses=ERRORS)
def my_offers(
    user: CurrentUser,
    db: SessionDep,
    status: Annotated[list[OfferStatus] | None, Query()] = None,
) -> list[OfferWithConsult]:
    """Your offers, newest first; open ones by default (specialists)."""
    return queries.my_offers(db, user, tuple(status or [OfferStatus.open]))


@router.get("/schedule", responses=ERRORS)
def my_schedule(user: CurrentUser, db: SessionDep) -> list[OfferWithConsult]:
    """The consults you accepted or were assigned, with their slot (specialists)."""
    return queries.my_offers(db, user, queries.SCHEDULE)


@router.post("/offers/{offer_id}/accept", responses=ERRORS)
def accept(
    offer_id: Id,
    user: CurrentUser,
    db: SessionDep,
    settings: SettingsDep,
    now: NowDep,
    policy: PolicyDep,
    start_now: bool | None = None,
) -> OfferPublic:
    """Accept an open offer. The first specialist to accept wins; an expired, withdrawn or
    already answered offer is refused with 409. A live consult is booked at the offer's
    slot; with ``start_now=true`` (urgent and emergency consults; 422 otherwise) from now,
    so that its call opens at once. An emergency starts now unless ``start_now=false``."""
    return OfferPublic.model_validate(
        service.accept(db, user, offer_id, now, policy, settings, start_now=start_now)
    )


@router.post("/offers/{offer_id}/decline", responses=ERRORS)
def decline(
    offer_id: Id,
    body: DeclineIn,
    user: CurrentUser,
    db: SessionDep,
    now: NowDep,
    policy: PolicyDep,
) -> OfferPublic:
    """Decline an open offer, saying why; the next candidate gets an offer."""
    offer = service.decline(db, user, offer_id, body.reason, now, policy)
    return OfferPublic.model_validate(offer)


@router.get("/escalations", responses=ERRORS)
def escalations(user: CurrentUser, db: SessionDep) -> list[EscalatedPublic]:
    """Consults nobody took in time, oldest escalation first (coordinators)."""
    return queries.escalation_queue(db, user)


@router.post("/consults/{consult_id}/assign", responses=ERRORS)
def assign(
    consult_id: Id,
    body: AssignIn,
    user: CurrentUser,
    db: SessionDep,
    settings: SettingsDep,
    now: NowDep,
    policy: PolicyDep,
) -> OfferPublic:
    """Assign a waiting or escalated consult to a verified specialist by hand
    (coordinators); a live one is booked at ``starts_at`` or the next free slot."""
    offer = service.assign_by_hand(
        db,
        user,
        consult_id,
        body.specialist_id,
        body.reason,
        now,
        starts_at=body.starts_at,
        policy=policy,
        settings=settings,
    )
    return OfferPublic.model_validate(offer)


#: Who may use each route (``telemed.web.access``): declared, enforced elsewhere.
ACCESS = {
    "my_offers": SPECIALIST_OWN,
    "my_schedule": SPECIALIST_OWN,
    "accept": SPECIALIST_OWN,
    "decline": SPECIALIST_OWN,
    "escalations": COORDINATORS,
    "assign": COORDINATORS,
}
