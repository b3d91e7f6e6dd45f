"""Which backups to keep: the newest of each of the last ``daily`` days that have one,
and the newest of each of the last ``weekly`` ISO weeks that have one (UTC calendar).

Pure: names and times in, names out, so that it is tested with any clock.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Mapping
from datetime import date, datetime


def _newest_per_period(
    backups: Mapping[str, datetime], period: Callable[[datetime], Hashable], count: int
) -> set[str]:
    newest: dict[Hashable, tuple[datetime, str]] = {}
    for name, at in backups.items():
        key = period(at)
        if key not in newest or newest[key] < (at, name):
            newest[key] = (at, name)
    latest = sorted(newest.values(), reverse=True)[:count]
    return {name for _, name in latest}


def _day(at: datetime) -> date:
    return at.date()


def _week(at: datetime) -> tuple[int, int]:
    iso = at.isocalendar()
    return (iso.year, iso.week)


def to_keep(backups: Mapping[str, datetime], daily: int, weekly: int) -> set[str]:
    """The names among ``backups`` (name -> UTC time) that retention keeps."""
    return _newest_per_period(backups, _day, daily) | _newest_per_period(backups, _week, weekly)
