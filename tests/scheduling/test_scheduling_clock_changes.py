"""The clock-change rule on real 2026 change nights (scheduling/availability.py docstring).

A window means the wall-clock hours it names; each wall-clock slot is offered once, on the
grid from the window's start; the repeated hour of a fall-back night at its first (summer
time) occurrence only; the skipped hour of a spring-forward night not at all. Every expected
instant below was worked out by hand from the zone's published change, not from the code.
"""

from __future__ import annotations

import itertools
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from scheduling import Availability, TimeSlot, WeeklyWindow, expand


def z(day: date, hour: int, minute: int = 0) -> datetime:
    return datetime.combine(day, time(hour, minute), tzinfo=UTC)


def expanded(zone: str, day: date, start: time, end: time, minutes: int = 30) -> list[TimeSlot]:
    """Slots of the window on every weekday whose local start date is ``day``."""
    windows = tuple(WeeklyWindow(d, start, end) for d in range(7))
    now = datetime.combine(day - timedelta(days=2), time(0), tzinfo=UTC)
    slots = expand(
        Availability(zone, weekly=windows),
        now=now,
        horizon=timedelta(days=5),
        slot_length=timedelta(minutes=minutes),
    )
    tz = ZoneInfo(zone)
    return [s for s in slots if s.start.astimezone(tz).date() == day]


LONDON_OCT, LONDON_MAR = date(2026, 10, 25), date(2026, 3, 29)
CHICAGO_NOV, CHICAGO_MAR = date(2026, 11, 1), date(2026, 3, 8)
APRIL_5, APRIL_4 = date(2026, 4, 5), date(2026, 4, 4)  # the southern autumn change
AUCKLAND_SEP, SEP_26 = date(2026, 9, 27), date(2026, 9, 26)
OCTOBER_4, OCTOBER_3 = date(2026, 10, 4), date(2026, 10, 3)  # Sydney, Lord Howe spring

CASES = [
    # London, 25 October: 02:00 BST -> 01:00 GMT; 01:00-02:00 repeats.
    # The case: 01:30-02:00 is one slot, 01:30 BST, not 01:30 BST, 01:00 and 01:30 GMT.
    ("Europe/London", LONDON_OCT, time(1, 30), time(2), 30, [z(LONDON_OCT, 0, 30)]),
    (
        "Europe/London",
        LONDON_OCT,
        time(1),
        time(3),
        30,
        [z(LONDON_OCT, 0), z(LONDON_OCT, 0, 30), z(LONDON_OCT, 2), z(LONDON_OCT, 2, 30)],
    ),
    # London, 29 March: 01:00 GMT -> 02:00 BST. 45-minute slots stay on the grid from 00:00
    # (00:00, 00:45, 01:30, 02:15): 00:45 reaches into the skipped hour, 01:30 is in it.
    ("Europe/London", LONDON_MAR, time(0), time(3), 45, [z(LONDON_MAR, 0), z(LONDON_MAR, 1, 15)]),
    ("Europe/London", LONDON_MAR, time(1), time(2), 30, []),
    # Houston (America/Chicago), 1 November: 02:00 CDT -> 01:00 CST.
    (
        "America/Chicago",
        CHICAGO_NOV,
        time(0, 30),
        time(2, 30),
        30,
        [z(CHICAGO_NOV, 5, 30), z(CHICAGO_NOV, 6), z(CHICAGO_NOV, 6, 30), z(CHICAGO_NOV, 8)],
    ),
    # Houston, 8 March: 02:00 CST -> 03:00 CDT.
    (
        "America/Chicago",
        CHICAGO_MAR,
        time(1),
        time(4),
        30,
        [z(CHICAGO_MAR, 7), z(CHICAGO_MAR, 7, 30), z(CHICAGO_MAR, 8), z(CHICAGO_MAR, 8, 30)],
    ),
    # Auckland, 5 April: 03:00 NZDT (+13) -> 02:00 NZST (+12); 02:00-03:00 repeats.
    (
        "Pacific/Auckland",
        APRIL_5,
        time(1, 30),
        time(3, 30),
        30,
        [z(APRIL_4, 12, 30), z(APRIL_4, 13), z(APRIL_4, 13, 30), z(APRIL_4, 15)],
    ),
    # Auckland, 27 September: 02:00 NZST (+12) -> 03:00 NZDT (+13).
    (
        "Pacific/Auckland",
        AUCKLAND_SEP,
        time(1),
        time(4),
        30,
        [z(SEP_26, 13), z(SEP_26, 13, 30), z(SEP_26, 14), z(SEP_26, 14, 30)],
    ),
    # Sydney, 5 April: 03:00 AEDT (+11) -> 02:00 AEST (+10); only the AEDT pass.
    ("Australia/Sydney", APRIL_5, time(2), time(3), 30, [z(APRIL_4, 15), z(APRIL_4, 15, 30)]),
    # Sydney, 4 October: 02:00 AEST (+10) -> 03:00 AEDT (+11).
    ("Australia/Sydney", OCTOBER_4, time(2), time(3), 30, []),
    (
        "Australia/Sydney",
        OCTOBER_4,
        time(1, 30),
        time(3, 30),
        30,
        [z(OCTOBER_3, 15, 30), z(OCTOBER_3, 16)],
    ),
    # Lord Howe, 5 April: 02:00 (+11) -> 01:30 (+10:30); half an hour repeats.
    (
        "Australia/Lord_Howe",
        APRIL_5,
        time(1),
        time(2, 30),
        30,
        [z(APRIL_4, 14), z(APRIL_4, 14, 30), z(APRIL_4, 15, 30)],
    ),
    # Lord Howe, 4 October: 02:00 (+10:30) -> 02:30 (+11); half an hour is skipped.
    (
        "Australia/Lord_Howe",
        OCTOBER_4,
        time(1, 30),
        time(3),
        30,
        [z(OCTOBER_3, 15), z(OCTOBER_3, 15, 30)],
    ),
    # An hour slot that ends exactly when the clock jumps is whole; the next one is skipped.
    ("Australia/Lord_Howe", OCTOBER_4, time(1), time(3), 60, [z(OCTOBER_3, 14, 30)]),
]


