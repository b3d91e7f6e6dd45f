"""Live sessions JSON API (call tickets, session records) and the signalling WebSocket."""

from __future__ import annotations

from fastapi import APIRouter, Request, WebSocket

from signaling.asgi import serve_starlette
from telemed.consults import service as consults
from telemed.consults.endpoints import ERRORS, CurrentConsult
from telemed.deps import CurrentUser, SessionDep, SettingsDep
from telemed.sessions import service
from telemed.sessions.hub import HubRuntime
from telemed.sessions.schemas import CallSessionPublic, CallTicket

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
    consult: CurrentConsult,
    user: CurrentUser,
    db: SessionDep,
    settings: SettingsDep,
) -> CallTicket:
    """A ticket to join the consult's call: a short-lived single-use signalling token, the
    WebSocket URL and the ICE servers (with time-limited TURN credentials).

    Only the clinicians of the consult's facility, its assigned specialist and invited
    observers get one (403 for others, audited); only while the consult is open (409 for a
    draft, cancelled or closed consult). Fetch a new ticket for every (re)join.
    """
    return service.mint_ticket(db, settings, user, consult, ws_url=signal_url(request))


@router.get("/consults/{consult_id}/sessions", responses=ERRORS)
def list_sessions(
    consult: CurrentConsult, user: CurrentUser, db: SessionDep
) -> list[CallSessionPublic]:
    """The consult's calls, oldest first, with their events (joined, left, reconnecting,
    reconnected, media mode, quality summary, ended), start, end and duration."""
    consults.record_read(db, user, consult, "call_sessions")
    return service.sessions_public(db, consult)


@ws_router.websocket(SIGNAL_PATH)
async def signal(websocket: WebSocket) -> None:
    """The signalling protocol (docs/signaling-protocol.md); the token authenticates."""
    runtime: HubRuntime = websocket.app.state.signaling
    await serve_starlette(runtime.hub, websocket)
