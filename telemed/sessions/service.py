"""Call tickets (join token + ICE servers) and the session record fed by the hub's events.

Rooms and participants of the signalling hub are derived from our ids: the room of consult 42
is ``consult-42`` and user 17 is ``u-17`` in it. ``record_event`` maps them back.

The call moves its consult: when both sides (a clinician and the specialist) are in the room a
``scheduled`` consult becomes ``in_session``; when the call ends (the room is empty, after the
grace period of anyone who dropped) it goes back to ``scheduled``, unless the specialist ended
the consult from the call page (``completed``). Other states (e.g. ``accepted``: an
asynchronous consult whose participants talk anyway) are left alone.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import time
from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine
from sqlmodel import Session

from signaling.events import SessionEvent
from signaling.tokens import capacity_for, mint_token
from signaling.turn import TurnConfig, ice_servers
from telemed.accounts.models import User
from telemed.attachments import media
from telemed.attachments import service as attachments
from telemed.attachments.models import AttachmentKind
from telemed.audit import service as audit
from telemed.audit.models import AuditAction
from telemed.consent import service as consent
from telemed.consults import reasons
from telemed.consults import repository as consults_repository
from telemed.consults import service as consults
from telemed.consults.models import Consult, ConsultState
from telemed.db import pk
from telemed.errors import Conflict, Forbidden, ValidationFailed
from telemed.i18n import N_
from telemed.messages import service as messages
from telemed.sessions import auth, repository
from telemed.sessions.models import CallEventKind, CallSession, CallSessionEvent
from telemed.sessions.schemas import (
    CallEventPublic,
    CallFeed,
    CallSessionPublic,
    CallTicket,
    FeedAttachment,
    FeedMessage,
    IceServerPublic,
    PhotoShare,
    PhotoShareIn,
)
from telemed.settings import Settings
from telemed.uow import Units

log = logging.getLogger(__name__)

ROOM_PREFIX = "consult-"
PARTICIPANT_PREFIX = "u-"


def room_of(consult_id: int) -> str:
    return f"{ROOM_PREFIX}{consult_id}"


def consult_id_of(room: str) -> int | None:
    number = room.removeprefix(ROOM_PREFIX)
    return int(number) if room.startswith(ROOM_PREFIX) and number.isdigit() else None


def participant_of(user_id: int) -> str:
    return f"{PARTICIPANT_PREFIX}{user_id}"


def user_id_of(participant: str | None) -> int | None:
    if participant is None or not participant.startswith(PARTICIPANT_PREFIX):
        return None
    number = participant.removeprefix(PARTICIPANT_PREFIX)
    return int(number) if number.isdigit() else None


def signaling_secret(settings: Settings) -> str:
    """The hub's token key, derived from the application secret (never the secret itself)."""
    key = settings.effective_secret().encode("utf-8")
    return hmac.new(key, b"telemed/signaling/v1", hashlib.sha256).hexdigest()


def ice_servers_for(settings: Settings, participant: str) -> list[IceServerPublic]:
    """STUN (if configured) and TURN with a time-limited credential (if configured)."""
    if settings.turn_host and settings.turn_secret:
        config = TurnConfig(
            secret=settings.turn_secret,
            host=settings.turn_host,
            port=settings.turn_port,
            tls_port=settings.turn_tls_port,
            tls_host=settings.turn_tls_host,
            stun_urls=tuple(settings.stun_urls) if settings.stun_urls else None,
            ttl_s=settings.turn_ttl_seconds,
        )
        return [IceServerPublic.model_validate(s) for s in ice_servers(config, participant)]
    if settings.stun_urls:
        return [IceServerPublic(urls=list(settings.stun_urls))]
    return []


def ensure_call_open_now(
    session: Session, settings: Settings, consult: Consult, now: datetime
) -> None:
    """409 unless the consult's call may be joined now: around its booked appointment
    (``call_open_before_minutes`` before to ``call_open_after_minutes`` after), or at any
    time while it has none; and only with the patient's consent to a call in force (409
    ``consent_required`` otherwise: the call page, the ticket and the join link obey it)."""
    consent.ensure_call(session, consult)
    auth.ensure_call_open(
        consult,
        now=now,
        appointment=auth.booked_appointment(session, consult),
        open_before=timedelta(minutes=settings.call_open_before_minutes),
        open_after=timedelta(minutes=settings.call_open_after_minutes),
    )


