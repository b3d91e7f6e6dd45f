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

from datetime import UTC, datetime, timedelta

from sqlmodel import Session

from scheduling import Availability, SchedulingError
from scheduling.availability import covers
from telemed.accounts import repository as accounts_repository
from telemed.accounts.models import Role, User
from telemed.appointments import auth, caps, ics, notices, repository
from telemed.appointments.models import (
    Appointment,
    AppointmentChange,
    AppointmentStatus,
    ChangeAction,
)
from telemed.appointments.schemas import (
    AppointmentDetail,
    AppointmentPublic,
    ChangePublic,
    ScheduleItem,
)
from telemed.audit import service as audit
from telemed.audit.models import AuditAction
from telemed.consults import auth as consult_auth
from telemed.consults import repository as consults_repository
from telemed.consults import service as consults
from telemed.consults.models import (
    Consult,
    ConsultMode,
    ConsultState,
    ParticipantRelation,
)
from telemed.db import pk
from telemed.directory import repository as directory
from telemed.directory.availability import library_value, slots
from telemed.directory.models import SpecialistProfile
from telemed.errors import Conflict, Forbidden, NotFound, ValidationFailed
from telemed.i18n import N_
from telemed.offers import repository as offers_repository
from telemed.settings import Settings
from telemed.timefmt import local

LIVE_MODES = frozenset({ConsultMode.video, ConsultMode.audio})
MIN_LEAD = timedelta(minutes=5)  # a new time is at least this far ahead
BOOKING_HORIZON = timedelta(days=14)  # how far ahead the next free slot is looked for


def is_live(consult: Consult) -> bool:
    return ConsultMode(consult.mode) in LIVE_MODES


def _zone_of(user: User | None) -> str:
    return user.timezone if user is not None else "UTC"


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


def _check_free(
    session: Session,
    specialist_id: int,
    starts_at: datetime,
    ends_at: datetime,
    *,
    viewer: User | None,
    exclude_id: int | None = None,
) -> User:
    """Lock the specialist's row, then refuse (409) a time that overlaps another of their
    scheduled appointments, naming it in the viewer's zone."""
    specialist = repository.lock_user(session, specialist_id)
    if specialist is None:
        raise NotFound(N_("specialist %(specialist_id)s not found"), specialist_id=specialist_id)
    clashes = repository.overlapping(session, specialist_id, starts_at, ends_at, exclude_id)
    if clashes:
        clash = clashes[0]
        zone = _zone_of(viewer)
        raise Conflict(
            N_(
                "%(specialist)s already has an appointment from %(starts)s to "
                "%(ends)s (consult #%(consult)s); choose another time"
            ),
            specialist=specialist.full_name,
            starts=local(clash.starts_at, zone),
            ends=local(clash.ends_at, zone),
            consult=clash.consult_id,
            field="starts_at",
        )
    return specialist


def sides_of(session: Session, appointment: Appointment, consult: Consult) -> list[User]:
    """The two sides of the appointment: the specialist and the requesting clinician."""
    found = [session.get(User, appointment.specialist_id), session.get(User, consult.created_by_id)]
    return [user for user in found if user is not None]


def _requesting_clinician(session: Session, consult: Consult) -> User | None:
    return session.get(User, consult.created_by_id)


def _invitation(
    session: Session, settings: Settings, appointment: Appointment, consult: Consult, now: datetime
) -> ics.Invitation:
    specialist = session.get(User, appointment.specialist_id)
    clinician = _requesting_clinician(session, consult)
    assert specialist is not None
    assert clinician is not None
    return ics.invitation(
        settings, appointment, consult, specialist=specialist, clinician=clinician, now=now
    )


def _tell_both_sides(
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
        lambda: _invitation(session, settings, appointment, consult, now),
        recipients=recipients,
        actor=actor,
        specialist=specialist,
        now=now,
        old_start=old_start,
        specialist_cancelled=specialist_cancelled,
    )


