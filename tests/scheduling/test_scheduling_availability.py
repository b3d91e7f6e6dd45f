"""Availability expansion: wall-clock windows to UTC slots, across real 2026 DST changes."""

from __future__ import annotations

import itertools
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from scheduling import (
    Availability,
    ExtraHours,
    Leave,
    SchedulingError,
    TimeSlot,
    WeeklyCap,
    WeeklyWindow,
    covers,
    expand,
    fits_weekly_cap,
    iso_week,
    weekly_usage,
)
from scheduling.errors import InvalidSlotLengthError, InvalidWindowError, UnknownTimeZoneError

HALF_HOUR = timedelta(minutes=30)


def every_day(start: time, end: time) -> tuple[WeeklyWindow, ...]:
    return tuple(WeeklyWindow(day, start, end) for day in range(7))


def slots_on(zone: str, windows: tuple[WeeklyWindow, ...], day: date) -> list[TimeSlot]:
    """Slots whose local start date is ``day`` (expanding a margin around it)."""
    tz = ZoneInfo(zone)
    now = datetime.combine(day - timedelta(days=2), time(0), tzinfo=UTC)
    slots = expand(Availability(zone, weekly=windows), now=now, horizon=timedelta(days=5))
    return [s for s in slots if s.start.astimezone(tz).date() == day]


def local_starts(slots: list[TimeSlot], zone: str) -> list[str]:
    tz = ZoneInfo(zone)
    return [s.start.astimezone(tz).strftime("%H:%M") for s in slots]


# (zone, change date, UTC offset in hours the day before, the day after)
CHANGES_2026 = [
    ("Europe/London", date(2026, 3, 29), 0, 1),
    ("Europe/London", date(2026, 10, 25), 1, 0),
    ("Europe/Dublin", date(2026, 3, 29), 0, 1),
    ("Europe/Dublin", date(2026, 10, 25), 1, 0),
    ("America/Toronto", date(2026, 3, 8), -5, -4),
    ("America/Toronto", date(2026, 11, 1), -4, -5),
    ("America/Chicago", date(2026, 3, 8), -6, -5),
    ("America/Chicago", date(2026, 11, 1), -5, -6),
]


@pytest.mark.parametrize(("zone", "change", "before", "after"), CHANGES_2026)
def test_morning_window_keeps_wall_clock_across_change(
    zone: str, change: date, before: int, after: int
) -> None:
    windows = every_day(time(9), time(12))
    wall = ["09:00", "09:30", "10:00", "10:30", "11:00", "11:30"]
    # The change happens in the small hours, so 09:00 on the change day is already "after".
    for day, offset in ((change - timedelta(days=1), before), (change, after)):
        slots = slots_on(zone, windows, day)
        assert local_starts(slots, zone) == wall
        first = datetime.combine(day, time(9), tzinfo=UTC) - timedelta(hours=offset)
        assert [s.start for s in slots] == [first + i * HALF_HOUR for i in range(6)]
        assert all(s.end - s.start == HALF_HOUR for s in slots)


@pytest.mark.parametrize(
    ("zone", "day", "window", "wall"),
    [
        # London skips 01:00-02:00 on 29 March: a 00:00-03:00 window is two real hours.
        (
            "Europe/London",
            date(2026, 3, 29),
            (time(0), time(3)),
            ["00:00", "00:30", "02:00", "02:30"],
        ),
        (
            "Europe/Dublin",
            date(2026, 3, 29),
            (time(0), time(3)),
            ["00:00", "00:30", "02:00", "02:30"],
        ),
        # Chicago and Toronto skip 02:00-03:00 on 8 March.
        (
            "America/Chicago",
            date(2026, 3, 8),
            (time(1), time(4)),
            ["01:00", "01:30", "03:00", "03:30"],
        ),
        (
            "America/Toronto",
            date(2026, 3, 8),
            (time(1), time(4)),
            ["01:00", "01:30", "03:00", "03:30"],
        ),
        # A window starting inside the gap begins when the clock jumps past it.
        ("Europe/London", date(2026, 3, 29), (time(1, 30), time(3)), ["02:00", "02:30"]),
        # A window wholly inside the gap does not exist that day.
        ("Europe/London", date(2026, 3, 29), (time(1), time(2)), []),
        ("America/Toronto", date(2026, 3, 8), (time(2), time(3)), []),
    ],
)
def test_spring_forward_drops_the_missing_wall_times(
    zone: str, day: date, window: tuple[time, time], wall: list[str]
) -> None:
    slots = slots_on(zone, every_day(*window), day)
    assert local_starts(slots, zone) == wall
    starts = [s.start for s in slots]
    assert len(set(starts)) == len(starts)


