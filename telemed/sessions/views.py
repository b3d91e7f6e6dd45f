"""Call pages: the call itself, and ending the consult. (The consult page's calls section
is ``sessions.panels``.)"""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlmodel import Session

from telemed.accounts.models import User
from telemed.consults.deps import CurrentConsult
from telemed.consults.models import ConsultState
from telemed.db import pk
from telemed.deps import CurrentUser, NowDep, SessionDep, SettingsDep
from telemed.precall import service as precall
from telemed.sessions import auth, repository, service
from telemed.sessions.panels import MEDIA_LABELS
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
    consult: CurrentConsult,
    user: CurrentUser,
    db: SessionDep,
    settings: SettingsDep,
    now: NowDep,
) -> HTMLResponse:
    """The call: refused (403, audited) for non-participants, 409 for a closed consult."""
    role = auth.ensure_call_participant(db, user, consult)
    service.ensure_call_open_now(db, settings, consult, now)
    consult_id = pk(consult)
    return render(
        request,
        "call.html",
        {
            "consult": consult,
            "role": role,
            "profile": start_profile(db, user, now),
            "can_end": role == "specialist" and ConsultState(consult.state) in ENDABLE_STATES,
            "last_message": repository.last_message_id(db, consult_id),
            "last_attachment": repository.last_attachment_id(db, consult_id),
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
