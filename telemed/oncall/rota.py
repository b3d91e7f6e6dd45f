"""Weekly on-call blocks as real instants, and the hours nobody covers.

The clock-change rule is the availability windows' (``scheduling.availability``): a block
means the wall-clock hours it names in the specialist's zone, each end being the first
instant the wall clock reads that time. "Sunday 00:00-06:00 London" is therefore 7 real
hours on the October change night and 5 on the March one; the coordinator's gap report
counts real hours, so it stays right on those nights. Only reads, no database.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from scheduling.availability import first_instant

Span = tuple[datetime, datetime]
DAY = timedelta(days=1)


@dataclass(frozen=True)
class Weekly:
    """A block's shape: weekday 0 = Monday, [start, end), end 00:00 = midnight after."""

    weekday: int
    start: time
    end: time

    @property
    def minutes(self) -> tuple[int, int]:
        """Wall-clock minutes from the day's start; midnight at the end is 1440."""
        end = self.end.hour * 60 + self.end.minute
        return self.start.hour * 60 + self.start.minute, end if end else 24 * 60


def spans(block: Weekly, zone: ZoneInfo, first_day: date, last_day: date) -> list[Span]:
    """The block's UTC spans on the local dates first_day..last_day (inclusive)."""
    found = []
    day = first_day
    while day <= last_day:
        if day.weekday() == block.weekday:
            start = first_instant(datetime.combine(day, block.start), zone)
            end_day = day + DAY if block.end == time(0) else day
            end = first_instant(datetime.combine(end_day, block.end), zone)
            if end > start:
                found.append((start, end))
        day += DAY
    return found


def within(block: Weekly, zone: ZoneInfo, start: datetime, end: datetime) -> list[Span]:
    """The block's spans clipped to [start, end)."""
    first = start.astimezone(zone).date() - DAY
    last = end.astimezone(zone).date() + DAY
    return [
        (max(a, start), min(b, end))
        for a, b in spans(block, zone, first, last)
        if a < end and b > start
    ]


def covers(block: Weekly, zone: ZoneInfo, at: datetime) -> bool:
    return bool(within(block, zone, at, at + timedelta(microseconds=1)))


def merged(found: Iterable[Span]) -> list[Span]:
    out: list[Span] = []
    for start, end in sorted(found):
        if out and start <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], end))
        else:
            out.append((start, end))
    return out


def gaps(covered: Sequence[Span], start: datetime, end: datetime) -> list[Span]:
    """The parts of [start, end) no span covers."""
    out = []
    cursor = start
    for a, b in merged(covered):
        if a > cursor:
            out.append((cursor, min(a, end)))
        cursor = max(cursor, b)
        if cursor >= end:
            break
    if cursor < end:
        out.append((cursor, end))
    return [(a, b) for a, b in out if b > a]


def hours(found: Sequence[Span]) -> float:
    return sum((b - a).total_seconds() for a, b in found) / 3600