def check_new_start(starts_at: datetime, now: datetime) -> datetime:
    """A new start must carry its zone and lie at least ``MIN_LEAD`` ahead (422)."""
    if starts_at.tzinfo is None or starts_at.utcoffset() is None:
        raise ValidationFailed(
            N_("give the time with its UTC offset, e.g. 2026-12-03T14:00:00+02:00"),
            field="starts_at",
        )
    starts_at = starts_at.astimezone(UTC)
    if starts_at < now + MIN_LEAD:
        raise ValidationFailed(
            N_("the new time must be at least 5 minutes from now"), field="starts_at"
        )
    return starts_at


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
    specialist = _check_free(session, specialist_id, starts_at, ends_at, viewer=actor)
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
        reason=f"session booked with {specialist.full_name}",
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
    _tell_both_sides(session, settings, ChangeAction.booked, appointment, consult, actor, now)
    return appointment


def _availability_of(
    session: Session, specialist: User, profile: SpecialistProfile
) -> Availability | None:
    """The specialist's stored availability as the library's value, or None when the
    stored data is no longer valid (e.g. its zone was removed)."""
    user_id = pk(specialist)
    try:
        return library_value(
            specialist.timezone,
            profile,
            directory.windows_of(session, [user_id]).get(user_id, []),
            directory.exceptions_of(session, [user_id]).get(user_id, []),
        )
    except SchedulingError:
        return None


def next_free_slot(
    session: Session,
    specialist: User,
    now: datetime,
    slot_length: timedelta,
    horizon: timedelta = BOOKING_HORIZON,
    *,
    consult: Consult | None = None,
) -> tuple[datetime, datetime] | None:
    """The specialist's first slot of availability from ``now + MIN_LEAD`` that none of
    their scheduled appointments overlaps and that keeps its week within their caps
    (``consult``, the one being booked, not counted), or None within ``horizon``."""
    user_id = pk(specialist)
    profile = directory.get_profile(session, user_id)
    if profile is None:
        return None
    held = caps.held_by(
        session,
        [user_id],
        now,
        tentative=False,
        exclude_consult_id=None if consult is None else pk(consult),
    )
    limits = caps.Caps.of(profile, specialist.timezone, held.get(user_id, []))
    availability = _availability_of(session, specialist, profile)
    try:
        free = (
            []
            if availability is None
            else slots(availability, now + MIN_LEAD, horizon, slot_length)
        )
    except SchedulingError:  # stored data no longer valid (e.g. zone removed)
        return None
    taken = repository.scheduled_between(session, user_id, now, now + horizon)
    for slot in free:
        if not any(
            a.starts_at < slot.end and a.ends_at > slot.start for a in taken
        ) and limits.fits(slot.start, slot.end):
            return slot.start, slot.end
    return None


def free_now(session: Session, specialist: User, now: datetime, slot_length: timedelta) -> bool:
    """Whether the specialist has no scheduled appointment in ``[now, now + slot_length)``."""
    return not repository.overlapping(session, pk(specialist), now, now + slot_length)


