"""Call pages: the call itself, and ending the consult. (The consult page's calls section
is ``sessions.panels``.)"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlmodel import Session

from telemed.accounts.models import User
from telemed.consults import auth as consult_auth
from telemed.consults.deps import CallConsult, CurrentConsult
from telemed.consults.models import ConsultState, GuestRole
from telemed.db import pk
from telemed.deps import CurrentUser, NowDep, SessionDep, SettingsDep
from telemed.precall import service as precall
from telemed.sessions import auth, guests, repository, service
from telemed.sessions.panels import MEDIA_LABELS
from telemed.validation import Id
from telemed.web.access import CALL_INVITERS, CALL_PARTICIPANTS, SPECIALIST, Access
from telemed.web.templating import render

router = APIRouter(include_in_schema=False)

#: States in which the specialist may end the consult from the call page (``in_session``
#: when both sides are in the room; the button is shown from ``scheduled`` on, the page
#: having been opened before the other side joined).
ENDABLE_STATES = frozenset({ConsultState.scheduled, ConsultState.in_session})


def start_profile(db: Session, user: User, now: datetime) -> str | None:
    """The sending profile the pre-call test recommends for this user's link, if any."""
    profile = precall.recommended_profile(db, user, now)
    return profile if profile in MEDIA_LABELS else None


@router.get("/consults/{consult_id}/call")
def call_page(
    request: Request,
    consult: CallConsult,
    user: CurrentUser,
    db: SessionDep,
    settings: SettingsDep,
    now: NowDep,
) -> HTMLResponse:
    """The call: refused (403, audited) for non-participants, 409 for a closed consult or
    outside the call window. A call guest (an invited interpreter or second specialist)
    gets the call and the consult's summary only: no thread, no photos, no record."""
    role = auth.ensure_call_participant(db, user, consult)
    service.ensure_call_open_now(db, settings, consult, now)
    consult_id = pk(consult)
    guest = (
        None
        if consult_auth.can_view(db, user, consult)
        else consult_auth.guest_role(db, user, consult)
    )
    return render(
        request,
        "call.html",
        {
            "consult": consult,
            "role": role,
            "guest": guest,
            "profile": start_profile(db, user, now),
            "can_end": role == "specialist" and ConsultState(consult.state) in ENDABLE_STATES,
            "last_message": 0 if guest else repository.last_message_id(db, consult_id),
            "last_attachment": 0 if guest else repository.last_attachment_id(db, consult_id),
        },
    )


@router.post("/consults/{consult_id}/call/end")
def end_consult(
    consult: CurrentConsult, user: CurrentUser, db: SessionDep, now: NowDep
) -> Response:
    """ "End consult" (call page, or consult page after a held session): the specialist
    completes the consult (403 for the others on the call, 409 when no session was held)."""
    service.end_consult(db, user, consult, now)
    return RedirectResponse(f"/consults/{consult.id}", status_code=303)


@router.post("/consults/{consult_id}/guests")
def invite_guest(
    consult: CurrentConsult,
    user: CurrentUser,
    db: SessionDep,
    now: NowDep,
    user_id: Annotated[Id, Form()],
    role: Annotated[GuestRole, Form()] = GuestRole.interpreter,
) -> Response:
    """The consult page's "Invite to the call" form (coordinator or assigned specialist)."""
    guests.invite(db, user, consult, user_id, role, now)
    return RedirectResponse(f"/consults/{consult.id}#guests", status_code=303)


@router.post("/consults/{consult_id}/guests/{guest_id}/revoke")
def revoke_guest(
    guest_id: Id, consult: CurrentConsult, user: CurrentUser, db: SessionDep, now: NowDep
) -> Response:
    """ "Withdraw invitation" on the consult page."""
    guests.revoke(db, user, consult, guest_id, now)
    return RedirectResponse(f"/consults/{consult.id}#guests", status_code=303)


#: Who may use each route (``telemed.web.access``): declared, enforced elsewhere.
ACCESS = {
    "call_page": CALL_PARTICIPANTS,
    "end_consult": Access(SPECIALIST, scope="the consult's assigned specialist, in its call"),
    "invite_guest": CALL_INVITERS,
    "revoke_guest": CALL_INVITERS,
}