@pytest.mark.parametrize(("zone", "day", "start", "end", "minutes", "expected"), CASES)
def test_change_nights_offer_each_wall_clock_slot_once(
    zone: str,
    day: date,
    start: time,
    end: time,
    minutes: int,
    expected: list[datetime],
) -> None:
    slots = expanded(zone, day, start, end, minutes)
    assert [s.start for s in slots] == expected
    length = timedelta(minutes=minutes)
    assert all(s.end - s.start == length for s in slots)
    assert all(a.end <= b.start for a, b in itertools.pairwise(slots))
    tz = ZoneInfo(zone)
    # Never a wall time outside the window, always on its grid.
    for slot in slots:
        wall = slot.start.astimezone(tz)
        minute = wall.hour * 60 + wall.minute
        assert start.hour * 60 + start.minute <= minute
        assert minute + minutes <= end.hour * 60 + end.minute
        assert (minute - start.hour * 60 - start.minute) % minutes == 0


@pytest.mark.parametrize(
    ("zone", "day"),
    [
        ("Europe/London", LONDON_OCT),
        ("Europe/London", LONDON_MAR),
        ("America/Chicago", CHICAGO_NOV),
        ("America/Chicago", CHICAGO_MAR),
        ("Pacific/Auckland", APRIL_5),
        ("Pacific/Auckland", AUCKLAND_SEP),
        ("Australia/Sydney", APRIL_5),
        ("Australia/Sydney", OCTOBER_4),
        ("Australia/Lord_Howe", APRIL_5),
        ("Australia/Lord_Howe", OCTOBER_4),
    ],
)
def test_a_whole_change_day_is_the_wall_clock_grid_minus_the_skipped_times(
    zone: str, day: date
) -> None:
    """Each of the 48 wall-clock half hours at most once, and only the skipped ones missing."""
    tz = ZoneInfo(zone)
    slots = expanded(zone, day, time(0), time(0))
    walls = [s.start.astimezone(tz).strftime("%H:%M") for s in slots]
    assert len(set(walls)) == len(walls)
    grid = [f"{m // 60:02d}:{m % 60:02d}" for m in range(0, 24 * 60, 30)]
    missing = [
        w
        for w in grid
        if datetime.combine(day, time.fromisoformat(w), tzinfo=tz)
        .astimezone(UTC)
        .astimezone(tz)
        .strftime("%H:%M")
        != w
    ]
    assert walls == [w for w in grid if w not in missing]