@pytest.mark.parametrize(
    ("zone", "day", "first_utc"),
    [
        ("Europe/London", date(2026, 10, 25), datetime(2026, 10, 24, 23, 0, tzinfo=UTC)),
        ("Europe/Dublin", date(2026, 10, 25), datetime(2026, 10, 24, 23, 0, tzinfo=UTC)),
    ],
)
def test_fall_back_offers_the_repeated_hour_once_at_its_first_occurrence(
    zone: str, day: date, first_utc: datetime
) -> None:
    slots = slots_on(zone, every_day(time(0), time(3)), day)
    # 00:00-03:00 on the wall: six wall-clock slots, 01:00 and 01:30 in summer time (BST/IST).
    assert local_starts(slots, zone) == ["00:00", "00:30", "01:00", "01:30", "02:00", "02:30"]
    hour = timedelta(hours=1)
    assert [s.start for s in slots] == [first_utc + i * HALF_HOUR for i in range(4)] + [
        first_utc + hour + i * HALF_HOUR for i in range(4, 6)
    ]
    assert all(s.end - s.start == HALF_HOUR for s in slots)


def test_fall_back_window_inside_repeated_hour_is_offered_once() -> None:
    # Chicago repeats 01:00-02:00 on 1 November (CDT, then CST): only the CDT pass.
    slots = slots_on("America/Chicago", every_day(time(1), time(2)), date(2026, 11, 1))
    assert [s.start for s in slots] == [
        datetime(2026, 11, 1, 6, 0, tzinfo=UTC) + i * HALF_HOUR for i in range(2)
    ]


def test_window_ending_in_repeated_hour_stops_at_its_first_occurrence() -> None:
    # "Until 01:30" means the first time the clock shows 01:30 (still BST).
    slots = slots_on("Europe/London", every_day(time(0), time(1, 30)), date(2026, 10, 25))
    assert local_starts(slots, "Europe/London") == ["00:00", "00:30", "01:00"]
    assert slots[-1].end == datetime(2026, 10, 25, 0, 30, tzinfo=UTC)


@pytest.mark.parametrize("zone", ["Europe/London", "America/Chicago"])
def test_whole_day_windows_offer_every_wall_clock_slot_of_a_year_once(zone: str) -> None:
    """Every wall-clock slot of the year exactly once: the skipped hour has none, the
    repeated hour its first pass only, so one real hour of the fall-back night is idle."""
    start = datetime(2026, 1, 1, tzinfo=ZoneInfo(zone)).astimezone(UTC)
    end = datetime(2027, 1, 1, tzinfo=ZoneInfo(zone)).astimezone(UTC)
    slots = expand(
        Availability(zone, weekly=every_day(time(0), time(0))),
        now=start,
        horizon=end - start,
    )
    assert slots[0].start == start
    assert slots[-1].end == end
    assert all(a.end <= b.start for a, b in itertools.pairwise(slots))
    idle = [b.start - a.end for a, b in itertools.pairwise(slots) if a.end != b.start]
    assert idle == [timedelta(hours=1)]  # the second pass of the repeated hour
    tz = ZoneInfo(zone)
    walls = [s.start.astimezone(tz).replace(tzinfo=None) for s in slots]
    assert len(set(walls)) == len(walls)
    assert len(slots) == (end - start) // HALF_HOUR - 2


