"""All SQL of appointments."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import and_, exists, func
from sqlmodel import Session, col, select

from telemed.accounts.models import User
from telemed.appointments.models import Appointment, AppointmentChange, AppointmentStatus
from telemed.consults.models import Consult, ConsultState, Urgency
from telemed.offers.models import ConsultOffer, OfferStatus

# (specialist id, consult id, start, end): one consult a specialist holds in a week
Holding = tuple[int, int, datetime, datetime]

#: A consult in one of these states is over (completed, answered, cancelled...): its
#: appointment no longer holds the rest of its slot, even before the job marks it
#: ``completed`` (issue 15: a completed consult blocked a reschedule until its slot ended).
RELEASED_STATES = (
    ConsultState.completed,
    ConsultState.closed,
    ConsultState.follow_up_due,
    ConsultState.answered_async,
    ConsultState.cancelled,
)


def still_held() -> Any:
    """Appointments whose consult is not over (see ``RELEASED_STATES``)."""
    return ~exists().where(
        and_(
            col(Consult.id) == col(Appointment.consult_id),
            col(Consult.state).in_(RELEASED_STATES),
        )
    )


def lock_user(session: Session, user_id: int) -> User | None:
    """The specialist's users row, locked: bookings of one specialist queue here, so the
    overlap check and the insert that follows it cannot interleave with another's."""
    return session.exec(
        select(User)
        .where(User.id == user_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).first()


def get(session: Session, appointment_id: int) -> Appointment | None:
    return session.exec(
        select(Appointment)
        .where(Appointment.id == appointment_id)
        .execution_options(populate_existing=True)
    ).first()


def active_for_consult(session: Session, consult_id: int) -> Appointment | None:
    """The consult's ``scheduled`` appointment, if any (there is at most one)."""
    return session.exec(
        select(Appointment)
        .where(
            Appointment.consult_id == consult_id,
            Appointment.status == AppointmentStatus.scheduled,
        )
        .execution_options(populate_existing=True)
    ).first()


def latest_for_consult(session: Session, consult_id: int) -> Appointment | None:
    """The consult's most recent appointment, whatever its status."""
    return session.exec(
        select(Appointment)
        .where(Appointment.consult_id == consult_id)
        .order_by(col(Appointment.id).desc())
        .execution_options(populate_existing=True)
    ).first()


def overlapping(
    session: Session,
    specialist_id: int,
    starts_at: datetime,
    ends_at: datetime,
    exclude_id: int | None = None,
) -> list[Appointment]:
    """The specialist's scheduled appointments that overlap ``[starts_at, ends_at)``, but
    not those of a consult that is over (its slot is released at once)."""
    query = select(Appointment).where(
        Appointment.specialist_id == specialist_id,
        Appointment.status == AppointmentStatus.scheduled,
        col(Appointment.starts_at) < ends_at,
        col(Appointment.ends_at) > starts_at,
        still_held(),
    )
    if exclude_id is not None:
        query = query.where(col(Appointment.id) != exclude_id)
    return list(session.exec(query.order_by(col(Appointment.starts_at))))


def scheduled_between(
    session: Session, specialist_id: int, since: datetime, until: datetime
) -> list[Appointment]:
    return list(
        session.exec(
            select(Appointment)
            .where(
                Appointment.specialist_id == specialist_id,
                Appointment.status == AppointmentStatus.scheduled,
                col(Appointment.ends_at) > since,
                col(Appointment.starts_at) < until,
                still_held(),
            )
            .order_by(col(Appointment.starts_at))
        )
    )


def changes_of(session: Session, appointment_id: int) -> list[AppointmentChange]:
    return list(
        session.exec(
            select(AppointmentChange)
            .where(AppointmentChange.appointment_id == appointment_id)
            .order_by(col(AppointmentChange.at), col(AppointmentChange.id))
        )
    )


def upcoming(
    session: Session,
    since: datetime,
    *,
    specialist_id: int | None = None,
    facility_id: int | None = None,
    limit: int = 200,
) -> list[tuple[Appointment, Consult]]:
    """Scheduled appointments ending after ``since``, soonest first, with their consult:
    of one specialist, of one facility's consults, or (neither given) all."""
    query = (
        select(Appointment, Consult)
        .join(Consult, col(Consult.id) == col(Appointment.consult_id))
        .where(
            Appointment.status == AppointmentStatus.scheduled,
            col(Appointment.ends_at) > since,
        )
    )
    if specialist_id is not None:
        query = query.where(Appointment.specialist_id == specialist_id)
    if facility_id is not None:
        query = query.where(Consult.facility_id == facility_id)
    rows = session.exec(
        query.order_by(col(Appointment.starts_at), col(Appointment.id)).limit(limit)
    )
    return [(appointment, consult) for appointment, consult in rows]


def scheduled_starting(
    session: Session, after: datetime, until: datetime
) -> list[tuple[Appointment, Consult]]:
    """Scheduled appointments starting in ``(after, until]``, soonest first, with their
    consult (the reminders due)."""
    rows = session.exec(
        select(Appointment, Consult)
        .join(Consult, col(Consult.id) == col(Appointment.consult_id))
        .where(
            Appointment.status == AppointmentStatus.scheduled,
            col(Appointment.starts_at) > after,
            col(Appointment.starts_at) <= until,
        )
        .order_by(col(Appointment.starts_at))
    )
    return [(appointment, consult) for appointment, consult in rows]


def scheduled_started_by(session: Session, at: datetime) -> list[Appointment]:
    """Appointments still ``scheduled`` that started at or before ``at``, oldest first."""
    return list(
        session.exec(
            select(Appointment)
            .where(
                Appointment.status == AppointmentStatus.scheduled,
                col(Appointment.starts_at) <= at,
            )
            .order_by(col(Appointment.starts_at))
        )
    )


def emergency_consults(session: Session, consult_ids: Iterable[int]) -> set[int]:
    """Which of these consults are emergencies (the fairness rule counts them)."""
    ids = list(consult_ids)
    if not ids:
        return set()
    rows = session.exec(
        select(Consult.id).where(col(Consult.id).in_(ids), Consult.urgency == Urgency.emergency)
    )
    return {int(i) for i in rows if i is not None}


def holdings(
    session: Session, specialist_ids: Iterable[int], since: datetime, *, tentative: bool
) -> list[Holding]:
    """What counts against the specialists' weekly caps from ``since`` (see
    ``appointments.caps``): every appointment not cancelled (where the session really is,
    after any reschedule); every accepted offer whose consult has no appointment with them
    (asynchronous, or live and waiting for a time; its offered slot, else the acceptance);
    with ``tentative``, every open offer at its slot too."""
    ids = list(specialist_ids)
    if not ids:
        return []
    found: list[Holding] = [
        (sid, cid, start, end)
        for sid, cid, start, end in session.exec(
            select(
                Appointment.specialist_id,
                Appointment.consult_id,
                Appointment.starts_at,
                Appointment.ends_at,
            ).where(
                col(Appointment.specialist_id).in_(ids),
                col(Appointment.status) != AppointmentStatus.cancelled,
                col(Appointment.starts_at) >= since,
            )
        )
    ]
    placed = func.coalesce(col(ConsultOffer.slot_start), col(ConsultOffer.responded_at))
    no_appointment = ~exists().where(
        and_(
            col(Appointment.consult_id) == col(ConsultOffer.consult_id),
            col(Appointment.specialist_id) == col(ConsultOffer.specialist_id),
        )
    )
    accepted = session.exec(
        select(
            ConsultOffer.specialist_id,
            ConsultOffer.consult_id,
            placed,
            func.coalesce(col(ConsultOffer.slot_end), placed),
        )
        .join(Consult, col(Consult.id) == col(ConsultOffer.consult_id))
        .where(
            col(ConsultOffer.specialist_id).in_(ids),
            ConsultOffer.status == OfferStatus.accepted,
            col(Consult.state) != ConsultState.cancelled,
            no_appointment,
            placed >= since,
        )
    )
    found += [(sid, cid, start, end) for sid, cid, start, end in accepted]
    if tentative:
        offered = session.exec(
            select(
                ConsultOffer.specialist_id,
                ConsultOffer.consult_id,
                ConsultOffer.slot_start,
                ConsultOffer.slot_end,
            ).where(
                col(ConsultOffer.specialist_id).in_(ids),
                ConsultOffer.status == OfferStatus.open,
                col(ConsultOffer.slot_start) >= since,
            )
        )
        found += [
            (sid, cid, start, end or start) for sid, cid, start, end in offered if start is not None
        ]
    return found
