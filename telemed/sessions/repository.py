"""All SQL of call sessions and their events."""

from __future__ import annotations

from sqlmodel import Session, col, select

from telemed.consults.models import ConsultParticipant, ParticipantRelation
from telemed.db import rows_grouped_by
from telemed.sessions.models import CallSession, CallSessionEvent


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


def relations_of(session: Session, consult_id: int, user_id: int) -> set[ParticipantRelation]:
    return {
        ParticipantRelation(r)
        for r in session.exec(
            select(ConsultParticipant.relation).where(
                ConsultParticipant.consult_id == consult_id,
                ConsultParticipant.user_id == user_id,
            )
        )
    }


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
