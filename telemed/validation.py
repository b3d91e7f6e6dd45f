"""What any input must be before it reaches a service or the database, written once.

PostgreSQL refuses a NUL in a text column and an integer past 2**31 - 1 in an id column,
SQLite one past 2**63 - 1, and Python refuses a date past the year 9999: each of these,
arriving unchecked, was a 500. The web layer (``telemed.web.input_guard``) checks every
text of every request against :func:`text_problem`, and the annotated types below carry
the narrower rules (an id's range, a date's window, a canonical zone, a name without
direction overrides) into the schemas and forms that use them, and so into the OpenAPI
document. The checks raise :class:`ValueError` (pydantic makes it a 422 naming the field)
or, through the ``check_*`` helpers, :class:`ValidationFailed` with the field.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, date, datetime, time
from functools import cache
from typing import Annotated, TypeVar
from zoneinfo import available_timezones

from annotated_types import Ge, Le
from pydantic import AfterValidator, WithJsonSchema

from telemed.errors import ValidationFailed
from telemed.i18n import gettext

T = TypeVar("T")

# Integer columns are 32-bit on PostgreSQL (SERIAL); an id past that is no row of ours.
MAX_ID = 2**31 - 1

# C0 controls but tab, line feed and carriage return (a textarea sends CR LF), DEL, the C1
# controls, and lone surrogates (JSON can spell one; no database can store it).
_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff]")
# Line breaks have no place in a single-line value (a name, an e-mail address, a zone).
_LINE_BREAK = re.compile("[\n\r\u2028\u2029]")
# Embedding, override and isolate controls: they make "Dr. Alice" display as another name.
_BIDI = re.compile("[\u202a-\u202e\u2066-\u2069]")

# The dates a clinical record can mean. Outside it the year is a typing slip (or an
# attack on the date arithmetic: 9999-12-31 plus a half-hour slot does not exist).
EARLIEST = date(1900, 1, 1)
LATEST = date(2199, 12, 31)
_FIRST_MOMENT = datetime(2000, 1, 1, tzinfo=UTC)
_LAST_MOMENT = datetime(2100, 1, 1, tzinfo=UTC)

# Zones of a place (Area/Location), plus UTC; not "localtime", "posixrules", "Factory",
# the "posix/" and "right/" copies, nor the old abbreviations ("EST", "US/Eastern").
_AREAS = (
    "Africa/",
    "America/",
    "Antarctica/",
    "Arctic/",
    "Asia/",
    "Atlantic/",
    "Australia/",
    "Europe/",
    "Indian/",
    "Pacific/",
)


# A mobile number in E.164: "+", the country code, then the subscriber number, 8 to 15
# digits in all. Spaces, dots, dashes and brackets a person types are dropped first.
E164 = re.compile(r"\+[1-9][0-9]{6,14}")
_PHONE_PUNCTUATION = re.compile(r"[\s.()-]")


def compact_phone(value: str) -> str:
    """``value`` without what people type between digits (``+266 58 12-3456``)."""
    return _PHONE_PUNCTUATION.sub("", value)


def phone_problem(value: str) -> str | None:
    """Why ``value`` (compacted) is no E.164 number, or None; blank is no number at all."""
    if not value or E164.fullmatch(value):
        return None
    return gettext("write the number with + and the country code, e.g. +26658123456")


def text_problem(value: str) -> str | None:
    """Why ``value`` cannot be stored (a control character, and where), or None."""
    found = _CONTROL.search(value)
    if found is None:
        return None
    return gettext(
        "contains a control character (%(character)s) at position %(position)d; remove it"
    ) % {"character": f"U+{ord(found.group()):04X}", "position": found.start() + 1}


def _refusing(problem: Callable[[T], str | None]) -> Callable[[T], T]:
    """A pydantic validator of ``problem``: its message becomes a 422 naming the field."""

    def check(value: T) -> T:
        found = problem(value)
        if found:
            raise ValueError(found)
        return value

    return check


def _checked(problem: Callable[[T], str | None], value: T, field: str) -> T:
    found = problem(value)
    if found:
        raise ValidationFailed(found, field=field)
    return value


_plain_text = _refusing(text_problem)


def _one_line(value: str) -> str:
    _plain_text(value)
    if _LINE_BREAK.search(value):
        raise ValueError(gettext("must be on one line"))
    return value


def _name(value: str) -> str:
    _one_line(value)
    if _BIDI.search(value):
        raise ValueError(gettext("contains a text-direction control character; remove it"))
    return value


def _phone(value: str) -> str:
    """The number as stored: compacted, checked."""
    compact = compact_phone(value.strip())
    found = phone_problem(compact)
    if found:
        raise ValueError(found)
    return compact


@cache
def canonical_zones() -> frozenset[str]:
    """The IANA zones a person can be in."""
    return frozenset(z for z in available_timezones() if z.startswith(_AREAS)) | {"UTC"}


@cache
def zone_choices() -> tuple[tuple[str, str], ...]:
    """Every canonical zone with the city a person looks for (``America/New_York`` is
    "New York · America"), sorted by zone: the time-zone picker's list."""
    choices = []
    for zone in sorted(canonical_zones()):
        region, _, place = zone.partition("/")
        city = place.rpartition("/")[2].replace("_", " ") if place else zone
        choices.append((zone, f"{city} · {region}" if place else zone))
    return tuple(choices)


