"""The store-and-forward thread: everyone allowed on a consult reads and writes it."""

from __future__ import annotations

from sqlmodel import Session

from telemed.accounts.models import User
from telemed.attachments.models import Attachment
from telemed.audit import service as audit
from telemed.audit.models import AuditAction
from telemed.consults import auth as consult_auth
from telemed.consults.lifecycle import FINAL_STATES
from telemed.consults.models import Consult, ConsultState
from telemed.db import pk
from telemed.errors import Conflict
from telemed.i18n import N_
from telemed.messages import repository
from telemed.messages.models import Message
from telemed.messages.schemas import MessagePublic, VoiceNotePublic


def post(session: Session, user: User, consult: Consult, body: str) -> Message:
    consult_auth.ensure_can_post(session, user, consult)
    if ConsultState(consult.state) in FINAL_STATES:
        raise Conflict(
            N_("the consult is %(state)s; its thread is closed"),
            state=consult.state,
        )
    message = Message(consult_id=pk(consult), author_id=pk(user), body=body)
    session.add(message)
    session.flush()
    audit.record(
        session,
        user,
        AuditAction.create,
        "message",
        pk(message),
        case_id=consult.case_id,
        consult_id=consult.id,
    )
    session.flush()
    return message


def thread(session: Session, consult: Consult) -> list[MessagePublic]:
    rows = repository.thread(session, pk(consult))
    voice = repository.voice_notes_of(session, [pk(m) for m, _u in rows])
    return [
        MessagePublic(
            id=pk(m),
            consult_id=m.consult_id,
            author_id=m.author_id,
            author_name=u.full_name,
            author_role=u.role,
            body=m.body,
            created_at=m.created_at,
            voice_note=voice_note_public(voice[pk(m)]) if pk(m) in voice else None,
        )
        for m, u in rows
    ]


def voice_note_public(attachment: Attachment) -> VoiceNotePublic:
    return VoiceNotePublic(
        attachment_id=pk(attachment),
        url=f"/api/v1/attachments/{pk(attachment)}/original",
        media_type=attachment.media_type,
        size_bytes=attachment.size_bytes,
        duration_ms=attachment.duration_ms,
    )
