"""Offer pages: the specialist's inbox (accept, decline); the coordinators' escalation
queue with manual assignment. (The schedule page is the appointments'.)"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from telemed.deps import CurrentUser, NowDep, PolicyDep, SessionDep, SettingsDep
from telemed.offers import queries, service
from telemed.offers.models import OfferStatus
from telemed.timefmt import parse_local
from telemed.validation import Id
from telemed.web.access import COORDINATORS, SPECIALIST_OWN
from telemed.web.templating import render

router = APIRouter(include_in_schema=False)


@router.get("/offers")
def inbox(request: Request, user: CurrentUser, db: SessionDep) -> HTMLResponse:
    return render(
        request,
        "offers_inbox.html",
        {
            "offers": queries.my_offers(db, user, (OfferStatus.open,)),
            "answered": queries.my_offers(
                db, user, (OfferStatus.declined, OfferStatus.expired, OfferStatus.withdrawn)
            )[:20],
        },
    )


@router.post("/offers/{offer_id}/accept")
def accept(
    offer_id: Id,
    user: CurrentUser,
    db: SessionDep,
    settings: SettingsDep,
    now: NowDep,
    policy: PolicyDep,
    start_now: Annotated[str, Form(max_length=1)] = "",
) -> Response:
    """``start_now``: "1" to start the session now (urgent, emergency), "0" for the
    offered slot, blank for the default (an emergency starts now)."""
    wanted = {"1": True, "0": False}.get(start_now)
    offer = service.accept(db, user, offer_id, now, policy, settings, start_now=wanted)
    return RedirectResponse(f"/consults/{offer.consult_id}", status_code=303)


@router.post("/offers/{offer_id}/decline")
def decline(
    offer_id: Id,
    user: CurrentUser,
    db: SessionDep,
    now: NowDep,
    policy: PolicyDep,
    reason: Annotated[str, Form(max_length=2000)] = "",
) -> Response:
    service.decline(db, user, offer_id, reason, now, policy)
    return RedirectResponse("/offers", status_code=303)


@router.get("/coordinator/escalations")
def escalations(request: Request, user: CurrentUser, db: SessionDep, now: NowDep) -> HTMLResponse:
    """The queue, each consult with whom it may go to: its specialty's specialists, and
    the suggestions when that is nobody (related specialties, anyone on call now)."""
    queue = queries.escalation_queue(db, user)
    found = queries.suggestions(db, {item.specialty for item in queue}, now)
    return render(
        request,
        "coordinator_escalations.html",
        {"queue": queue, "suggestions": {item.consult_id: found[item.specialty] for item in queue}},
    )


@router.post("/coordinator/escalations/{consult_id}/assign")
def assign(
    consult_id: Id,
    user: CurrentUser,
    db: SessionDep,
    settings: SettingsDep,
    specialist_id: Annotated[Id, Form()],
    now: NowDep,
    policy: PolicyDep,
    reason: Annotated[str, Form(max_length=2000)] = "",
    starts_at: Annotated[str, Form(max_length=40)] = "",
) -> Response:
    service.assign_by_hand(
        db,
        user,
        consult_id,
        specialist_id,
        reason,
        now,
        starts_at=parse_local(starts_at, user.timezone) if starts_at.strip() else None,
        policy=policy,
        settings=settings,
    )
    return RedirectResponse("/coordinator/escalations", status_code=303)


#: Who may use each route (``telemed.web.access``): declared, enforced elsewhere.
ACCESS = {
    "inbox": SPECIALIST_OWN,
    "accept": SPECIALIST_OWN,
    "decline": SPECIALIST_OWN,
    "escalations": COORDINATORS,
    "assign": COORDINATORS,
}
