"""The calls section of the consult page (``templates/_call.html``): the join link, the
"end consult" button and the record of each call. Not a view: the consult page's builder
imports it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlmodel import Session

from telemed.accounts import repository as accounts_repository
from telemed.accounts.models import User
from telemed.consults import auth as consult_auth
from telemed.consults.models import CallGuest, Consult, GuestRole
from telemed.db import pk
from telemed.errors import ConsentRequired, TelemedError
from telemed.i18n import gettext, ngettext
from telemed.labels import label
from telemed.sessions import auth, guests, repository, service
from telemed.sessions.models import CallEventKind
from telemed.sessions.schemas import CallEventPublic, CallSessionPublic
from telemed.settings import Settings
from telemed.timefmt import format_number

MEDIA_LABELS = {"normal": "video", "low": "low-bandwidth video", "audio-only": "audio only"}


def describe(event: CallEventPublic) -> str:
    """A line of the consult page for one call event, in the reader's language."""
    detail = event.detail
    match event.kind:
        case CallEventKind.joined:
            return (
                gettext("rejoined the call")
                if detail.get("rejoined")
                else gettext("joined the call")
            )
        case CallEventKind.left:
            gone = detail.get("reason") == "gone"
            return (
                gettext("dropped out and did not come back") if gone else gettext("left the call")
            )
        case CallEventKind.reconnecting:
            return gettext("connection dropped; reconnecting")
        case CallEventKind.reconnected:
            return gettext("reconnected")
        case CallEventKind.media:
            mode = str(detail.get("mode", ""))
            return gettext("switched to %(mode)s") % {"mode": label(MEDIA_LABELS.get(mode, mode))}
        case CallEventKind.quality:
            stats = detail.get("stats")
            if not isinstance(stats, dict):
                return gettext("quality report")
            parts = []
            if "rtt_ms" in stats:
                parts.append(
                    gettext("round trip %(ms)s ms") % {"ms": format_number(stats["rtt_ms"], 0)}
                )
            if "loss" in stats:
                parts.append(
                    gettext("loss %(percent)s%%")
                    % {"percent": format_number(100 * float(stats["loss"]), 1)}
                )
            if "kbps_in" in stats:
                parts.append(
                    gettext("%(kbps)s kbit/s in") % {"kbps": format_number(stats["kbps_in"], 0)}
                )
            return gettext("quality: %(figures)s") % {
                "figures": ", ".join(parts) or gettext("reported")
            }
        case CallEventKind.ended:
            return gettext("call ended")
        case CallEventKind.photo:
            return (
                gettext("shared a photo: %(name)s") % {"name": detail.get("filename", "")}
            ).strip()
    return str(event.kind)


def _span(values: list[float], digits: int) -> str:
    """'120', or '120' and '480' joined by an en dash: the range of a figure over a call's
    quality reports."""
    low, high = format_number(min(values), digits), format_number(max(values), digits)
    return low if low == high else low + "\u2013" + high


def quality_summary(events: list[CallEventPublic]) -> str | None:
    """A call's quality reports (one every 30 s, 120 in an hour) as one line of ranges; a
    single report as its own line. None without any."""
    reports = [e for e in events if e.kind == CallEventKind.quality]
    if len(reports) <= 1:
        return describe(reports[0]) if reports else None
    stats = [e.detail["stats"] for e in reports if isinstance(e.detail.get("stats"), dict)]

    def figures(name: str, scale: float = 1) -> list[float]:
        return [scale * float(s[name]) for s in stats if isinstance(s.get(name), int | float)]

    parts = []
    if rtt := figures("rtt_ms"):
        parts.append(gettext("round trip %(ms)s ms") % {"ms": _span(rtt, 0)})
    if loss := figures("loss", 100):
        parts.append(gettext("loss %(percent)s%%") % {"percent": _span(loss, 1)})
    if kbps := figures("kbps_in"):
        parts.append(gettext("%(kbps)s kbit/s in") % {"kbps": _span(kbps, 0)})
    return ngettext(
        "%(count)s quality report: %(figures)s",
        "%(count)s quality reports: %(figures)s",
        len(reports),
    ) % {"count": len(reports), "figures": ", ".join(parts) or gettext("reported")}


@dataclass(frozen=True, slots=True)
class CallRecord:
    """One call as the consult page lists it: its events without the quality reports,
    which ``quality`` folds into one line (shown where the first report was)."""

    session: CallSessionPublic
    events: list[CallEventPublic]
    quality: str | None
    quality_at: int  # index in ``events`` before which the quality line goes


def record_of(call: CallSessionPublic) -> CallRecord:
    events = [e for e in call.events if e.kind != CallEventKind.quality]
    first = next((i for i, e in enumerate(call.events) if e.kind == CallEventKind.quality), None)
    at = (
        len(events)
        if first is None
        else sum(1 for e in call.events[:first] if e.kind != CallEventKind.quality)
    )
    return CallRecord(call, events, quality_summary(call.events), at)


@dataclass(frozen=True, slots=True)
class CallPanel:
    """What the consult page shows about calls: the join link and the call records."""

    can_join: bool
    needs_consent: bool  # a participant, but the patient's call consent is not in force
    can_end: bool  # the specialist may complete the consult (a session was held)
    sessions: list[CallSessionPublic]
    names: dict[int, str]
    photos: dict[int, int]  # thread message id of a shared photo -> its attachment id
    guests: list[tuple[CallGuest, User]]  # invitations into the call, revoked ones too
    can_invite: bool  # a coordinator or the assigned specialist, while the call may be held
    candidates: dict[GuestRole, list[User]]  # whom the invitation form offers, per role

    @property
    def records(self) -> list[CallRecord]:
        return [record_of(s) for s in self.sessions]

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
    needs_consent = False
    if can_join:
        try:
            service.ensure_call_open_now(db, settings, consult, now)
        except ConsentRequired:
            can_join, needs_consent = False, True
        except TelemedError:
            can_join = False
    can_end = role == "specialist" and service.can_end(db, consult)
    can_invite = consult_auth.can_invite(db, user, consult) and consult.state not in (
        auth.NO_CALL_STATES
    )
    return CallPanel(
        can_join=can_join,
        needs_consent=needs_consent,
        can_end=can_end,
        sessions=sessions,
        names={i: u.full_name for i, u in people.items()},
        photos={m: pk(a) for m, a in photos.items()},
        guests=guests.guests(db, consult),
        can_invite=can_invite,
        candidates=guests.candidates(db, consult, now) if can_invite else {},
    )
