"""Call pages: the call itself, and the calls panel of the consult page."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse
from sqlmodel import Session

from telemed.accounts import repository as accounts_repository
from telemed.accounts.models import User
from telemed.consults import auth as consult_auth
from telemed.consults.models import Consult
from telemed.db import utcnow
from telemed.deps import CurrentUser, SessionDep
from telemed.errors import TelemedError
from telemed.sessions import auth, service
from telemed.sessions.models import CallEventKind
from telemed.sessions.schemas import CallEventPublic, CallSessionPublic
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
    return str(event.kind)


@dataclass(frozen=True, slots=True)
class CallPanel:
    """What the consult page shows about calls: the join link and the call records."""

    can_join: bool
    sessions: list[CallSessionPublic]
    names: dict[int, str]

    def line(self, event: CallEventPublic) -> str:
        who = self.names.get(event.user_id, "someone") if event.user_id is not None else ""
        return f"{who} {describe(event)}".strip()


def panel(db: Session, user: User, consult: Consult) -> CallPanel:
    sessions = service.sessions_public(db, consult)
    ids = {e.user_id for s in sessions for e in s.events if e.user_id is not None}
    people = accounts_repository.users_by_id(db, ids)
    can_join = auth.call_role(db, user, consult) is not None
    if can_join:
        try:
            auth.ensure_call_open(consult, now=utcnow())
        except TelemedError:
            can_join = False
    return CallPanel(
        can_join=can_join,
        sessions=sessions,
        names={i: u.full_name for i, u in people.items()},
    )


@router.get("/consults/{consult_id}/call")
def call_page(
    request: Request, consult: PageConsult, user: CurrentUser, db: SessionDep
) -> HTMLResponse:
    """The call: refused (403, audited) for non-participants, 409 for a closed consult."""
    role = auth.ensure_call_participant(db, user, consult)
    auth.ensure_call_open(consult, now=utcnow())
    return render(request, "call.html", {"consult": consult, "role": role})
