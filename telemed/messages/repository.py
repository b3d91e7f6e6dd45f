"""All SQL of the message thread."""

from __future__ import annotations

from sqlmodel import Session, col, select

from telemed.accounts.models import User
from telemed.messages.models import Message


def thread(session: Session, consult_id: int) -> list[tuple[Message, User]]:
    rows = session.exec(
        select(Message, User)
        .join(User, col(User.id) == col(Message.author_id))
        .where(Message.consult_id == consult_id)
        .order_by(col(Message.created_at), col(Message.id))
    )
    return [(m, u) for m, u in rows]