def mint_ticket(
    session: Session,
    settings: Settings,
    user: User,
    consult: Consult,
    *,
    ws_url: str,
    now: datetime,
) -> CallTicket:
    """A single-use join token for the consult's call, for one of its participants."""
    role = auth.ensure_call_participant(session, user, consult)
    ensure_call_open_now(session, settings, consult, now)
    consult_id = pk(consult)
    third = repository.has_observer(session, consult_id) or consults_repository.has_active_guest(
        session, consult_id
    )
    roles = [role, "observer"] if third else [role]
    capacity = capacity_for(roles)
    participant = participant_of(pk(user))
    # The signalling hub checks the token against its own (system) clock.
    issued = time.time()
    ttl = settings.call_token_ttl_seconds
    token = mint_token(
        signaling_secret(settings),
        room=room_of(consult_id),
        participant=participant,
        name=user.full_name[:200],
        role=role,
        capacity=capacity,
        ttl_s=ttl,
        now=issued,
    )
    audit.record(
        session,
        user,
        AuditAction.create,
        "call_token",
        consult_id,
        case_id=consult.case_id,
        consult_id=consult_id,
        detail=f"role {role}",
    )
    session.flush()
    return CallTicket(
        consult_id=consult_id,
        room=room_of(consult_id),
        participant=participant,
        name=user.full_name,
        role=role,
        capacity=capacity,
        token=token,
        expires_at=datetime.fromtimestamp(issued + ttl, UTC),
        ws_url=ws_url,
        ice_servers=ice_servers_for(settings, participant),
        thread_url=f"/consults/{consult_id}#thread",
    )


def record_event(engine: Engine, event: SessionEvent) -> CallSessionEvent | None:
    """Store one hub event on its consult's call record, in a unit of work of its own (the
    hub's recorder is a scope owner: no request is behind it).

    Blocking (database I/O): the hub's callback runs it in a worker thread. Events for rooms
    or participants that are not ours (e.g. a test room on a shared hub) are ignored.
    """
    consult_id = consult_id_of(event.room)
    if consult_id is None:
        log.warning("session event for unknown room %r ignored", event.room)
        return None
    kind = CallEventKind(event.kind)
    with Units(engine).one() as session:
        consult = consults_repository.get_consult(session, consult_id)
        if consult is None:
            log.warning("session event for missing consult %s ignored", consult_id)
            return None
        call = repository.open_session(session, consult_id)
        if call is None:
            if kind == CallEventKind.ended:
                return None  # nothing open to end (e.g. recorded by another instance)
            call = CallSession(consult_id=consult_id, room=event.room, started_at=event.at)
            session.add(call)
            session.flush()
            audit.record(
                session,
                None,
                AuditAction.create,
                "call_session",
                pk(call),
                case_id=consult.case_id,
                consult_id=consult_id,
                detail=f"first joined: {event.participant or ''}",
            )
        row = CallSessionEvent(
            call_session_id=pk(call),
            consult_id=consult_id,
            kind=kind,
            user_id=user_id_of(event.participant),
            role=(event.role or None) and str(event.role)[:16],
            signal_session=event.session,
            at=event.at,
            detail=json.dumps(dict(event.detail), separators=(",", ":"), default=str)[:4000],
        )
        session.add(row)
        if kind == CallEventKind.ended:
            call.ended_at = event.at
            call.duration_s = max(0, int((event.at - call.started_at).total_seconds()))
            session.add(call)
        session.flush()
        call_id = pk(call)
    if kind in (CallEventKind.joined, CallEventKind.ended):
        follow_call(engine, consult_id, call_id, kind, event.at)
    return row


def _both_sides_in(events: list[CallSessionEvent]) -> bool:
    """Whether a clinician and the specialist are both in the room after these events."""
    present: dict[int | str, str] = {}
    for e in events:
        who = e.user_id if e.user_id is not None else (e.signal_session or "")
        if e.kind == CallEventKind.joined:
            present[who] = e.role or ""
        elif e.kind == CallEventKind.left:
            present.pop(who, None)
    return {"clinician", "specialist"} <= set(present.values())


def follow_call(
    engine: Engine, consult_id: int, call_session_id: int, kind: CallEventKind, at: datetime
) -> ConsultState | None:
    """Move the consult with its call (see the module docstring); the new state, if any.

    Runs after the event is stored, in a unit of work of its own. A move that fails (the
    consult changed meanwhile, the database is away) is logged and dropped: the hub and the
    call go on, and the event stays on the record.
    """
    target = None
    failure = f"consult {consult_id} did not follow its call ({kind.value} event)"
    item = Units(engine).item(failure, log)
    with item as session:
        target = _follow(session, consult_id, call_session_id, kind, at)
    return None if item.failed else target


def _follow(
    session: Session, consult_id: int, call_session_id: int, kind: CallEventKind, at: datetime
) -> ConsultState | None:
    consult = consults_repository.get_consult(session, consult_id)
    if consult is None:
        return None
    state = ConsultState(consult.state)
    if kind == CallEventKind.joined and state is ConsultState.scheduled:
        events = repository.events_of(session, [call_session_id]).get(call_session_id, [])
        if not _both_sides_in(events):
            return None
        target, reason = ConsultState.in_session, reasons.english(reasons.BOTH_JOINED)
    elif kind == CallEventKind.ended and state is ConsultState.in_session:
        target, reason = ConsultState.scheduled, reasons.english(reasons.CALL_ENDED)
    else:
        return None
    consults.transition(session, consult, target, actor=None, reason=reason, at=at)
    return target