@pytest.mark.parametrize("zone", ["Africa/Johannesburg", "Africa/Maseru"])
def test_southern_africa_has_no_daylight_saving(zone: str) -> None:
    tz = ZoneInfo(zone)
    hour = datetime(2026, 1, 1, tzinfo=UTC)
    offsets = set()
    while hour.year == 2026:
        offsets.add(hour.astimezone(tz).utcoffset())
        hour += timedelta(hours=1)
    assert offsets == {timedelta(hours=2)}
    slots = expand(
        Availability(zone, weekly=every_day(time(9), time(12))),
        now=datetime(2026, 1, 1, tzinfo=UTC),
        horizon=timedelta(days=365),
    )
    assert len(slots) == 365 * 6
    assert {s.start.strftime("%H:%M") for s in slots} == {
        "07:00",
        "07:30",
        "08:00",
        "08:30",
        "09:00",
        "09:30",
    }


MONDAY = date(2026, 6, 1)
NOW = datetime(2026, 5, 31, 12, 0, tzinfo=UTC)  # a Sunday, Maseru 14:00


def maseru(day: date, hour: int, minute: int = 0) -> datetime:
    return datetime.combine(day, time(hour, minute), tzinfo=ZoneInfo("Africa/Maseru"))


def test_leave_removes_days_and_extra_hours_add_them() -> None:
    availability = Availability(
        "Africa/Maseru",
        weekly=(WeeklyWindow(0, time(18), time(19)), WeeklyWindow(2, time(18), time(19))),
        leave=(Leave(MONDAY + timedelta(days=7), MONDAY + timedelta(days=13)),),
        extra=(
            ExtraHours(MONDAY + timedelta(days=5), time(9), time(10)),
            # Extra hours inside the leave still count: a dated entry beats a range.
            ExtraHours(MONDAY + timedelta(days=9), time(9), time(9, 30)),
        ),
    )
    slots = expand(availability, now=NOW, horizon=timedelta(days=16))
    assert [s.start for s in slots] == [
        maseru(MONDAY, 18),
        maseru(MONDAY, 18, 30),
        maseru(MONDAY + timedelta(days=2), 18),
        maseru(MONDAY + timedelta(days=2), 18, 30),
        maseru(MONDAY + timedelta(days=5), 9),
        maseru(MONDAY + timedelta(days=5), 9, 30),
        maseru(MONDAY + timedelta(days=9), 9),
        maseru(MONDAY + timedelta(days=14), 18),
        maseru(MONDAY + timedelta(days=14), 18, 30),
    ]


def test_extra_hours_overlapping_the_week_are_offered_once() -> None:
    availability = Availability(
        "Africa/Maseru",
        weekly=(WeeklyWindow(0, time(18), time(19)),),
        extra=(ExtraHours(MONDAY, time(17, 30), time(18, 30)),),
    )
    slots = expand(availability, now=NOW, horizon=timedelta(days=2))
    assert [s.start for s in slots] == [maseru(MONDAY, 17, 30) + i * HALF_HOUR for i in range(3)]


def test_minimum_notice_horizon_and_away() -> None:
    availability = Availability(
        "Africa/Maseru", weekly=every_day(time(14), time(16)), min_notice=timedelta(hours=1)
    )
    slots = expand(availability, now=NOW, horizon=timedelta(hours=25, minutes=30))
    # Now is 14:00 local: the 14:00 and 14:30 slots are inside the notice period; the horizon
    # ends at 15:30 the next day, so the 15:30 slot (ending 16:00) is cut.
    assert [s.start for s in slots] == [
        maseru(NOW.date(), 15),
        maseru(NOW.date(), 15, 30),
        maseru(MONDAY, 14),
        maseru(MONDAY, 14, 30),
        maseru(MONDAY, 15),
    ]
    away = Availability("Africa/Maseru", weekly=every_day(time(14), time(16)), away=True)
    assert expand(away, now=NOW, horizon=timedelta(days=7)) == []


