"""The dashboard's filters: which months, bucketed by week or month, and which district,
facility, specialty and urgency. Parsed once from the query string; a bad value is a 422
naming its field, never a 500 nor an empty page that looks like "no uptake".

Periods are in Maseru's calendar (Africa/Maseru): a month starts at local midnight on its
first day, so a request at 23:30 UTC on 31 October counts in November.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from functools import cached_property
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from sqlmodel import Session, col, select

from telemed.consults.models import Specialty, Urgency
from telemed.errors import ValidationFailed
from telemed.facilities.models import District, Facility
from telemed.i18n import N_

MASERU = ZoneInfo("Africa/Maseru")
MAX_MONTHS = 36  # three years: enough for any trend, bounded for the page and the database
DEFAULT_MONTHS = 6
_MONTH = re.compile(r"^(\d{4})-(\d{2})$")


class Period(StrEnum):
    week = "week"
    month = "month"


def month_start(day: date) -> date:
    return day.replace(day=1)


def next_month(day: date) -> date:
    return (day.replace(day=1) + timedelta(days=32)).replace(day=1)


def maseru_midnight(day: date) -> datetime:
    """The UTC instant at which ``day`` begins in Maseru."""
    return datetime.combine(day, time(0), MASERU).astimezone(UTC)


def in_maseru(value: datetime) -> datetime:
    """A stored time in Maseru (a scalar subquery on SQLite gives it back without zone)."""
    return (value if value.tzinfo else value.replace(tzinfo=UTC)).astimezone(MASERU)


def maseru_today(now: datetime) -> date:
    return now.astimezone(MASERU).date()


@dataclass(frozen=True)
class Bucket:
    start: date  # first day, Maseru
    end: date  # the day after the last

    @property
    def key(self) -> str:
        return self.start.isoformat()


@dataclass(frozen=True)
class Filters:
    """``first`` .. ``end`` (exclusive) are Maseru dates; codes are validated."""

    period: Period
    first: date
    end: date
    district: str | None = None
    facility: str | None = None
    specialty: str | None = None
    urgency: Urgency | None = None

    @property
    def start_utc(self) -> datetime:
        return maseru_midnight(self.first)

    @property
    def end_utc(self) -> datetime:
        return maseru_midnight(self.end)

    def buckets(self) -> list[Bucket]:
        """Months, or ISO weeks (Monday to Sunday) cut at the range's ends."""
        edges = [self.first]
        day = self.first
        while day < self.end:
            if self.period is Period.month:
                day = next_month(day)
            else:
                day = day + timedelta(days=7 - day.weekday())
            edges.append(min(day, self.end))
        return [Bucket(a, b) for a, b in itertools.pairwise(edges)]

    def narrowed(self, bucket: Bucket) -> Filters:
        return replace(self, first=bucket.start, end=bucket.end)

    def query(self, **extra: str | None) -> str:
        """The query string that gives these filters back (for links and CSV), with
        ``extra`` parameters after them (none of the filters' own names)."""
        more = {k: v for k, v in extra.items() if v}
        return self._query + "&" + urlencode(more) if more else self._query

    @cached_property
    def _query(self) -> str:
        """The filters' own part, encoded once: a dashboard links ~900 numbers."""
        params: dict[str, str] = {
            "period": self.period.value,
            "from": f"{self.first:%Y-%m}",
            "to": f"{self.end - timedelta(days=1):%Y-%m}",
        }
        for name in ("district", "facility", "specialty"):
            value = getattr(self, name)
            if value:
                params[name] = value
        if self.urgency:
            params["urgency"] = self.urgency.value
        return urlencode(params)


def month_filters(month: date) -> Filters:
    """One Maseru calendar month, every district, facility, specialty and urgency (the
    DHIS2 export's period)."""
    first = month_start(month)
    return Filters(Period.month, first, next_month(first))


def _month(value: str, field: str) -> date:
    match = _MONTH.match(value.strip())
    if not match or not 1 <= int(match.group(2)) <= 12:
        raise ValidationFailed(
            N_("%(name)s must be a month written YYYY-MM, not %(given)s"),
            name=field,
            given=repr(value),
            field=field,
        )
    return date(int(match.group(1)), int(match.group(2)), 1)


def parse(
    session: Session,
    now: datetime,
    *,
    period: str | None = None,
    from_: str | None = None,
    to: str | None = None,
    district: str | None = None,
    facility: str | None = None,
    specialty: str | None = None,
    urgency: str | None = None,
) -> Filters:
    """Filters from the query string's values (empty means "not given"). The range runs
    from the first day of ``from_`` to the end of ``to``, but not past today (Maseru)."""
    try:
        kind = Period(period or Period.month)
    except ValueError:
        raise ValidationFailed(N_("period must be 'week' or 'month'"), field="period") from None
    today = maseru_today(now)
    this_month = month_start(today)
    last = _month(to, "to") if to else this_month
    if last > this_month:
        raise ValidationFailed(
            N_("to (%(last)s) is in the future"), last=format(last, "%Y-%m"), field="to"
        )
    if from_:
        first = _month(from_, "from")
    else:
        first = last
        for _ in range(DEFAULT_MONTHS - 1):
            first = month_start(first - timedelta(days=1))
    if first > this_month:
        raise ValidationFailed(
            N_("from (%(first)s) is in the future"), first=format(first, "%Y-%m"), field="from"
        )
    if first > last:
        raise ValidationFailed(N_("from must not be after to"), field="from")
    months = (last.year - first.year) * 12 + last.month - first.month + 1
    if months > MAX_MONTHS:
        raise ValidationFailed(
            N_("at most %(max_months)s months at once"), max_months=MAX_MONTHS, field="from"
        )
    end = min(next_month(last), today + timedelta(days=1))
    return Filters(
        period=kind,
        first=first,
        end=end,
        district=_known(session, col(District.code), district, "district"),
        facility=_known(session, col(Facility.code), facility, "facility"),
        specialty=_known(session, col(Specialty.code), specialty, "specialty"),
        urgency=_urgency(urgency),
    )


def _known(session: Session, column: Any, value: str | None, field: str) -> str | None:
    if not value:
        return None
    found = session.execute(select(column).where(column == value)).first()
    if found is None:
        raise ValidationFailed(
            N_("unknown %(name)s code %(given)s"), name=field, given=repr(value), field=field
        )
    return value


def _urgency(value: str | None) -> Urgency | None:
    if not value:
        return None
    try:
        return Urgency(value)
    except ValueError:
        allowed = ", ".join(u.value for u in Urgency)
        raise ValidationFailed(
            N_("unknown urgency %(given)s; one of %(allowed)s"),
            given=repr(value),
            allowed=allowed,
            field="urgency",
        ) from None
