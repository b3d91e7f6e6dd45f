"""All SQL of call sessions and their events."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func
from sqlmodel import Session, col, select

from telemed.accounts.models import Role, User
from telemed.attachments.models import Attachment
from telemed.consults.models import (
    ConsultEvent,
    ConsultParticipant,
    ConsultState,
    ParticipantRelation,
)
from telemed.db import rows_grouped_by
from telemed.messages.models import Message
from telemed.sessions.models import CallEventKind, CallSession, CallSessionEvent


def open_session(session: Session, consult_id: int) -> CallSession | None:
    """The consult's call session that has not ended (the latest, if several)."""
    return session.exec(
        select(CallSession)
        .where(CallSession.consult_id == consult_id, col(CallSession.ended_at).is_(None))
        .order_by(col(CallSession.started_at).desc(), col(CallSession.id).desc())
        .limit(1)
    ).first()


def sessions_of(session: Session, consult_id: int) -> list[CallSession]:
    return list(
        session.exec(
            select(CallSession)
            .where(CallSession.consult_id == consult_id)
            .order_by(col(CallSession.started_at), col(CallSession.id))
        )
    )


def events_of(session: Session, call_session_ids: list[int]) -> dict[int, list[CallSessionEvent]]:
    return rows_grouped_by(
        session,
        CallSessionEvent,
        "call_session_id",
        call_session_ids,
        col(CallSessionEvent.at),
        col(CallSessionEvent.id),
    )


def joined_since(session: Session, consult_id: int, since: datetime) -> set[int]:
    """The users who joined the consult's call at or after ``since``."""
    rows = session.exec(
        select(CallSessionEvent.user_id).where(
            CallSessionEvent.consult_id == consult_id,
            CallSessionEvent.kind == CallEventKind.joined,
            col(CallSessionEvent.at) >= since,
        )
    )
    return {user_id for user_id in rows if user_id is not None}


def has_observer(session: Session, consult_id: int) -> bool:
    return (
        session.exec(
            select(ConsultParticipant.id).where(
                ConsultParticipant.consult_id == consult_id,
                ConsultParticipant.relation == ParticipantRelation.observer,
            )
        ).first()
        is not None
    )


def last_message_id(session: Session, consult_id: int) -> int:
    found = session.exec(select(func.max(Message.id)).where(Message.consult_id == consult_id)).one()
    return int(found or 0)


def last_attachment_id(session: Session, consult_id: int) -> int:
    found = session.exec(
        select(func.max(Attachment.id)).where(Attachment.consult_id == consult_id)
    ).one()
    return int(found or 0)


def messages_after(
    session: Session, consult_id: int, after: int, limit: int
) -> list[tuple[Message, User]]:
    return [
        (m, u)
        for m, u in session.exec(
            select(Message, User)
            .join(User, col(User.id) == col(Message.author_id))
            .where(Message.consult_id == consult_id, col(Message.id) > after)
            .order_by(col(Message.id))
            .limit(limit)
        )
    ]


def attachments_after(
    session: Session, consult_id: int, after: int, limit: int
) -> list[tuple[Attachment, User]]:
    return [
        (a, u)
        for a, u in session.exec(
            select(Attachment, User)
            .join(User, col(User.id) == col(Attachment.uploaded_by_id))
            .where(Attachment.consult_id == consult_id, col(Attachment.id) > after)
            .order_by(col(Attachment.id))
            .limit(limit)
        )
    ]


def attachments_of_messages(session: Session, message_ids: list[int]) -> dict[int, Attachment]:
    """The first attachment of each of these messages (a photo shared in a call has one)."""
    if not message_ids:
        return {}
    found: dict[int, Attachment] = {}
    for a in session.exec(
        select(Attachment)
        .where(col(Attachment.message_id).in_(message_ids))
        .order_by(col(Attachment.id))
    ):
        if a.message_id is not None:  # always: the query selected these message ids
            found.setdefault(a.message_id, a)
    return found


def was_in_session(session: Session, consult_id: int) -> bool:
    """Whether the consult was ever ``in_session`` (both sides in its call at once)."""
    found = session.exec(
        select(ConsultEvent.id).where(
            ConsultEvent.consult_id == consult_id,
            ConsultEvent.to_state == ConsultState.in_session,
        )
    ).first()
    return found is not None


def active_staff(session: Session) -> list[User]:
    """Active clinicians and specialists by name: whom a call invitation may name."""
    return list(
        session.exec(
            select(User)
            .where(
                col(User.is_active).is_(True),
                col(User.role).in_([Role.clinician, Role.specialist]),
            )
            .order_by(col(User.full_name), col(User.id))
        )
    )
