"""All SQL of the consults domain."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, delete, func, update
from sqlmodel import Session, col, select

from telemed.cases.models import Case
from telemed.consults.models import (
    CallGuest,
    Consult,
    ConsultEvent,
    ConsultParticipant,
    ConsultState,
    ParticipantRelation,
    Specialty,
)
from telemed.db import pk


def get_consult(session: Session, consult_id: int) -> Consult | None:
    return session.get(Consult, consult_id)


def list_consults(
    session: Session,
    visible: ColumnElement[bool],
    *,
    limit: int,
    offset: int,
    state: ConsultState | None = None,
) -> list[Consult]:
    query = select(Consult).where(visible)
    if state is not None:
        query = query.where(Consult.state == state)
    query = query.order_by(col(Consult.created_at).desc(), col(Consult.id).desc())
    return list(session.exec(query.limit(limit).offset(offset)))


def list_cases_by_id(session: Session, case_ids: set[int]) -> dict[int, Case]:
    if not case_ids:
        return {}
    return {pk(c): c for c in session.exec(select(Case).where(col(Case.id).in_(case_ids)))}


def events_of(session: Session, consult_id: int) -> list[ConsultEvent]:
    return list(
        session.exec(
            select(ConsultEvent)
            .where(ConsultEvent.consult_id == consult_id)
            .order_by(col(ConsultEvent.at), col(ConsultEvent.id))
        )
    )


def participants_of(session: Session, consult_id: int) -> list[ConsultParticipant]:
    return list(
        session.exec(
            select(ConsultParticipant)
            .where(ConsultParticipant.consult_id == consult_id)
            .order_by(col(ConsultParticipant.created_at))
        )
    )


def is_participant(session: Session, consult_id: int, user_id: int) -> bool:
    return (
        session.exec(
            select(ConsultParticipant.id).where(
                ConsultParticipant.consult_id == consult_id, ConsultParticipant.user_id == user_id
            )
        ).first()
        is not None
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


def active_guest(session: Session, consult_id: int, user_id: int) -> CallGuest | None:
    """The user's invitation into the consult's call that is not revoked, if any."""
    return session.exec(
        select(CallGuest).where(
            CallGuest.consult_id == consult_id,
            CallGuest.user_id == user_id,
            col(CallGuest.revoked_at).is_(None),
        )
    ).first()


def has_active_guest(session: Session, consult_id: int) -> bool:
    return (
        session.exec(
            select(CallGuest.id).where(
                CallGuest.consult_id == consult_id, col(CallGuest.revoked_at).is_(None)
            )
        ).first()
        is not None
    )


def guests_of(session: Session, consult_id: int) -> list[CallGuest]:
    """Every invitation into the consult's call, revoked ones too, oldest first."""
    return list(
        session.exec(
            select(CallGuest)
            .where(CallGuest.consult_id == consult_id)
            .order_by(col(CallGuest.invited_at), col(CallGuest.id))
        )
    )


def guest_consults(session: Session, user_id: int) -> list[tuple[CallGuest, Consult]]:
    """The consults whose call the user is invited to (active invitations), newest first."""
    return [
        (g, c)
        for g, c in session.exec(
            select(CallGuest, Consult)
            .join(Consult, col(Consult.id) == col(CallGuest.consult_id))
            .where(CallGuest.user_id == user_id, col(CallGuest.revoked_at).is_(None))
            .order_by(col(CallGuest.invited_at).desc(), col(CallGuest.id).desc())
        )
    ]


def participant_consult_ids(user_id: int) -> Any:
    """A subquery of the consults a user takes part in (for visibility filters)."""
    return select(ConsultParticipant.consult_id).where(ConsultParticipant.user_id == user_id)


def find_case(session: Session, facility_id: int, patient_ref: str) -> Case | None:
    return session.exec(
        select(Case).where(Case.facility_id == facility_id, Case.patient_ref == patient_ref)
    ).first()


def active_specialty(session: Session, code: str) -> Specialty | None:
    specialty = session.get(Specialty, code)
    return specialty if specialty is not None and specialty.active else None


def list_specialties(session: Session) -> list[Specialty]:
    return list(
        session.exec(
            select(Specialty).where(col(Specialty.active).is_(True)).order_by(col(Specialty.name))
        )
    )


def compare_and_set_state(
    session: Session, consult_id: int, expected: ConsultState, values: dict[str, Any]
) -> bool:
    """Move the state only if nobody else moved it first; False when we lost the race."""
    result = session.execute(
        update(Consult)
        .where(col(Consult.id) == consult_id, col(Consult.state) == expected)
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    return bool(getattr(result, "rowcount", 0) == 1)


def lock_consult(session: Session, consult_id: int) -> Consult | None:
    """The consult, freshly read and row-locked until the transaction ends (PostgreSQL;
    SQLite transactions hold the database write lock already). Offers and appointments take
    this lock first, so their operations queue per consult instead of deadlocking."""
    return session.exec(
        select(Consult)
        .where(Consult.id == consult_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).first()


def drop_participant(
    session: Session, consult_id: int, user_id: int, relation: ParticipantRelation
) -> None:
    """The user is no longer involved in the consult that way (an offer they did not take
    ended, an assignment they gave back): the relation goes, and with it the access it
    gave. The history stays in the offers, the appointments and the consult's events."""
    session.execute(
        delete(ConsultParticipant)
        .where(
            col(ConsultParticipant.consult_id) == consult_id,
            col(ConsultParticipant.user_id) == user_id,
            col(ConsultParticipant.relation) == relation,
        )
        .execution_options(synchronize_session=False)
    )


# Counts for the coordinators' daily digest


def count_by_urgency(session: Session, states: Iterable[ConsultState]) -> list[tuple[str, int]]:
    """How many consults are in ``states``, per urgency."""
    rows = session.exec(
        select(Consult.urgency, func.count())
        .where(col(Consult.state).in_(list(states)))
        .group_by(col(Consult.urgency))
    ).all()
    return [(str(urgency), int(n)) for urgency, n in rows]


def count_in_state(session: Session, state: ConsultState) -> int:
    return int(session.exec(select(func.count()).where(Consult.state == state)).one())


def count_moves_to(session: Session, state: ConsultState, since: datetime) -> int:
    """How many times a consult moved into ``state`` (from another) since ``since``."""
    return int(
        session.exec(
            select(func.count()).where(
                ConsultEvent.to_state == state,
                ConsultEvent.from_state != state,
                col(ConsultEvent.at) >= since,
            )
        ).one()
    )
