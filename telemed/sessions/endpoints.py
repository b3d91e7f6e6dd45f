"""Live sessions JSON API (call tickets, session records) and the signalling WebSocket."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, Response, WebSocket

from signaling.asgi import serve_starlette
from telemed.consults import service as consults
from telemed.consults.deps import ERRORS, CallConsult, CurrentConsult
from telemed.deps import CurrentUser, NowDep, SessionDep, SettingsDep
from telemed.sessions import guests, service
from telemed.sessions.hub import HubRuntime
from telemed.sessions.schemas import (
    CallFeed,
    CallGuestIn,
    CallGuestPublic,
    CallSessionPublic,
    CallTicket,
    PhotoShare,
    PhotoShareIn,
)
from telemed.validation import Id
from telemed.web.access import CALL_INVITERS, CALL_PARTICIPANTS, CONSULT_READERS

SIGNAL_PATH = "/ws/signal"

router = APIRouter(tags=["sessions"])
ws_router = APIRouter()


def signal_url(request: Request) -> str:
    """The signalling WebSocket on the host the client used (ws, or wss behind TLS)."""
    scheme = "wss" if request.url.scheme == "https" else "ws"
    host = request.headers.get("host") or request.url.netloc
    return f"{scheme}://{host}{SIGNAL_PATH}"


@router.post("/consults/{consult_id}/call", responses=ERRORS)
def start_call(
    request: Request,
    consult: CallConsult,
    user: CurrentUser,
    db: SessionDep,
    settings: SettingsDep,
    now: NowDep,
) -> CallTicket:
    """A ticket to join the consult's call: a short-lived single-use signalling token, the
    WebSocket URL and the ICE servers (with time-limited TURN credentials).

    Only the clinicians of the consult's facility, its assigned specialist, invited
    observers and call guests (an interpreter or a second specialist, while invited) get
    one. Anyone who cannot see the consult gets 404 (it does not exist for
    them); those who may read it but not join its call (an offered specialist, a coordinator)
    get 403; both audited. Only while the consult is open (409 for a draft, cancelled or
    closed consult). Fetch a new ticket for every (re)join.
    """
    return service.mint_ticket(db, settings, user, consult, ws_url=signal_url(request), now=now)


@router.get("/consults/{consult_id}/guests", responses=ERRORS)
def list_guests(consult: CurrentConsult, db: SessionDep) -> list[CallGuestPublic]:
    """Who is invited into the consult's call (an interpreter, a second specialist), revoked
    invitations too (``active: false``)."""
    return [guests.public(g, u) for g, u in guests.guests(db, consult)]


@router.post("/consults/{consult_id}/guests", status_code=201, responses=ERRORS)
def invite_guest(
    body: CallGuestIn,
    response: Response,
    consult: CurrentConsult,
    user: CurrentUser,
    db: SessionDep,
    now: NowDep,
) -> CallGuestPublic:
    """Invite an interpreter (an active clinician or specialist) or a second specialist (a
    verified one) into the consult's call: 201, or 200 with the standing invitation on a
    retry. For coordinators and the assigned specialist (403 otherwise); 422 naming
    `user_id` for someone who does not fit; 409 for a consult with no call. Audited; the
    invitee is notified with the link to the call."""
    guest, created = guests.invite(db, user, consult, body.user_id, body.role, now)
    if not created:
        response.status_code = 200
    return guests.public(guest, guests.invitee(db, guest))


@router.post("/consults/{consult_id}/guests/{guest_id}/revoke", responses=ERRORS)
def revoke_guest(
    guest_id: Id, consult: CurrentConsult, user: CurrentUser, db: SessionDep, now: NowDep
) -> CallGuestPublic:
    """Withdraw an invitation: its call tickets stop at once (the row stays, with
    `revoked_at`; a repeat changes nothing). Audited."""
    guest = guests.revoke(db, user, consult, guest_id, now)
    return guests.public(guest, guests.invitee(db, guest))


@router.get("/consults/{consult_id}/sessions", responses=ERRORS)
def list_sessions(
    consult: CurrentConsult, user: CurrentUser, db: SessionDep
) -> list[CallSessionPublic]:
    """The consult's calls, oldest first, with their events (joined, left, reconnecting,
    reconnected, media mode, quality summary, ended), start, end and duration."""
    consults.record_read(db, user, consult, "call_sessions")
    return service.sessions_public(db, consult)


@router.post("/consults/{consult_id}/call/photos", status_code=201, responses=ERRORS)
def share_photo(
    body: PhotoShareIn,
    consult: CurrentConsult,
    user: CurrentUser,
    db: SessionDep,
    settings: SettingsDep,
) -> PhotoShare:
    """Share a photo in the call, step 1: the thread message "shared a photo during the call"
    and the call's `photo` event. Step 2: upload the photo (`POST /consults/{id}/uploads`)
    with the answer's `message_id`; step 3: tell the others (data channel) the attachment id.

    For the call's participants (403 otherwise); 422 for a file that is not a JPEG, PNG or
    HEIC photo or is over the upload limit (checked before anything is written).
    """
    return service.share_photo(db, settings, user, consult, body)


@router.get("/consults/{consult_id}/call/feed", responses=ERRORS)
def call_feed(
    consult: CurrentConsult,
    user: CurrentUser,
    db: SessionDep,
    after_message: Annotated[int, Query(ge=0, description="the last message id you have")] = 0,
    after_attachment: Annotated[
        int, Query(ge=0, description="the last attachment id you have")
    ] = 0,
) -> CallFeed:
    """What reached the consult's thread since the given ids (at most 100 of each): the call
    page reads this while its data channel is down, so the conversation goes on."""
    consults.record_read(db, user, consult, "thread")
    return service.feed(db, consult, after_message, after_attachment)


@ws_router.websocket(SIGNAL_PATH)
async def signal(websocket: WebSocket) -> None:
    """The signalling protocol (docs/signaling-protocol.md); the token authenticates."""
    runtime: HubRuntime = websocket.app.state.signaling
    await serve_starlette(runtime.hub, websocket)


#: Who may use each route (``telemed.web.access``): declared, enforced elsewhere.
ACCESS = {
    "start_call": CALL_PARTICIPANTS,
    "list_guests": CONSULT_READERS,
    "invite_guest": CALL_INVITERS,
    "revoke_guest": CALL_INVITERS,
    "list_sessions": CONSULT_READERS,
    "share_photo": CALL_PARTICIPANTS,
    "call_feed": CONSULT_READERS,
}