def within_availability(
    session: Session, specialist: User, starts_at: datetime, ends_at: datetime
) -> bool:
    """Whether ``[starts_at, ends_at)`` lies inside the specialist's declared windows
    (weekly hours or extra hours, not on leave, not away), read on their wall clock and
    across local midnight. Minimum notice is not asked: both sides may agree a
    short-notice time."""
    profile = directory.get_profile(session, pk(specialist))
    availability = None if profile is None else _availability_of(session, specialist, profile)
    if availability is None or availability.away:
        return False
    return covers(availability, starts_at, ends_at)


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
            reason="accepted to start now",
        )
    if slot is None or slot[0] <= now:
        slot = next_free_slot(session, specialist, now, slot_length, consult=consult)
    if slot is None:
        caps.ensure_fits(session, specialist, consult, *held_at, actor=actor, now=now)
        consults.record_fact(
            session,
            consult,
            None,
            f"{specialist.full_name} has no free time in the next "
            f"{BOOKING_HORIZON.days} days; book the session on the consult page",
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


def booked_times(
    session: Session, specialist: User, now: datetime
) -> list[tuple[datetime, datetime]]:
    """Start and end of the specialist's scheduled appointments not over yet: what their
    availability may not be removed from under (``directory.service.set_availability``)."""
    taken = repository.scheduled_between(session, pk(specialist), now, now + timedelta(days=400))
    return [(a.starts_at, a.ends_at) for a in taken]


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
    starts_at = check_new_start(starts_at, now)
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


# Changes by either side


def lock_for_change(
    session: Session, user: User, appointment_id: int, expected_sequence: int | None
) -> tuple[Appointment, Consult]:
    """The appointment and its consult, locked in that order, after the visibility (404)
    and side (403) checks; 409 if it changed since the caller saw ``expected_sequence``."""
    found = repository.get(session, appointment_id)
    if found is None:
        raise NotFound(
            N_("appointment %(appointment_id)s not found"), appointment_id=appointment_id
        )
    consult = consult_auth.get_visible_consult(session, user, found.consult_id)
    auth.ensure_side(user, consult, found)
    locked = consults_repository.lock_consult(session, found.consult_id)
    appointment = repository.get(session, appointment_id)  # re-read under the lock
    assert locked is not None
    assert appointment is not None
    if expected_sequence is not None and expected_sequence != appointment.sequence:
        raise Conflict(
            N_("the appointment was changed meanwhile (by the other side?); reload and try again")
        )
    return appointment, locked


def reschedule(
    session: Session,
    user: User,
    appointment_id: int,
    starts_at: datetime,
    reason: str,
    now: datetime,
    *,
    expected_sequence: int | None = None,
    settings: Settings,
    outside_confirmed: bool = False,
) -> Appointment:
    """Move a scheduled appointment to ``starts_at``, keeping its length. A time outside
    the specialist's availability is refused (409 ``outside_confirmed``) until the caller
    confirms it: the page then asks "book it anyway?" rather than book it silently."""
    if not reason.strip():
        raise ValidationFailed(N_("say why the appointment moves"), field="reason")
    with session.begin_nested():  # refused (409, 422): nothing changed
        appointment, consult = lock_for_change(session, user, appointment_id, expected_sequence)
        if appointment.status != AppointmentStatus.scheduled:
            raise Conflict(
                N_("a %(status)s appointment cannot be rescheduled"),
                status=appointment.status.replace("_", " "),
                field="status",
            )
        if consult.state != ConsultState.scheduled:
            raise Conflict(
                N_("the consult is %(state)s; its appointment cannot be moved now"),
                state=consult.state.replace("_", " "),
                field="state",
            )
        starts_at = check_new_start(starts_at, now)
        if starts_at == appointment.starts_at:
            raise ValidationFailed(N_("that is the appointment's current time"), field="starts_at")
        ends_at = starts_at + (appointment.ends_at - appointment.starts_at)
        move(
            session,
            user,
            appointment,
            consult,
            starts_at,
            ends_at,
            reason.strip(),
            now,
            settings=settings,
            outside_confirmed=outside_confirmed,
        )
    return appointment


def move(
    session: Session,
    user: User,
    appointment: Appointment,
    consult: Consult,
    starts_at: datetime,
    ends_at: datetime,
    reason: str,
    now: datetime,
    *,
    settings: Settings,
    outside_confirmed: bool,
) -> None:
    """Move the (locked) appointment to ``[starts_at, ends_at)`` within the specialist's
    caps and free time (409 otherwise), and within their availability unless
    ``outside_confirmed`` (409 ``outside_confirmed``, asked after the clash so that a time
    that cannot be had is never confirmed first): a new SEQUENCE, a change row, the
    consult's event, an audit row and both sides told with the updated invitation."""
    old = (appointment.starts_at, appointment.ends_at)
    specialist = session.get(User, appointment.specialist_id)
    assert specialist is not None
    caps.ensure_fits(session, specialist, consult, starts_at, ends_at, actor=user, now=now)
    _check_free(
        session,
        appointment.specialist_id,
        starts_at,
        ends_at,
        viewer=user,
        exclude_id=appointment.id,
    )
    if not outside_confirmed and not within_availability(session, specialist, starts_at, ends_at):
        zone = _zone_of(user)
        raise Conflict(
            N_(
                "%(starts)s is outside %(specialist)s's availability; confirm to "
                "reschedule to it anyway"
            ),
            starts=local(starts_at, zone),
            specialist=specialist.full_name,
            field="outside_confirmed",
        )
    appointment.starts_at, appointment.ends_at = starts_at, ends_at
    appointment.sequence += 1
    appointment.updated_at = now
    session.add(appointment)
    session.flush()
    record_change(
        session,
        appointment,
        user,
        ChangeAction.rescheduled,
        now,
        old=old,
        new=(starts_at, ends_at),
        reason=reason.strip(),
    )
    consults.record_fact(
        session,
        consult,
        user,
        f"appointment rescheduled by {user.full_name}: {reason.strip()}",
        now,
    )
    audit_change(
        session,
        user,
        AuditAction.update,
        appointment,
        consult,
        f"rescheduled to {starts_at.isoformat()} (sequence {appointment.sequence})",
    )
    _tell_both_sides(
        session,
        settings,
        ChangeAction.rescheduled,
        appointment,
        consult,
        user,
        now,
        old_start=old[0],
    )


def cancel(
    session: Session,
    user: User,
    appointment_id: int,
    reason: str,
    now: datetime,
    *,
    expected_sequence: int | None = None,
    settings: Settings,
) -> tuple[Appointment, Consult]:
    """Cancel a scheduled appointment.

    The specialist cancelling gives the consult back: it returns to ``requested`` (the
    offers job offers it to someone else; they were offered it once, so never again to
    them) and they are no longer its assigned specialist. A clinician cancelling cancels
    the consult request itself."""
    if not reason.strip():
        raise ValidationFailed(N_("say why the appointment is cancelled"), field="reason")
    with session.begin_nested():  # refused (409, 422): nothing changed
        appointment, consult = lock_for_change(session, user, appointment_id, expected_sequence)
        if appointment.status != AppointmentStatus.scheduled:
            raise Conflict(
                N_("this appointment is already %(status)s"),
                status=appointment.status.replace("_", " "),
                field="status",
            )
        if consult.state != ConsultState.scheduled:
            raise Conflict(
                N_("the consult is %(state)s; its appointment cannot be cancelled now"),
                state=consult.state.replace("_", " "),
                field="state",
            )
        text = reason.strip()
        appointment.status = AppointmentStatus.cancelled
        appointment.sequence += 1
        appointment.updated_at = now
        session.add(appointment)
        session.flush()
        record_change(session, appointment, user, ChangeAction.cancelled, now, reason=text)
        by_specialist = user.role == Role.specialist
        if by_specialist:
            consults.transition(
                session,
                consult,
                ConsultState.requested,
                actor=user,
                reason=f"appointment cancelled by {user.full_name}: {text}; "
                "the consult goes to another specialist",
                at=now,
            )
            _release(session, consult, user, text, now)
        else:
            consults.transition(
                session,
                consult,
                ConsultState.cancelled,
                actor=user,
                reason=f"appointment and consult request cancelled by {user.full_name}: {text}",
                at=now,
            )
        audit_change(
            session,
            user,
            AuditAction.update,
            appointment,
            consult,
            f"cancelled (sequence {appointment.sequence})",
        )
        _tell_both_sides(
            session,
            settings,
            ChangeAction.cancelled,
            appointment,
            consult,
            user,
            now,
            specialist_cancelled=by_specialist,
        )
    return appointment, consult


def _release(
    session: Session, consult: Consult, specialist: User, reason: str, at: datetime
) -> None:
    """The specialist gives the consult back: their accepted offer is withdrawn (so that
    another specialist's acceptance can win), they lose the assigned relation (its call,
    its specialist's note) and keep an offered one (they may still read what they saw)."""
    consult_id, user_id = pk(consult), pk(specialist)
    offers_repository.release_accepted(
        session, consult_id, at, f"the specialist cancelled the appointment: {reason}"
    )
    # They keep their ``offered`` relation: they may still read the consult they worked
    # on, and are not offered it again; the call and the specialist's note go.
    consults_repository.drop_participant(session, consult_id, user_id, ParticipantRelation.assigned)
    if not offers_repository.has_participant(
        session, consult_id, user_id, ParticipantRelation.offered
    ):
        consults.add_participant(session, consult, specialist, ParticipantRelation.offered)


# Ends decided by the system (the appointments job)


def mark_no_show(
    session: Session,
    appointment: Appointment,
    consult: Consult,
    reason: str,
    now: datetime,
    *,
    sides: list[User],
) -> None:
    """Nobody (or only one side) came: the consult becomes ``no_show`` and the appointment
    too, with a change row, an audit row and a notice to both ``sides`` and the
    coordinators, like any cancellation (the actor is the system). In the caller's
    transaction."""
    consults.transition(session, consult, ConsultState.no_show, actor=None, reason=reason, at=now)
    _end(
        session, appointment, consult, AppointmentStatus.no_show, ChangeAction.no_show, now, reason
    )
    notices.no_show(session, appointment, consult, reason, sides=sides, now=now)


def mark_completed(
    session: Session, appointment: Appointment, consult: Consult, now: datetime
) -> None:
    """The session was held (or the consult moved on by other means) and its slot is
    over: the appointment is ``completed``, with a change row and an audit row. In the
    caller's transaction."""
    _end(
        session,
        appointment,
        consult,
        AppointmentStatus.completed,
        ChangeAction.completed,
        now,
        "",
    )


def _end(
    session: Session,
    appointment: Appointment,
    consult: Consult,
    status: AppointmentStatus,
    action: ChangeAction,
    now: datetime,
    reason: str,
) -> None:
    appointment.status = status
    appointment.updated_at = now
    session.add(appointment)
    session.flush()
    record_change(session, appointment, None, action, now, reason=reason)
    audit_change(
        session,
        None,
        AuditAction.update,
        appointment,
        consult,
        f"{status.replace('_', ' ')} (system)",
    )


# Reading


def for_consult(session: Session, user: User, consult: Consult) -> Appointment:
    """The consult's current (or last) appointment, for those who may see it (else 404)."""
    appointment = repository.latest_for_consult(session, pk(consult))
    if appointment is None:
        raise NotFound(N_("consult %(consult_id)s has no appointment"), consult_id=consult.id)
    auth.ensure_can_see(user, consult, appointment)
    return appointment


def invitation_for(
    session: Session, settings: Settings, user: User, consult: Consult, now: datetime
) -> ics.Invitation:
    """The ``.ics`` of the consult's appointment for one of its two sides (audited read)."""
    appointment = repository.latest_for_consult(session, pk(consult))
    if appointment is None or not auth.is_side(user, consult, appointment):
        raise NotFound(
            N_("consult %(consult_id)s has no appointment invitation for you"),
            consult_id=consult.id,
        )
    audit.record_access(
        session,
        user,
        AuditAction.download,
        "appointment",
        pk(appointment),
        case_id=consult.case_id,
        consult_id=consult.id,
        detail=f"calendar invitation, sequence {appointment.sequence}",
    )
    return _invitation(session, settings, appointment, consult, now)


def upcoming_for(session: Session, user: User, now: datetime) -> list[tuple[Appointment, Consult]]:
    """The schedule: a specialist's own appointments, a clinician's facility's, every
    appointment for a coordinator; scheduled ones not over yet, soonest first."""
    since = now - timedelta(hours=1)
    if user.role == Role.specialist:
        return repository.upcoming(session, since, specialist_id=pk(user))
    if user.role == Role.clinician and user.facility_id is not None:
        return repository.upcoming(session, since, facility_id=user.facility_id)
    if user.role == Role.coordinator:
        return repository.upcoming(session, since)
    raise Forbidden(N_("the schedule is for specialists, clinicians and coordinators"))


def ics_path(consult_id: int) -> str:
    return f"/consults/{consult_id}/appointment.ics"


def detail(session: Session, appointment: Appointment) -> AppointmentDetail:
    specialist = session.get(User, appointment.specialist_id)
    return AppointmentDetail(
        **AppointmentPublic.model_validate(appointment).model_dump(),
        specialist_name=specialist.full_name if specialist else "",
        ics_url=ics_path(appointment.consult_id),
        changes=[
            ChangePublic.model_validate(c) for c in repository.changes_of(session, pk(appointment))
        ],
    )


def schedule(session: Session, user: User, now: datetime) -> list[ScheduleItem]:
    rows = upcoming_for(session, user, now)
    people = accounts_repository.users_by_id(session, {a.specialist_id for a, _ in rows})
    names = {user_id: person.full_name for user_id, person in people.items()}
    if rows:
        audit.record_access(
            session,
            user,
            AuditAction.list,
            "appointment",
            "schedule",
            detail="consults " + ",".join(str(c.id) for _, c in rows),
        )
    return [
        ScheduleItem(
            **AppointmentPublic.model_validate(a).model_dump(),
            specialty=c.specialty,
            mode=c.mode,
            urgency=c.urgency,
            consult_state=c.state,
            facility_id=c.facility_id,
            specialist_name=names.get(a.specialist_id, ""),
            ics_url=ics_path(pk(c)),
        )
        for a, c in rows
    ]
