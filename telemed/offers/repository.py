"""All SQL of offers."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import func, update
from sqlmodel import Session, col, select

from telemed.appointments.models import Appointment, AppointmentStatus
from telemed.appointments.repository import still_held
from telemed.consults.models import Consult, ConsultParticipant, ConsultState, ParticipantRelation
from telemed.offers.models import ConsultOffer, OfferStatus


def get_offer(session: Session, offer_id: int) -> ConsultOffer | None:
    return session.exec(
        select(ConsultOffer)
        .where(ConsultOffer.id == offer_id)
        .execution_options(populate_existing=True)
    ).first()


def offers_of(session: Session, consult_id: int) -> list[ConsultOffer]:
    return list(
        session.exec(
            select(ConsultOffer)
            .where(ConsultOffer.consult_id == consult_id)
            .order_by(col(ConsultOffer.offered_at), col(ConsultOffer.id))
            .execution_options(populate_existing=True)
        )
    )


def last_round(session: Session, consult_id: int) -> int:
    found = session.exec(
        select(func.max(ConsultOffer.round)).where(
            ConsultOffer.consult_id == consult_id, col(ConsultOffer.assigned_by_id).is_(None)
        )
    ).one()
    return int(found or 0)


def close_offer(
    session: Session, offer_id: int, status: OfferStatus, at: datetime, **values: Any
) -> bool:
    """Close an open offer; False if it was no longer open (someone else closed it)."""
    result = session.execute(
        update(ConsultOffer)
        .where(col(ConsultOffer.id) == offer_id, col(ConsultOffer.status) == OfferStatus.open)
        .values(status=status, responded_at=at, **values)
        .execution_options(synchronize_session=False)
    )
    return bool(getattr(result, "rowcount", 0) == 1)


def withdraw_open(session: Session, consult_id: int, at: datetime, reason: str) -> list[int]:
    """Withdraw every open offer of the consult; the specialists' ids."""
    ids = list(
        session.exec(
            select(ConsultOffer.specialist_id).where(
                ConsultOffer.consult_id == consult_id, ConsultOffer.status == OfferStatus.open
            )
        )
    )
    session.execute(
        update(ConsultOffer)
        .where(
            col(ConsultOffer.consult_id) == consult_id,
            col(ConsultOffer.status) == OfferStatus.open,
        )
        .values(status=OfferStatus.withdrawn, responded_at=at, reason=reason)
        .execution_options(synchronize_session=False)
    )
    return ids


def consults_with_due_offers(session: Session, now: datetime) -> list[int]:
    return list(
        session.exec(
            select(ConsultOffer.consult_id)
            .where(ConsultOffer.status == OfferStatus.open, col(ConsultOffer.expires_at) <= now)
            .distinct()
            .order_by(col(ConsultOffer.consult_id))
        )
    )


def requested_consults(session: Session) -> list[int]:
    rows = session.exec(
        select(col(Consult.id))
        .where(Consult.state == ConsultState.requested)
        .order_by(col(Consult.requested_at), col(Consult.id))
    )
    return [consult_id for consult_id in rows if consult_id is not None]


def previously_offered(session: Session, consult_id: int) -> set[int]:
    return set(
        session.exec(
            select(ConsultOffer.specialist_id).where(ConsultOffer.consult_id == consult_id)
        )
    )


def booked_slot_starts(
    session: Session, specialist_ids: Iterable[int], since: datetime
) -> set[tuple[int, datetime]]:
    """Slot starts not to offer again: those of open offers (promised, not answered yet)
    and of scheduled appointments (where a booked, maybe rescheduled, session really is;
    an accepted offer's slot no longer counts once its appointment moved)."""
    ids = list(specialist_ids)
    if not ids:
        return set()
    offered = session.exec(
        select(ConsultOffer.specialist_id, ConsultOffer.slot_start).where(
            col(ConsultOffer.specialist_id).in_(ids),
            ConsultOffer.status == OfferStatus.open,
            col(ConsultOffer.slot_start) >= since,
        )
    )
    booked = session.exec(
        select(Appointment.specialist_id, Appointment.starts_at).where(
            col(Appointment.specialist_id).in_(ids),
            Appointment.status == AppointmentStatus.scheduled,
            col(Appointment.ends_at) > since,
            still_held(),
        )
    )
    starts = {(sid, start) for sid, start in offered if start is not None}
    return starts | {(sid, start) for sid, start in booked}


def release_accepted(session: Session, consult_id: int, at: datetime, reason: str) -> None:
    """The accepted offer of the consult is given back (its specialist cancelled the
    appointment): withdrawn, and no longer the consult's winner, so that the next
    specialist's acceptance can win."""
    session.execute(
        update(ConsultOffer)
        .where(
            col(ConsultOffer.accepted_consult_id) == consult_id,
            col(ConsultOffer.status) == OfferStatus.accepted,
        )
        .values(status=OfferStatus.withdrawn, accepted_consult_id=None, reason=reason)
        .execution_options(synchronize_session=False)
    )


def offers_for(
    session: Session, specialist_id: int, statuses: Iterable[OfferStatus]
) -> list[tuple[ConsultOffer, Consult]]:
    rows = session.exec(
        select(ConsultOffer, Consult)
        .join(Consult, col(Consult.id) == col(ConsultOffer.consult_id))
        .where(
            ConsultOffer.specialist_id == specialist_id,
            col(ConsultOffer.status).in_(list(statuses)),
        )
        .order_by(col(ConsultOffer.offered_at).desc(), col(ConsultOffer.id).desc())
        .limit(200)
    )
    return [(offer, consult) for offer, consult in rows]


def escalated(session: Session) -> list[Consult]:
    return list(
        session.exec(
            select(Consult)
            .where(Consult.state == ConsultState.escalated)
            .order_by(col(Consult.state_changed_at), col(Consult.id))
        )
    )


def has_participant(
    session: Session, consult_id: int, user_id: int, relation: ParticipantRelation
) -> bool:
    return (
        session.exec(
            select(ConsultParticipant.id).where(
                ConsultParticipant.consult_id == consult_id,
                ConsultParticipant.user_id == user_id,
                ConsultParticipant.relation == relation,
            )
        ).first()
        is not None
    )


def booked_times(
    session: Session, specialist_ids: Iterable[int], since: datetime
) -> dict[int, list[tuple[datetime, datetime]]]:
    """Start and end of each specialist's scheduled appointments from ``since`` whose
    consult is not over (a finished one releases the rest of its slot): the time they
    are not free."""
    ids = list(specialist_ids)
    if not ids:
        return {}
    rows = session.exec(
        select(Appointment.specialist_id, Appointment.starts_at, Appointment.ends_at).where(
            col(Appointment.specialist_id).in_(ids),
            Appointment.status == AppointmentStatus.scheduled,
            col(Appointment.starts_at) >= since,
            still_held(),
        )
    )
    found: dict[int, list[tuple[datetime, datetime]]] = {}
    for specialist_id, start, end in rows:
        found.setdefault(specialist_id, []).append((start, end))
    return found


def count_expired_since(session: Session, since: datetime) -> int:
    """Offers that expired unanswered since ``since``."""
    return int(
        session.exec(
            select(func.count()).where(
                ConsultOffer.status == OfferStatus.expired,
                col(ConsultOffer.responded_at) >= since,
            )
        ).one()
    )
