"""Appointments: book a live consult's session, reschedule it, cancel it.

Lock order, the same as the offers': the consult row first, then the specialist's users
row. Every booking of a specialist therefore queues on that row, and the overlap check and
the write that follows it cannot interleave with another booking: a specialist never has
two ``scheduled`` appointments that overlap (409 naming the clash). SQLite serialises
writers anyway (``BEGIN IMMEDIATE``).

Every change is a row in ``appointment_changes``, an event on the consult, an audit row and
a notice to both sides with the calendar invitation (REQUEST, or CANCEL), all in the one
transaction of the change.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlmodel import Session

from telemed.accounts.models import Role, User
from telemed.appointments import auth, caps, free_time, ics, notices, repository
from telemed.appointments.models import (
    Appointment,
    AppointmentChange,
    ChangeAction,
)
from telemed.audit import service as audit
from telemed.audit.models import AuditAction
from telemed.consults import auth as consult_auth
from telemed.consults import reasons
from telemed.consults import repository as consults_repository
from telemed.consults import service as consults
from telemed.consults.models import (
    Consult,
    ConsultMode,
    ConsultState,
    ParticipantRelation,
)
from telemed.db import pk
from telemed.errors import Conflict, NotFound, ValidationFailed
from telemed.i18n import N_
from telemed.settings import Settings

LIVE_MODES = frozenset({ConsultMode.video, ConsultMode.audio})


def is_live(consult: Consult) -> bool:
    return ConsultMode(consult.mode) in LIVE_MODES


def audit_change(
    session: Session,
    actor: User | None,
    action: AuditAction,
    appointment: Appointment,
    consult: Consult,
    detail: str,
) -> None:
    audit.record(
        session,
        actor,
        action,
        "appointment",
        pk(appointment),
        case_id=consult.case_id,
        consult_id=consult.id,
        detail=detail,
    )


def record_change(
    session: Session,
    appointment: Appointment,
    actor: User | None,
    action: ChangeAction,
    now: datetime,
    *,
    old: tuple[datetime, datetime] | None = None,
    new: tuple[datetime, datetime] | None = None,
    reason: str = "",
) -> None:
    session.add(
        AppointmentChange(
            appointment_id=pk(appointment),
            actor_id=actor.id if actor else None,
            action=action,
            sequence=appointment.sequence,
            old_starts_at=old[0] if old else None,
            old_ends_at=old[1] if old else None,
            new_starts_at=new[0] if new else None,
            new_ends_at=new[1] if new else None,
            reason=reason,
            at=now,
        )
    )


def sides_of(session: Session, appointment: Appointment, consult: Consult) -> list[User]:
    """The two sides of the appointment: the specialist and the requesting clinician."""
    found = [session.get(User, appointment.specialist_id), session.get(User, consult.created_by_id)]
    return [user for user in found if user is not None]


def _requesting_clinician(session: Session, consult: Consult) -> User | None:
    return session.get(User, consult.created_by_id)


def invitation(
    session: Session, settings: Settings, appointment: Appointment, consult: Consult, now: datetime
) -> ics.Invitation:
    specialist = session.get(User, appointment.specialist_id)
    clinician = _requesting_clinician(session, consult)
    assert specialist is not None
    assert clinician is not None
    return ics.invitation(
        settings, appointment, consult, specialist=specialist, clinician=clinician, now=now
    )


def tell_both_sides(
    session: Session,
    settings: Settings,
    action: ChangeAction,
    appointment: Appointment,
    consult: Consult,
    actor: User | None,
    now: datetime,
    *,
    old_start: datetime | None = None,
    specialist_cancelled: bool = False,
) -> None:
    specialist = session.get(User, appointment.specialist_id)
    clinician = _requesting_clinician(session, consult)
    assert specialist is not None
    recipients = [specialist] + ([clinician] if clinician is not None else [])
    notices.send(
        session,
        action,
        appointment,
        consult,
        lambda: invitation(session, settings, appointment, consult, now),
        recipients=recipients,
        actor=actor,
        specialist=specialist,
        now=now,
        old_start=old_start,
        specialist_cancelled=specialist_cancelled,
    )


# Booking


def book(
    session: Session,
    consult: Consult,
    specialist_id: int,
    starts_at: datetime,
    ends_at: datetime,
    *,
    actor: User | None,
    now: datetime,
    settings: Settings,
    reason: str = "",
) -> Appointment:
    """Book ``[starts_at, ends_at)`` with the specialist for an ``accepted`` live consult
    (already locked by the caller) and move it to ``scheduled``. Does not commit: the
    caller's unit of work (e.g. accepting an offer) does. 409 when the specialist is booked
    at that time, the booking would pass a weekly cap in its week (``cap``, checked under
    their row lock), or the consult already has an appointment."""
    if ends_at <= starts_at:
        raise ValidationFailed(N_("an appointment must end after it starts"), field="ends_at")
    if repository.active_for_consult(session, pk(consult)) is not None:
        raise Conflict(
            N_("consult %(consult_id)s already has an appointment"), consult_id=consult.id
        )
    booked = session.get(User, specialist_id)
    if booked is None:
        raise NotFound(N_("specialist %(specialist_id)s not found"), specialist_id=specialist_id)
    caps.ensure_fits(session, booked, consult, starts_at, ends_at, actor=actor, now=now)
    specialist = free_time.check_free(session, specialist_id, starts_at, ends_at, viewer=actor)
    appointment = Appointment(
        consult_id=pk(consult),
        specialist_id=specialist_id,
        starts_at=starts_at,
        ends_at=ends_at,
        created_at=now,
        updated_at=now,
    )
    session.add(appointment)
    session.flush()
    record_change(
        session,
        appointment,
        actor,
        ChangeAction.booked,
        now,
        new=(starts_at, ends_at),
        reason=reason.strip(),
    )
    consults.transition(
        session,
        consult,
        ConsultState.scheduled,
        actor=actor,
        reason=reasons.english(reasons.BOOKED_WITH, name=specialist.full_name),
        at=now,
    )
    audit_change(
        session,
        actor,
        AuditAction.create,
        appointment,
        consult,
        f"booked {starts_at.isoformat()} - {ends_at.isoformat()} with specialist {specialist_id}",
    )
    tell_both_sides(session, settings, ChangeAction.booked, appointment, consult, actor, now)
    return appointment


def book_after_acceptance(
    session: Session,
    consult: Consult,
    specialist: User,
    *,
    actor: User,
    now: datetime,
    slot: tuple[datetime, datetime] | None,
    slot_length: timedelta,
    settings: Settings,
    start_now: bool = False,
) -> Appointment | None:
    """Called by the offers when a consult has just become ``accepted`` (same transaction):
    a live consult is booked at ``slot`` (the offer's) or, without one or when it has
    already begun, at the specialist's next free slot within their caps (an offer for 08:00
    accepted at 08:20 books the next free slot). With ``start_now`` (an urgent or emergency
    consult accepted for now) it is booked from ``now``, so its call opens at once; 409 when
    the specialist has another appointment then. An
    asynchronous consult stays ``accepted``; so does a live one when the specialist has no
    free slot (recorded on the consult: a time is then booked from the consult page).
    Either way the consult counts against the specialist's caps, at the offered slot
    (else now): 409 ``cap`` when that week is full."""
    held_at = (slot[0], slot[1]) if slot is not None else (now, now)
    if not is_live(consult):
        caps.ensure_fits(session, specialist, consult, *held_at, actor=actor, now=now)
        return None
    if start_now:
        return book(
            session,
            consult,
            pk(specialist),
            now,
            now + slot_length,
            actor=actor,
            now=now,
            settings=settings,
            reason=reasons.english(reasons.START_NOW),
        )
    if slot is None or slot[0] <= now:
        slot = free_time.next_free_slot(session, specialist, now, slot_length, consult=consult)
    if slot is None:
        caps.ensure_fits(session, specialist, consult, *held_at, actor=actor, now=now)
        consults.record_fact(
            session,
            consult,
            None,
            reasons.english(
                reasons.NO_FREE_TIME,
                name=specialist.full_name,
                days=free_time.BOOKING_HORIZON.days,
            ),
            now,
        )
        return None
    return book(
        session,
        consult,
        pk(specialist),
        slot[0],
        slot[1],
        actor=actor,
        now=now,
        settings=settings,
    )


def assigned_specialist(session: Session, consult: Consult) -> User | None:
    for participant in consults_repository.participants_of(session, pk(consult)):
        if participant.relation == ParticipantRelation.assigned:
            user = session.get(User, participant.user_id)
            if user is not None and user.role == Role.specialist:
                return user
    return None


# A live consult without a scheduled appointment that may get one booked by hand.
BOOKABLE_STATES = frozenset({ConsultState.accepted, ConsultState.no_show})


def book_time(
    session: Session,
    user: User,
    consult_id: int,
    starts_at: datetime,
    now: datetime,
    settings: Settings,
) -> Appointment:
    """Book a time for an ``accepted`` live consult that has none (its specialist had no
    free slot, or a coordinator agreed a time by phone), or a new one after a no-show."""
    consult = consult_auth.get_visible_consult(session, user, consult_id)
    auth.ensure_can_book(session, user, consult)
    starts_at = free_time.check_new_start(starts_at, now)
    with session.begin_nested():  # refused (409, 422): nothing changed
        locked = consults_repository.lock_consult(session, consult_id)
        assert locked is not None
        consult = locked
        if not is_live(consult):
            raise Conflict(N_("an asynchronous consult has no appointment; use its messages"))
        if consult.state not in BOOKABLE_STATES:
            raise Conflict(
                N_(
                    "a time is booked once the consult is accepted (or after a no-show); it is "
                    "%(state)s"
                ),
                state=consult.state,
                field="state",
            )
        specialist = assigned_specialist(session, consult)
        if specialist is None:
            raise Conflict(N_("the consult has no assigned specialist yet"))
        appointment = book(
            session,
            consult,
            pk(specialist),
            starts_at,
            starts_at + timedelta(minutes=settings.slot_minutes),
            actor=user,
            now=now,
            settings=settings,
        )
    return appointment
