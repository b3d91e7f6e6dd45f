"""Property tests for availability expansion against a naive oracle on ordinary days."""

from __future__ import annotations

import itertools
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from hypothesis import given, settings
from hypothesis import strategies as st

from scheduling import Availability, ExtraHours, Leave, WeeklyWindow, expand
from scheduling.availability import local_spans

ZONES = [
    "Africa/Maseru",
    "Africa/Johannesburg",
    "Europe/London",
    "Europe/Dublin",
    "America/Toronto",
    "America/Chicago",
    "Australia/Lord_Howe",  # half-hour daylight saving
    "America/St_Johns",  # half-hour offset
    "Asia/Kathmandu",  # 45-minute offset
]
SLOT_MINUTES = [15, 30, 60]


@st.composite
def availabilities(draw: st.DrawFn) -> tuple[Availability, int]:
    minutes = draw(st.sampled_from(SLOT_MINUTES))
    per_day = 24 * 60 // minutes

    def spans(max_count: int) -> list[tuple[int, int]]:
        cuts = sorted(draw(st.sets(st.integers(0, per_day), max_size=2 * max_count)))
        pairs = list(zip(cuts[::2], cuts[1::2], strict=False))
        return [(a * minutes, b * minutes) for a, b in pairs if b > a]

    def as_time(value: int) -> time:
        return time(0) if value == 24 * 60 else time(value // 60, value % 60)

    weekly = tuple(
        WeeklyWindow(day, as_time(a), as_time(b)) for day in range(7) for a, b in spans(2)
    )
    first = date(2026, 1, 1)
    leave_start = first + timedelta(days=draw(st.integers(0, 360)))
    leave = (Leave(leave_start, leave_start + timedelta(days=draw(st.integers(0, 10)))),)
    extra_day = first + timedelta(days=draw(st.integers(0, 360)))
    extra = tuple(ExtraHours(extra_day, as_time(a), as_time(b)) for a, b in spans(1))
    availability = Availability(
        draw(st.sampled_from(ZONES)),
        weekly=weekly,
        leave=leave,
        extra=extra,
        min_notice=timedelta(minutes=draw(st.integers(0, 48 * 60))),
    )
    return availability, minutes


@settings(max_examples=120, deadline=None)
@given(
    declared=availabilities(),
    offset_minutes=st.integers(0, 360 * 24 * 60),
    horizon_days=st.integers(0, 21),
)
def test_expansion_matches_wall_clock_on_ordinary_days(
    declared: tuple[Availability, int], offset_minutes: int, horizon_days: int
) -> None:
    availability, minutes = declared
    step = timedelta(minutes=minutes)
    now = datetime(2026, 1, 1, tzinfo=UTC) + timedelta(minutes=offset_minutes)
    horizon = timedelta(days=horizon_days)
    slots = expand(availability, now=now, horizon=horizon, slot_length=step)

    # Global invariants: sorted, disjoint, fixed length, UTC, inside notice and horizon.
    assert all(s.end - s.start == step for s in slots)
    assert all(a.end <= b.start for a, b in itertools.pairwise(slots))
    assert all(s.start.tzinfo is UTC for s in slots)
    assert all(s.start >= now + availability.min_notice and s.end <= now + horizon for s in slots)

    # On a local date whose UTC offset does not change, slots are exactly the wall-clock grid.
    zone = ZoneInfo(availability.time_zone)
    earliest, latest = now + availability.min_notice, now + horizon
    by_day: dict[date, list[datetime]] = {}
    for slot in slots:
        by_day.setdefault(slot.start.astimezone(zone).date(), []).append(slot.start)
    day = earliest.astimezone(zone).date()
    while day <= latest.astimezone(zone).date():
        midnight = datetime.combine(day, time(0), tzinfo=zone)
        following = datetime.combine(day + timedelta(days=1), time(0), tzinfo=zone)
        if midnight.utcoffset() == following.utcoffset() == (following - step).utcoffset():
            expected = [
                (midnight + timedelta(minutes=m)).astimezone(UTC)
                for a, b in local_spans(availability, day)
                for m in range(a, b, minutes)
            ]
            expected = [t for t in expected if t >= earliest and t + step <= latest]
            assert by_day.get(day, []) == expected
        day += timedelta(days=1)