def zone_problem(name: str) -> str | None:
    if name in canonical_zones():
        return None
    return gettext("unknown time zone; choose one such as Africa/Maseru")


def date_problem(value: date) -> str | None:
    if EARLIEST <= value <= LATEST:
        return None
    return gettext("choose a date between %(first)s and %(last)s") % {
        "first": EARLIEST.isoformat(),
        "last": LATEST.isoformat(),
    }


def moment_problem(value: datetime) -> str | None:
    """Why an instant is outside the years a booking or a report can be about, or None.
    A naive value is taken as UTC (the callers that need an offset check it first)."""
    aware = value if value.tzinfo is not None else value.replace(tzinfo=UTC)
    if _FIRST_MOMENT <= aware < _LAST_MOMENT:
        return None
    return gettext("choose a time between the years %(first)d and %(last)d") % {
        "first": _FIRST_MOMENT.year,
        "last": _LAST_MOMENT.year - 1,
    }


def time_problem(value: time) -> str | None:
    if value.tzinfo is None:
        return None
    return gettext("give the time without an offset (e.g. 09:00): it is in your own zone")


def check_zone(name: str, field: str = "timezone") -> str:
    return _checked(zone_problem, name, field)


def check_moment(value: datetime, field: str) -> datetime:
    return _checked(moment_problem, value, field)


def check_date(value: date, field: str) -> date:
    return _checked(date_problem, value, field)


Id = Annotated[int, Ge(1), Le(MAX_ID)]
"""A row's id, in a path, a query, a form or a body: past the column's range it is 422."""

Count = Annotated[int, Ge(0), Le(MAX_ID)]
"""A count or size stored in an integer column."""

Text = Annotated[str, AfterValidator(_plain_text)]
"""Free text (a message, a note): tabs and line breaks allowed, other controls not."""

Line = Annotated[str, AfterValidator(_one_line)]
"""A single-line value (an e-mail address, a code, a file name)."""

Name = Annotated[str, AfterValidator(_name)]
"""A person's name: one line, without text-direction controls."""

Zone = Annotated[str, AfterValidator(_refusing(zone_problem))]
"""A canonical IANA time zone (``Africa/Maseru``)."""

Phone = Annotated[str, AfterValidator(_phone)]
"""A mobile number for SMS in E.164 (``+26658123456``), or "" for none."""

Day = Annotated[date, AfterValidator(_refusing(date_problem))]
"""A calendar date within the record's years."""

Moment = Annotated[datetime, AfterValidator(_refusing(moment_problem))]
"""An instant within the years of bookings."""

ClockTime = Annotated[
    time,
    AfterValidator(_refusing(time_problem)),
    # Not "format: time": RFC 3339 requires an offset there, and a time on a weekly grid
    # has none (it is in the person's own zone).
    WithJsonSchema(
        {
            "type": "string",
            "pattern": r"^([01][0-9]|2[0-3]):[0-5][0-9](:[0-5][0-9](\.[0-9]{1,6})?)?$",
            "examples": ["09:00"],
        }
    ),
]
"""A time of day on a clock, without a zone (``09:00``)."""
