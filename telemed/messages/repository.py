"""All SQL of the message thread."""

from __future__ import annotations

from sqlmodel import Session, col, select

from telemed.accounts.models import User
from telemed.attachments.models import Attachment, AttachmentKind
from telemed.messages.models import Message


def thread(session: Session, consult_id: int) -> list[tuple[Message, User]]:
    rows = session.exec(
        select(Message, User)
        .join(User, col(User.id) == col(Message.author_id))
        .where(Message.consult_id == consult_id)
        .order_by(col(Message.created_at), col(Message.id))
    )
    return [(m, u) for m, u in rows]


def voice_notes_of(session: Session, message_ids: list[int]) -> dict[int, Attachment]:
    """The voice note (audio attachment) of each of these messages that has one."""
    if not message_ids:
        return {}
    rows = session.exec(
        select(Attachment)
        .where(
            col(Attachment.message_id).in_(message_ids),
            Attachment.kind == AttachmentKind.audio,
        )
        .order_by(col(Attachment.id))
    )
    return {a.message_id: a for a in rows if a.message_id is not None}
