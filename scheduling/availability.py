"""Weekly availability in the specialist's own zone, expanded into concrete UTC slots.

Volunteers think in their own wall clock ("Tuesdays 18:00-20:00 in London"), while the
platform stores and compares instants in UTC. So availability is *declared* in local time and
*expanded* day by day in the specialist's IANA zone; a window therefore keeps its wall-clock
hours on both sides of a daylight-saving change and moves in UTC instead.

The clock-change rule
---------------------
A window means the **wall-clock hours it names**, and each wall-clock slot in it is offered
**once**. Slots sit on the local grid from the window's start (which is on the grid from
local midnight, see :func:`slot_minutes`): a 45-minute pattern from 00:00 gives 00:00, 00:45,
01:30, 02:15 ... whatever the offset does in between. For each wall-clock slot start:

* an ordinary time is its only instant, and the slot lasts its real length;
* on a **fall-back** night (the hour that repeats) the slot is offered at its **first
  occurrence**, the one in summer time, which is what a person means by "01:30" before the
  clock has gone back; the second pass of the repeated wall times yields no slots. London on
  25 October 2026: a window 01:30-02:00 gives one slot, 01:30 BST (00:30 UTC), not three;
* on a **spring-forward** night the missing wall times yield no slots: a slot whose start
  does not exist, or whose span reaches into the skipped time, is not offered. London on
  29 March 2026: a window 00:00-03:00 gives 00:00, 00:30, 02:00, 02:30 (two real hours);
* half-hour changes (Lord Howe Island, Australia/Lord_Howe) follow the same rule.

So a night's real hours never exceed the wall-clock hours declared, no slot starts at a wall
time before the window's start, slot starts never drift off the grid, and because starts are
first occurrences in wall-clock order, slots never overlap and none is produced twice. The
availability page says the same in one sentence to the specialist.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from scheduling.errors import (
    InvalidSlotLengthError,
    InvalidWindowError,
    SchedulingError,
    UnknownTimeZoneError,
)

DEFAULT_SLOT_LENGTH = timedelta(minutes=30)
"""Slot length used by :func:`expand` unless the caller chooses another."""

_MINUTES_PER_DAY = 24 * 60
_WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


def load_zone(name: str) -> ZoneInfo:
    """Return the :class:`ZoneInfo` for an IANA name, or raise :class:`UnknownTimeZoneError`.

    ``zoneinfo`` fails in four different ways (not found, bad key, a directory such as
    ``"Europe"``, a file that is not a zone); the application needs one error with the name.
    """
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError) as exc:
        raise UnknownTimeZoneError(f"unknown time zone {name!r}") from exc


def _start_minutes(value: time, what: str) -> int:
    if value.tzinfo is not None:
        raise InvalidWindowError(f"{what}: {value} must be a local (naive) time")
    if value.second or value.microsecond:
        raise InvalidWindowError(f"{what}: {value} must be a whole minute")
    return value.hour * 60 + value.minute


def _end_minutes(value: time, what: str) -> int:
    """Minutes after midnight for a window end, where 00:00 means the following midnight."""
    minutes = _start_minutes(value, what)
    return _MINUTES_PER_DAY if minutes == 0 else minutes


def _check_span(start: time, end: time, what: str) -> tuple[int, int]:
    begin = _start_minutes(start, what)
    finish = _end_minutes(end, what)
    if finish <= begin:
        raise InvalidWindowError(f"{what}: window {start:%H:%M}-{end:%H:%M} is inverted or empty")
    return begin, finish


@dataclass(frozen=True, slots=True)
class WeeklyWindow:
    """A recurring local window: ``weekday`` 0 = Monday ... 6 = Sunday, ``[start, end)``.

    ``end = time(0)`` means midnight at the end of the day, so "20:00-24:00" is expressible.
    Windows never cross midnight; an overnight shift is two windows on consecutive days.
    """

    weekday: int
    start: time
    end: time

    def __post_init__(self) -> None:
        if not 0 <= self.weekday <= 6:
            raise InvalidWindowError(f"weekday {self.weekday} is not in 0 (Monday)..6 (Sunday)")
        _check_span(self.start, self.end, _WEEKDAYS[self.weekday])

    @property
    def minutes(self) -> tuple[int, int]:
        """The window as minutes after local midnight, end exclusive (1440 = midnight)."""
        return _check_span(self.start, self.end, _WEEKDAYS[self.weekday])


@dataclass(frozen=True, slots=True)
class Leave:
    """Time off: every window on local dates ``first_day`` .. ``last_day`` (inclusive) is removed.

    Extra hours dated inside a leave period are still offered: a dated entry is more specific
    than a range, so a volunteer can take a fortnight off yet keep one clinic afternoon.
    """

    first_day: date
    last_day: date

    def __post_init__(self) -> None:
        if self.last_day < self.first_day:
            raise InvalidWindowError(
                f"leave {self.first_day.isoformat()}..{self.last_day.isoformat()} is inverted"
            )

    def covers(self, day: date) -> bool:
        """Whether ``day`` (a local date) falls inside this leave period."""
        return self.first_day <= day <= self.last_day


@dataclass(frozen=True, slots=True)
class ExtraHours:
    """A one-off local window ``[start, end)`` on a single local date (``end`` 00:00 = 24:00).

    Extra hours that overlap the weekly pattern on that date are merged with it (the union is
    offered once), since "I can also do Tuesday morning" never means "offer it twice".
    """

    day: date
    start: time
    end: time

    def __post_init__(self) -> None:
        _check_span(self.start, self.end, f"extra hours on {self.day.isoformat()}")

    @property
    def minutes(self) -> tuple[int, int]:
        """The window as minutes after local midnight, end exclusive (1440 = midnight)."""
        return _check_span(self.start, self.end, f"extra hours on {self.day.isoformat()}")


def _check_no_overlap(spans: Iterable[tuple[int, int]], what: str) -> None:
    previous: tuple[int, int] | None = None
    for span in sorted(spans):
        if previous is not None and span[0] < previous[1]:
            raise InvalidWindowError(f"{what}: windows {_fmt(previous)} and {_fmt(span)} overlap")
        previous = span


def _fmt(span: tuple[int, int]) -> str:
    start, end = span
    return f"{start // 60:02d}:{start % 60:02d}-{end // 60:02d}:{end % 60:02d}"


@dataclass(frozen=True, slots=True)
class Availability:
    """Everything a specialist declares about when they can take consults.

    Validated on construction (unknown zone, overlapping windows, negative notice) so that a
    bad profile is refused when it is saved, not when the batch matcher runs at night.
    Sequences are stored as tuples so the value is hashable and cannot change under a caller.
    """

    time_zone: str
    weekly: tuple[WeeklyWindow, ...] = ()
    leave: tuple[Leave, ...] = ()
    extra: tuple[ExtraHours, ...] = ()
    min_notice: timedelta = timedelta(0)
    away: bool = False

    def __post_init__(self) -> None:
        load_zone(self.time_zone)
        object.__setattr__(self, "weekly", tuple(self.weekly))
        object.__setattr__(self, "leave", tuple(self.leave))
        object.__setattr__(self, "extra", tuple(self.extra))
        if self.min_notice < timedelta(0):
            raise SchedulingError(f"minimum notice {self.min_notice} is negative")
        for weekday, name in enumerate(_WEEKDAYS):
            _check_no_overlap((w.minutes for w in self.weekly if w.weekday == weekday), name)
        for day in {e.day for e in self.extra}:
            _check_no_overlap(
                (e.minutes for e in self.extra if e.day == day),
                f"extra hours on {day.isoformat()}",
            )

    @property
    def zone(self) -> ZoneInfo:
        """The specialist's zone as a :class:`ZoneInfo`."""
        return load_zone(self.time_zone)


