"""When a specialist is free: their declared availability, their booked appointments and
their caps, read for a booking. Apart from the bookings themselves (``service``), because
these rules change with scheduling (notice, horizon, windows across midnight) and the
bookings' with the consult's lifecycle."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlmodel import Session

from scheduling import Availability, SchedulingError
from scheduling.availability import covers
from telemed.accounts.models import User
from telemed.appointments import caps, repository
from telemed.consults.models import Consult
from telemed.db import pk
from telemed.directory import repository as directory
from telemed.directory.availability import library_value, slots
from telemed.directory.models import SpecialistProfile
from telemed.errors import Conflict, NotFound, ValidationFailed
from telemed.i18n import N_
from telemed.timefmt import local


def viewer_zone(user: User | None) -> str:
    """The zone a message about a time is written in: the viewer's, else UTC."""
    return user.timezone if user is not None else "UTC"


MIN_LEAD = timedelta(minutes=5)  # a new time is at least this far ahead


BOOKING_HORIZON = timedelta(days=14)  # how far ahead the next free slot is looked for


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


def check_free(
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
        zone = viewer_zone(viewer)
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


def availability_of(
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
    availability = availability_of(session, specialist, profile)
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
    availability = None if profile is None else availability_of(session, specialist, profile)
    if availability is None or availability.away:
        return False
    return covers(availability, starts_at, ends_at)


def booked_times(
    session: Session, specialist: User, now: datetime
) -> list[tuple[datetime, datetime]]:
    """Start and end of the specialist's scheduled appointments not over yet: what their
    availability may not be removed from under (``directory.service.set_availability``)."""
    taken = repository.scheduled_between(session, pk(specialist), now, now + timedelta(days=400))
    return [(a.starts_at, a.ends_at) for a in taken]