def test_window_ending_at_midnight_and_other_slot_lengths() -> None:
    availability = Availability("Europe/London", weekly=(WeeklyWindow(0, time(22), time(0)),))
    hour = expand(availability, now=NOW, horizon=timedelta(days=2), slot_length=timedelta(hours=1))
    assert [(s.start, s.end) for s in hour] == [
        (datetime(2026, 6, 1, 21, tzinfo=UTC), datetime(2026, 6, 1, 22, tzinfo=UTC)),
        (datetime(2026, 6, 1, 22, tzinfo=UTC), datetime(2026, 6, 1, 23, tzinfo=UTC)),
    ]
    quarter = expand(
        availability, now=NOW, horizon=timedelta(days=2), slot_length=timedelta(minutes=15)
    )
    assert len(quarter) == 8


@pytest.mark.parametrize(
    ("build", "error", "words"),
    [
        (
            lambda: WeeklyWindow(1, time(12), time(9)),
            InvalidWindowError,
            "Tuesday: window 12:00-09:00 is inverted",
        ),
        (lambda: WeeklyWindow(7, time(9), time(10)), InvalidWindowError, "weekday 7"),
        (lambda: WeeklyWindow(0, time(9, 0, 30), time(10)), InvalidWindowError, "whole minute"),
        (
            lambda: Leave(date(2026, 5, 2), date(2026, 5, 1)),
            InvalidWindowError,
            "2026-05-02..2026-05-01 is inverted",
        ),
        (
            lambda: ExtraHours(date(2026, 5, 1), time(10), time(10)),
            InvalidWindowError,
            "inverted or empty",
        ),
        (
            lambda: Availability(
                "Europe/London",
                weekly=(WeeklyWindow(2, time(9), time(11)), WeeklyWindow(2, time(10), time(12))),
            ),
            InvalidWindowError,
            "Wednesday: windows 09:00-11:00 and 10:00-12:00 overlap",
        ),
        (
            lambda: Availability(
                "Europe/London",
                extra=(
                    ExtraHours(date(2026, 5, 1), time(9), time(11)),
                    ExtraHours(date(2026, 5, 1), time(8), time(9, 30)),
                ),
            ),
            InvalidWindowError,
            "extra hours on 2026-05-01: windows 08:00-09:30 and 09:00-11:00 overlap",
        ),
        (lambda: Availability("Mars/Olympus_Mons"), UnknownTimeZoneError, "'Mars/Olympus_Mons'"),
        (lambda: Availability("Europe"), UnknownTimeZoneError, "'Europe'"),
        (lambda: Availability("../etc/passwd"), UnknownTimeZoneError, "'../etc/passwd'"),
        (
            lambda: Availability("UTC", min_notice=timedelta(minutes=-1)),
            SchedulingError,
            "negative",
        ),
        (lambda: WeeklyCap(max_consults=-1), SchedulingError, "negative"),
    ],
)
def test_bad_declarations_are_refused_with_a_clear_message(
    build: object, error: type[Exception], words: str
) -> None:
    with pytest.raises(error, match=words.replace("(", r"\(").replace(".", r"\.")):
        build()  # type: ignore[operator]


