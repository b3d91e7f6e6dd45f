"""A specialist's weekly caps as invariants, wherever a booking is made.

The rule (docs/architecture.md, "Caps"): a specialist's ``weekly_cap`` (consults) and
``weekly_cap_minutes`` (booked time) bound what they hold in each ISO week *of the
appointment*, Monday to Sunday in *their* zone (not the week the offer was accepted in,
not Maseru's week). What they hold: their appointments not cancelled (where the session
is, after any reschedule), their accepted consults without an appointment (asynchronous,
or live and waiting for a time: at the offered slot, else at the acceptance) and, when
offers are made, their open offers at the offered slot (tentative load: an offer may
still be accepted). A cap of zero pauses new bookings; what is booked stands.

Checks that must hold against concurrent writers run under the specialist's profile row
lock (:func:`lock`): the consult row first, then the profile, then the users row (the
appointments' overlap check), one order everywhere. Two accepts, or two offer runs, for
the same specialist therefore queue, and the second counts what the first wrote.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlmodel import Session

from scheduling import iso_week
from telemed.accounts.models import User
from telemed.appointments import repository
from telemed.audit import service as audit
from telemed.consults.models import Consult
from telemed.db import pk
from telemed.directory import repository as directory
from telemed.directory.models import SpecialistProfile
from telemed.errors import Conflict

LOOKBACK = timedelta(days=8)  # the current ISO week began at most this long ago, any zone


@dataclass(frozen=True)
class Held:
    """One consult held by a specialist: where it counts, and for how long."""

    consult_id: int
    start: datetime
    end: datetime
    emergency: bool = False  # counted by the fairness rule's weekly limit on emergencies

    @property
    def minutes(self) -> float:
        return (self.end - self.start).total_seconds() / 60


@dataclass(frozen=True)
class Caps:
    """One specialist's caps and what they hold, grouped by their ISO week."""

    zone: str
    max_consults: int | None
    max_minutes: int | None
    held: tuple[Held, ...] = ()

    @classmethod
    def of(cls, profile: SpecialistProfile, zone: str, held: Iterable[Held] = ()) -> Caps:
        return cls(zone, profile.weekly_cap, profile.weekly_cap_minutes, tuple(held))

    @property
    def limited(self) -> bool:
        return self.max_consults is not None or self.max_minutes is not None

    def usage(self, week: tuple[int, int]) -> tuple[int, float]:
        """Consults and minutes held in ``week``."""
        found = [h for h in self.held if iso_week(h.start, self.zone) == week]
        return len(found), sum(h.minutes for h in found)

    def emergencies(self, week: tuple[int, int]) -> int:
        """Emergencies held in ``week`` (the fairness rule's limit, ``scheduling.fairness``),
        counted as the caps count consults: open offers too, as tentative load."""
        return sum(1 for h in self.held if h.emergency and iso_week(h.start, self.zone) == week)

    def refusal(self, start: datetime, end: datetime) -> str | None:
        """Why one more consult at ``[start, end)`` would break a cap, or None if it fits."""
        week = iso_week(start, self.zone)
        consults, minutes = self.usage(week)
        monday = date.fromisocalendar(week[0], week[1], 1)
        when = f"the week of Monday {monday:%d %b %Y}"
        if self.max_consults is not None and consults + 1 > self.max_consults:
            if self.max_consults == 0:
                return "their weekly cap is 0 consults: they have paused new bookings"
            return f"their weekly cap of {self.max_consults} consults is reached in {when}"
        length = (end - start).total_seconds() / 60
        if self.max_minutes is not None and minutes + length > self.max_minutes:
            if self.max_minutes == 0:
                return "their weekly cap is 0 hours: they have paused new bookings"
            return (
                f"their weekly cap of {self.max_minutes / 60:g} hours would be passed in "
                f"{when} ({minutes / 60:g} hours booked)"
            )
        return None

    def fits(self, start: datetime, end: datetime) -> bool:
        return self.refusal(start, end) is None

    def plus(self, consult_id: int, start: datetime, end: datetime) -> Caps:
        """These caps with one more consult held (a batch's earlier choices)."""
        return Caps(
            self.zone,
            self.max_consults,
            self.max_minutes,
            (*self.held, Held(consult_id, start, end)),
        )


def held_by(
    session: Session,
    specialist_ids: Iterable[int],
    now: datetime,
    *,
    tentative: bool,
    exclude_consult_id: int | None = None,
) -> dict[int, list[Held]]:
    """What each specialist holds from the start of their current week on; the consult
    ``exclude_consult_id`` (the one being booked or moved) left out, since its new place
    replaces its old one."""
    found: dict[int, list[Held]] = defaultdict(list)
    rows = repository.holdings(session, specialist_ids, now - LOOKBACK, tentative=tentative)
    urgent = repository.emergency_consults(session, {row[1] for row in rows})
    for specialist_id, consult_id, start, end in rows:
        if consult_id != exclude_consult_id:
            found[specialist_id].append(Held(consult_id, start, end, consult_id in urgent))
    return found


def lock(
    session: Session,
    specialist: User,
    now: datetime,
    *,
    tentative: bool,
    exclude_consult_id: int | None = None,
) -> Caps | None:
    """Lock the specialist's profile row, then read their caps and holdings; None if they
    have no profile (not a specialist: nothing to cap)."""
    profile = directory.lock_profile(session, pk(specialist))
    if profile is None:
        return None
    held = held_by(
        session, [pk(specialist)], now, tentative=tentative, exclude_consult_id=exclude_consult_id
    )
    return Caps.of(profile, specialist.timezone, held.get(pk(specialist), []))


def ensure_fits(
    session: Session,
    specialist: User,
    consult: Consult,
    start: datetime,
    end: datetime,
    *,
    actor: User | None,
    now: datetime,
) -> None:
    """Under the specialist's row lock, refuse (409 naming ``cap``, the refusal audited even
    though the caller's work rolls back) a booking of ``consult`` at ``[start, end)`` that
    would pass either weekly cap in the appointment's week. Only firm holdings count: an
    open offer is what an accept turns into a booking, not a reason to refuse it."""
    caps = lock(session, specialist, now, tentative=False, exclude_consult_id=pk(consult))
    why = None if caps is None else caps.refusal(start, end)
    if why is None:
        return
    message = f"{specialist.full_name} cannot take this consult: {why}"
    audit.record_refusal(
        session,
        actor,
        "consult",
        pk(consult),
        case_id=consult.case_id,
        consult_id=pk(consult),
        detail=f"cap: {message}",
    )
    raise Conflict(message, field="cap")


@dataclass(frozen=True)
class WeekLoad:
    """A specialist's load this week (their zone) against their caps, for coordinators."""

    consults: int
    max_consults: int | None
    hours: float
    max_hours: float | None
    emergencies: int


def week_loads(session: Session, user_ids: list[int], now: datetime) -> dict[int, WeekLoad]:
    """Each specialist's consults, hours and emergencies held in their current ISO week,
    counted as the caps count them (open offers too), with their caps."""
    held = held_by(session, user_ids, now, tentative=True)
    loads: dict[int, WeekLoad] = {}
    for user_id in user_ids:
        profile, user = directory.get_profile(session, user_id), session.get(User, user_id)
        if profile is None or user is None:
            continue
        limits = Caps.of(profile, user.timezone, held.get(user_id, []))
        week = iso_week(now, user.timezone)
        consults, minutes = limits.usage(week)
        hours_cap = None if limits.max_minutes is None else limits.max_minutes / 60
        loads[user_id] = WeekLoad(
            consults, limits.max_consults, minutes / 60, hours_cap, limits.emergencies(week)
        )
    return loads
