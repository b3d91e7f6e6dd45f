"""Call pages: the call itself, and the calls panel of the consult page."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlmodel import Session

from telemed.accounts import repository as accounts_repository
from telemed.accounts.models import User
from telemed.consults import auth as consult_auth
from telemed.consults.models import Consult, ConsultState
from telemed.deps import CurrentUser, NowDep, SessionDep, SettingsDep
from telemed.errors import TelemedError
from telemed.precall import service as precall
from telemed.sessions import auth, repository, service
from telemed.sessions.models import CallEventKind
from telemed.sessions.schemas import CallEventPublic, CallSessionPublic
from telemed.settings import Settings
from telemed.web.templating import render

router = APIRouter(include_in_schema=False)

MEDIA_LABELS = {"normal": "video", "low": "low-bandwidth video", "audio-only": "audio only"}


def _page_consult(consult_id: int, user: CurrentUser, db: SessionDep) -> Consult:
    return consult_auth.get_visible_consult(db, user, consult_id)


PageConsult = Annotated[Consult, Depends(_page_consult)]


def describe(event: CallEventPublic) -> str:
    """A line of the consult page for one call event."""
    detail = event.detail
    match event.kind:
        case CallEventKind.joined:
            return "rejoined the call" if detail.get("rejoined") else "joined the call"
        case CallEventKind.left:
            gone = detail.get("reason") == "gone"
            return "dropped out and did not come back" if gone else "left the call"
        case CallEventKind.reconnecting:
            return "connection dropped; reconnecting"
        case CallEventKind.reconnected:
            return "reconnected"
        case CallEventKind.media:
            mode = str(detail.get("mode", ""))
            return f"switched to {MEDIA_LABELS.get(mode, mode)}"
        case CallEventKind.quality:
            stats = detail.get("stats")
            if not isinstance(stats, dict):
                return "quality report"
            parts = []
            if "rtt_ms" in stats:
                parts.append(f"round trip {stats['rtt_ms']:.0f} ms")
            if "loss" in stats:
                parts.append(f"loss {100 * float(stats['loss']):.1f}%")
            if "kbps_in" in stats:
                parts.append(f"{stats['kbps_in']:.0f} kbit/s in")
            return "quality: " + (", ".join(parts) or "reported")
        case CallEventKind.ended:
            return "call ended"
        case CallEventKind.photo:
            return f"shared a photo: {detail.get('filename', '')}".strip()
    return str(event.kind)


@dataclass(frozen=True, slots=True)
class CallPanel:
    """What the consult page shows about calls: the join link and the call records."""

    can_join: bool
    can_end: bool  # the specialist may complete the consult (a session was held)
    sessions: list[CallSessionPublic]
    names: dict[int, str]
    photos: dict[int, int]  # thread message id of a shared photo -> its attachment id

    def line(self, event: CallEventPublic) -> str:
        who = self.names.get(event.user_id, "someone") if event.user_id is not None else ""
        return f"{who} {describe(event)}".strip()

    def photo(self, event: CallEventPublic) -> int | None:
        """The attachment of a ``photo`` event (None while its upload has not finished)."""
        message_id = event.detail.get("message_id")
        return self.photos.get(message_id) if isinstance(message_id, int) else None


def panel(
    db: Session, settings: Settings, user: User, consult: Consult, now: datetime
) -> CallPanel:
    sessions = service.sessions_public(db, consult)
    ids = {e.user_id for s in sessions for e in s.events if e.user_id is not None}
    people = accounts_repository.users_by_id(db, ids)
    shared = [
        e.detail["message_id"]
        for s in sessions
        for e in s.events
        if e.kind == CallEventKind.photo and isinstance(e.detail.get("message_id"), int)
    ]
    photos = repository.attachments_of_messages(db, shared)
    role = auth.call_role(db, user, consult)
    can_join = role is not None
    if can_join:
        try:
            service.ensure_call_open_now(db, settings, consult, now)
        except TelemedError:
            can_join = False
    can_end = role == "specialist" and service.can_end(db, consult)
    return CallPanel(
        can_join=can_join,
        can_end=can_end,
        sessions=sessions,
        names={i: u.full_name for i, u in people.items()},
        photos={m: a.id or 0 for m, a in photos.items()},
    )


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
    consult: PageConsult,
    user: CurrentUser,
    db: SessionDep,
    settings: SettingsDep,
    now: NowDep,
) -> HTMLResponse:
    """The call: refused (403, audited) for non-participants, 409 for a closed consult."""
    role = auth.ensure_call_participant(db, user, consult)
    service.ensure_call_open_now(db, settings, consult, now)
    consult_id = consult.id or 0
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
def end_consult(consult: PageConsult, user: CurrentUser, db: SessionDep, now: NowDep) -> Response:
    """ "End consult" (call page, or consult page after a held session): the specialist
    completes the consult (403 for the others on the call, 409 when no session was held)."""
    service.end_consult(db, user, consult, now)
    return RedirectResponse(f"/consults/{consult.id}", status_code=303)