@pytest.mark.parametrize(
    ("length", "windows", "words"),
    [
        (timedelta(minutes=7), (), "7 minutes does not divide a day"),
        (timedelta(0), (), "positive whole number of minutes"),
        (timedelta(seconds=90), (), "positive whole number of minutes"),
        (timedelta(minutes=-30), (), "positive whole number of minutes"),
        (
            timedelta(minutes=30),
            (WeeklyWindow(4, time(9, 15), time(10)),),
            "Friday: window 09:15-10:00",
        ),
        (
            timedelta(hours=2),
            (WeeklyWindow(4, time(9), time(10)),),
            "not a whole number of 120-minute",
        ),
    ],
)
def test_slot_length_must_fit_the_windows(
    length: timedelta, windows: tuple[WeeklyWindow, ...], words: str
) -> None:
    availability = Availability("Europe/London", weekly=windows)
    with pytest.raises(InvalidSlotLengthError, match=words):
        expand(availability, now=NOW, horizon=timedelta(days=1), slot_length=length)


def test_naive_now_and_negative_horizon_are_refused() -> None:
    availability = Availability("Europe/London", weekly=every_day(time(9), time(10)))
    with pytest.raises(SchedulingError, match="aware"):
        expand(availability, now=datetime(2026, 6, 1), horizon=timedelta(days=1))  # noqa: DTZ001
    with pytest.raises(SchedulingError, match="horizon"):
        expand(availability, now=NOW, horizon=timedelta(days=-1))


def test_iso_week_is_the_specialists_week() -> None:
    # Sunday 23:30 in Toronto is already Monday 04:30 in UTC and Monday 06:30 in Maseru.
    instant = datetime(2026, 6, 7, 23, 30, tzinfo=ZoneInfo("America/Toronto"))
    assert iso_week(instant, "America/Toronto") == (2026, 23)
    assert iso_week(instant, "Africa/Maseru") == (2026, 24)


def test_weekly_cap_counts_consults_and_time_per_local_week() -> None:
    zone = "America/Toronto"
    tz = ZoneInfo(zone)

    def slot(day: int, hour: int, minutes: int = 30) -> TimeSlot:
        start = datetime(2026, 6, day, hour, tzinfo=tz)
        return TimeSlot(start, start + timedelta(minutes=minutes))

    booked = [slot(1, 18), slot(3, 18, 60), slot(7, 23)]  # Mon, Wed, Sun of ISO week 23
    usage = weekly_usage(booked, zone)
    assert usage[(2026, 23)].consults == 3
    assert usage[(2026, 23)].duration == timedelta(hours=2)
    by_count = WeeklyCap(max_consults=3)
    assert not fits_weekly_cap(by_count, booked, slot(5, 9), zone)
    assert fits_weekly_cap(by_count, booked, slot(8, 9), zone)  # next Monday: new week
    by_time = WeeklyCap(max_duration=timedelta(hours=2, minutes=30))
    assert fits_weekly_cap(by_time, booked, slot(5, 9), zone)
    assert not fits_weekly_cap(by_time, booked, slot(5, 9, 60), zone)
    assert fits_weekly_cap(WeeklyCap(), booked * 10, slot(5, 9), zone)


def test_covers_reads_the_wall_clock_across_local_midnight() -> None:
    """An all-day volunteer is available from 23:40 for half an hour although no one date's
    window holds it; a window that stops at midnight is not (the next day has none)."""
    maseru = ZoneInfo("Africa/Maseru")
    all_day = Availability("Africa/Maseru", weekly=every_day(time(0), time(0)))
    late = datetime(2026, 12, 3, 23, 40, tzinfo=maseru)
    assert covers(all_day, late, late + HALF_HOUR)
    evenings = Availability(
        "Africa/Maseru",
        weekly=(WeeklyWindow(3, time(18), time(0)),),  # Thursdays only
    )
    assert covers(evenings, late - HALF_HOUR, late)
    assert not covers(evenings, late, late + HALF_HOUR)
    on_leave = Availability(
        "Africa/Maseru",
        weekly=every_day(time(0), time(0)),
        leave=(Leave(date(2026, 12, 4), date(2026, 12, 4)),),
    )
    assert not covers(on_leave, late, late + HALF_HOUR)
    with pytest.raises(SchedulingError):
        covers(all_day, late.replace(tzinfo=None), late + HALF_HOUR)