@dataclass(frozen=True, slots=True, order=True)
class TimeSlot:
    """A concrete bookable interval ``[start, end)`` between two aware instants (UTC)."""

    start: datetime
    end: datetime

    def __post_init__(self) -> None:
        if self.start.tzinfo is None or self.end.tzinfo is None:
            raise SchedulingError(f"slot {self.start}..{self.end} must use aware datetimes")
        if self.end <= self.start:
            raise SchedulingError(f"slot {self.start}..{self.end} is inverted or empty")

    @property
    def duration(self) -> timedelta:
        """Real elapsed time of the slot (not wall-clock difference)."""
        return self.end - self.start


def slot_minutes(slot_length: timedelta) -> int:
    """Validate a slot length and return it in minutes.

    It must be a positive whole number of minutes dividing a day (5, 10, 15, 20, 30, 60,
    90, 120...): then slots sit on one grid from local midnight and every window that
    starts and ends on the grid is tiled exactly, with no stub left over.
    """
    seconds = slot_length.total_seconds()
    if seconds <= 0 or seconds % 60:
        raise InvalidSlotLengthError(
            f"slot length {slot_length} must be a positive whole number of minutes"
        )
    minutes = int(seconds // 60)
    if _MINUTES_PER_DAY % minutes:
        raise InvalidSlotLengthError(
            f"slot length of {minutes} minutes does not divide a day (1440 minutes)"
        )
    return minutes


def _check_grid(availability: Availability, minutes: int) -> None:
    spans: list[tuple[str, tuple[int, int]]] = [
        (_WEEKDAYS[w.weekday], w.minutes) for w in availability.weekly
    ]
    spans += [(f"extra hours on {e.day.isoformat()}", e.minutes) for e in availability.extra]
    for what, (start, end) in spans:
        if start % minutes or end % minutes:
            raise InvalidSlotLengthError(
                f"{what}: window {_fmt((start, end))} is not a whole number of "
                f"{minutes}-minute slots from the hour grid"
            )


def first_instant(local: datetime, zone: ZoneInfo) -> datetime:
    """The first UTC instant at which the wall clock in ``zone`` reads ``local`` or later.

    ``local`` is naive: an ambiguous time maps to its first occurrence, a skipped one to the
    moment the clock jumps past it. Pages use it to place a local day on the UTC axis;
    :func:`expand` uses :func:`wall_slot`, which refuses skipped times instead.
    """
    candidates = [local.replace(tzinfo=zone, fold=fold).astimezone(UTC) for fold in (0, 1)]
    existing = [u for u in candidates if u.astimezone(zone).replace(tzinfo=None) == local]
    if existing:
        return min(existing)
    # ``local`` falls in a gap. Before the transition the clock reads less than ``local`` and
    # after it more; find the transition to the second (zone offsets are whole seconds).
    before, after = min(candidates), max(candidates)
    while after - before > timedelta(seconds=1):
        middle = before + (after - before) / 2
        middle = middle.replace(microsecond=0)
        if middle.astimezone(zone).replace(tzinfo=None) >= local:
            after = middle
        else:
            before = middle
    return after


def wall_slot(local: datetime, zone: ZoneInfo, length: timedelta) -> TimeSlot | None:
    """The slot the wall clock names at ``local`` (naive), or ``None`` if it must not exist.

    The clock-change rule of the module docstring: the first occurrence of an ambiguous
    start, nothing for a start the clock skips, nothing for a slot whose span reaches into a
    skipped time (the offset grows inside it), so a skipped hour yields no slots at all.
    """
    begin = local.replace(tzinfo=zone, fold=0).astimezone(UTC)
    if begin.astimezone(zone).replace(tzinfo=None) != local:
        return None  # skipped by a spring-forward change
    finish = begin + length
    last = (finish - _MICROSECOND).astimezone(zone).utcoffset()
    if last is not None and last > (begin.astimezone(zone).utcoffset() or timedelta(0)):
        return None  # the clock jumps forward inside the slot
    return TimeSlot(begin, finish)


_MICROSECOND = timedelta(microseconds=1)


def _merge(spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    merged: list[tuple[int, int]] = []
    for start, end in sorted(spans):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


def local_spans(availability: Availability, day: date) -> list[tuple[int, int]]:
    """The merged local windows of one date, as minutes after midnight (end exclusive)."""
    spans: list[tuple[int, int]] = []
    if not any(leave.covers(day) for leave in availability.leave):
        spans += [w.minutes for w in availability.weekly if w.weekday == day.weekday()]
    spans += [e.minutes for e in availability.extra if e.day == day]
    return _merge(spans)


def covers(availability: Availability, starts_at: datetime, ends_at: datetime) -> bool:
    """Whether ``[starts_at, ends_at)`` lies inside the declared windows, read on the
    specialist's wall clock. A time that runs past local midnight is inside when the next
    date's window begins at midnight: a volunteer available all day is available from
    23:40 for half an hour, though no single date's window holds it. Leave and extra hours
    count as in :func:`local_spans`; ``away`` is the caller's to ask."""
    if starts_at.tzinfo is None or ends_at.tzinfo is None:
        raise SchedulingError(f"{starts_at} and {ends_at} must be aware datetimes")
    start = starts_at.astimezone(availability.zone)
    end = ends_at.astimezone(availability.zone)
    days = (end.date() - start.date()).days
    spans: list[tuple[int, int]] = []
    for offset in range(days + 1):
        day = start.date() + timedelta(days=offset)
        spans += [(a + 1440 * offset, b + 1440 * offset) for a, b in local_spans(availability, day)]
    first = start.hour * 60 + start.minute
    last = days * 1440 + end.hour * 60 + end.minute
    return any(a <= first and last <= b for a, b in _merge(spans))


def expand(
    availability: Availability,
    *,
    now: datetime,
    horizon: timedelta,
    slot_length: timedelta = DEFAULT_SLOT_LENGTH,
) -> list[TimeSlot]:
    """Concrete UTC slots offered between ``now + min_notice`` and ``now + horizon``.

    Each window is cut into wall-clock slots on its local grid and each becomes one UTC
    slot by the clock-change rule (module docstring, :func:`wall_slot`): the repeated hour
    of a fall-back night once, at its first occurrence; the skipped hour of a
    spring-forward night not at all. A slot is kept only if it lies entirely inside the
    range. An ``away`` specialist offers
    nothing (the switch keeps their windows for when they come back). Slots are sorted and
    unique; their ``start``/``end`` are aware datetimes in UTC.
    """
    if now.tzinfo is None:
        raise SchedulingError(f"now ({now}) must be an aware datetime")
    if horizon < timedelta(0):
        raise SchedulingError(f"horizon {horizon} is negative")
    minutes = slot_minutes(slot_length)
    _check_grid(availability, minutes)
    if availability.away:
        return []
    zone = availability.zone
    earliest = (now + availability.min_notice).astimezone(UTC)
    latest = (now + horizon).astimezone(UTC)
    step = timedelta(minutes=minutes)
    slots: list[TimeSlot] = []
    # One local day of margin on each side: a local date's windows can begin the UTC day
    # before or end the UTC day after.
    day = earliest.astimezone(zone).date() - timedelta(days=1)
    last_day = latest.astimezone(zone).date() + timedelta(days=1)
    while day <= last_day:
        midnight = datetime.combine(day, time(0))
        for start, end in local_spans(availability, day):
            for minute in range(start, end - minutes + 1, minutes):
                slot = wall_slot(midnight + timedelta(minutes=minute), zone, step)
                if slot is not None and slot.start >= earliest and slot.end <= latest:
                    slots.append(slot)
        day += timedelta(days=1)
    return slots


# --- weekly cap ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class WeeklyCap:
    """A volunteer's weekly limit, in consults, in booked time, or both (``None`` = no limit).

    Weeks are ISO weeks (Monday to Sunday) in the specialist's zone: "three consults a week"
    means *their* week, which in Toronto starts five hours after it does in Maseru.
    """

    max_consults: int | None = None
    max_duration: timedelta | None = None

    def __post_init__(self) -> None:
        if self.max_consults is not None and self.max_consults < 0:
            raise SchedulingError(f"weekly cap of {self.max_consults} consults is negative")
        if self.max_duration is not None and self.max_duration < timedelta(0):
            raise SchedulingError(f"weekly cap of {self.max_duration} is negative")


@dataclass(frozen=True, slots=True)
class WeekUsage:
    """What is already booked in one ISO week."""

    consults: int = 0
    duration: timedelta = timedelta(0)


IsoWeek = tuple[int, int]
"""(ISO year, ISO week number)."""


def iso_week(instant: datetime, time_zone: str) -> IsoWeek:
    """The ISO week, in ``time_zone``, that contains ``instant`` (aware)."""
    if instant.tzinfo is None:
        raise SchedulingError(f"instant {instant} must be an aware datetime")
    calendar = instant.astimezone(load_zone(time_zone)).isocalendar()
    return calendar.year, calendar.week


def weekly_usage(booked: Iterable[TimeSlot], time_zone: str) -> dict[IsoWeek, WeekUsage]:
    """Booked consults and time per ISO week; a slot counts in the week where it starts."""
    consults: dict[IsoWeek, int] = defaultdict(int)
    durations: dict[IsoWeek, timedelta] = defaultdict(timedelta)
    for slot in booked:
        week = iso_week(slot.start, time_zone)
        consults[week] += 1
        durations[week] += slot.duration
    return {week: WeekUsage(consults[week], durations[week]) for week in consults}


def fits_weekly_cap(
    cap: WeeklyCap, booked: Iterable[TimeSlot], candidate: TimeSlot, time_zone: str
) -> bool:
    """Whether booking ``candidate`` on top of ``booked`` keeps its ISO week within ``cap``."""
    week = iso_week(candidate.start, time_zone)
    used = weekly_usage(booked, time_zone).get(week, WeekUsage())
    if cap.max_consults is not None and used.consults + 1 > cap.max_consults:
        return False
    return cap.max_duration is None or used.duration + candidate.duration <= cap.max_duration