def can_end(session: Session, consult: Consult) -> bool:
    """Whether the consult may be ended now: in session, or scheduled after a session was
    held (both sides were in the call; the line dropped before the specialist ended it)."""
    state = ConsultState(consult.state)
    if state is ConsultState.in_session:
        return True
    return state is ConsultState.scheduled and repository.was_in_session(session, pk(consult))


def end_consult(session: Session, user: User, consult: Consult, now: datetime) -> None:
    """The specialist ends the consult: ``in_session`` (or ``scheduled`` after a session
    was held) -> ``completed``."""
    role = auth.ensure_call_participant(session, user, consult)
    if role != "specialist":
        raise Forbidden(N_("only the consult's specialist can end the consult"))
    state = ConsultState(consult.state)
    if not can_end(session, consult):
        raise Conflict(
            N_(
                "the consult is %(state)s and no session was held: it can be ended "
                "once both sides have been in the call"
            ),
            state=state.value.replace("_", " "),
        )
    consults.transition(
        session,
        consult,
        ConsultState.completed,
        actor=user,
        reason=reasons.english(reasons.ENDED_FROM_CALL),
        at=now,
    )
    session.flush()


def share_photo(
    session: Session, settings: Settings, user: User, consult: Consult, data: PhotoShareIn
) -> PhotoShare:
    """The thread message of a photo shared in the call, and the ``photo`` event of the call.

    The photo itself then goes through the attachments API with the message's id (so it is
    cleaned, previewed and audited like any attachment). Its type and size are checked here
    first, so a share that cannot be uploaded leaves no message behind.
    """
    role = auth.ensure_call_participant(session, user, consult)
    attachments.ensure_open_for_attachments(consult)
    fmt = media.declared_format(data.filename, data.media_type)
    if fmt.kind is not AttachmentKind.image:
        raise ValidationFailed(
            N_(
                "%(filename)s is not a photo: share JPEG, PNG or HEIC photos in the call, "
                "other files on the consult page"
            ),
            filename=data.filename,
            field="filename",
        )
    attachments.check_size(settings, data.length, "length")
    filename = media.safe_filename(data.filename, fmt)
    body = f"shared a photo during the call: {filename}"
    message = messages.post(session, user, consult, body)
    call = repository.open_session(session, pk(consult))
    if call is not None:
        detail = {"message_id": message.id, "filename": filename}
        session.add(
            CallSessionEvent(
                call_session_id=pk(call),
                consult_id=pk(consult),
                kind=CallEventKind.photo,
                user_id=user.id,
                role=role,
                detail=json.dumps(detail, separators=(",", ":")),
            )
        )
        session.flush()
    return PhotoShare(
        message_id=pk(message),
        body=body,
        call_session_id=call.id if call is not None else None,
    )


FEED_LIMIT = 100


def feed(session: Session, consult: Consult, after_message: int, after_attachment: int) -> CallFeed:
    """Messages and attachments of the consult's thread after the given ids, oldest first."""
    consult_id = pk(consult)
    return CallFeed(
        messages=[
            FeedMessage(
                id=pk(m),
                author_id=m.author_id,
                author_name=u.full_name,
                body=m.body,
                created_at=m.created_at,
            )
            for m, u in repository.messages_after(session, consult_id, after_message, FEED_LIMIT)
        ],
        attachments=[
            FeedAttachment(
                id=pk(a),
                message_id=a.message_id,
                uploaded_by_id=a.uploaded_by_id,
                uploader_name=u.full_name,
                kind=a.kind,
                filename=a.filename,
                preview_url=f"/api/v1/attachments/{a.id}/preview" if a.preview_sha256 else None,
                original_url=f"/api/v1/attachments/{a.id}/original",
            )
            for a, u in repository.attachments_after(
                session, consult_id, after_attachment, FEED_LIMIT
            )
        ],
    )


def _detail(row: CallSessionEvent) -> dict[str, object]:
    try:
        value = json.loads(row.detail) if row.detail else {}
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def sessions_public(session: Session, consult: Consult) -> list[CallSessionPublic]:
    calls = repository.sessions_of(session, pk(consult))
    events = repository.events_of(session, [pk(c) for c in calls])
    return [
        CallSessionPublic(
            id=pk(c),
            consult_id=c.consult_id,
            room=c.room,
            started_at=c.started_at,
            ended_at=c.ended_at,
            duration_s=c.duration_s,
            events=[
                CallEventPublic(
                    id=pk(e),
                    kind=CallEventKind(e.kind),
                    user_id=e.user_id,
                    role=e.role,
                    at=e.at,
                    detail=_detail(e),
                )
                for e in events.get(pk(c), [])
            ],
        )
        for c in calls
    ]
