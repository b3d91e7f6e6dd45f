"""Times as people read and type them: in their own zone, with its abbreviation.

A core module (it imports nothing of the product but its errors and telemed.i18n) because
pages and the messages that leave by e-mail and SMS print times the same way: the web layer's
templates and the domains' notices both use it, and a domain never imports the web layer.

Names of days and months come from Babel's CLDR data for the language in force
(``telemed.i18n``: ``en``, or ``st_LS`` for Sesotho), so a Sesotho page says "15 Phupu"
where an English one says "15 Jul". Callers still write the familiar strftime codes; they
are turned into CLDR patterns here.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

from babel.dates import format_date, format_datetime
from babel.numbers import format_decimal

from telemed.errors import ValidationFailed
from telemed.i18n import N_, babel_locale
from telemed.validation import check_moment

# strftime codes the product uses and their CLDR equivalents.
_CLDR = {
    "d": "dd",
    "e": "d",
    "b": "MMM",
    "B": "MMMM",
    "m": "MM",
    "Y": "yyyy",
    "H": "HH",
    "M": "mm",
    "S": "ss",
    "a": "EEE",
    "A": "EEEE",
    "%": "'%'",
}


def cldr_pattern(fmt: str) -> str:
    """The CLDR pattern of a strftime format ("%d %b %Y" -> "dd MMM yyyy"); literal text is
    quoted so that its letters are not read as pattern fields."""
    out: list[str] = []
    literal: list[str] = []

    def flush() -> None:
        if literal:
            text = "".join(literal).replace("'", "''")
            out.append(f"'{text}'" if any(c.isalpha() for c in text) else text)
            literal.clear()

    index = 0
    while index < len(fmt):
        char = fmt[index]
        if char == "%" and index + 1 < len(fmt):
            code = fmt[index + 1]
            if code not in _CLDR:
                raise ValueError(f"cldr_pattern: no CLDR equivalent for %{code}")
            flush()
            out.append(_CLDR[code])
            index += 2
            continue
        literal.append(char)
        index += 1
    flush()
    return "".join(out)


def format_number(value: float | int, digits: int | None = None) -> str:
    """A number as the language in force writes it (grouping, decimal sign)."""
    pattern = None if digits is None else "#,##0." + "0" * digits if digits else "#,##0"
    return format_decimal(value, format=pattern, locale=babel_locale())


def local_time(value: datetime | None, zone: ZoneInfo, fmt: str = "%d %b %Y %H:%M") -> str:
    """``value`` on the clocks of ``zone``, its abbreviation named (e.g. "15 Jul 2026 11:00
    BST", in Sesotho "15 Upu 2026 11:00 BST"); "" for no time."""
    if value is None:
        return ""
    local_value = value.astimezone(zone)
    text = format_datetime(local_value, cldr_pattern(fmt), tzinfo=zone, locale=babel_locale())
    return f"{text} {local_value.tzname()}"


def format_day(value: date | None, fmt: str = "%d %b %Y") -> str:
    """A calendar day (no zone: it is a date, not an instant) as the language in force
    writes it; "" for none."""
    if value is None:
        return ""
    return format_date(value, cldr_pattern(fmt), locale=babel_locale())


def clip_length(ms: int | None) -> str:
    """The length of a recording as players show it: "0:42", "2:59"; "" if unknown."""
    if ms is None:
        return ""
    seconds = round(ms / 1000)
    return f"{seconds // 60}:{seconds % 60:02d}"


def local(at: datetime, zone: str, fmt: str = "%a %d %b %Y %H:%M") -> str:
    """A time in the zone named ``zone`` (e.g. "Wed 03 Dec 2026 14:00 SAST")."""
    return local_time(at, ZoneInfo(zone), fmt)


def parse_local(value: str, zone_name: str) -> datetime:
    """A date and time typed in ``zone_name`` (``2026-12-03T14:00``) as a UTC instant.

    A time that does not exist there (skipped when the clocks go forward) is refused; one
    that happens twice (when they go back) is taken at its first occurrence."""
    text = value.strip()
    if not text:
        raise ValidationFailed(N_("choose the new date and time"), field="starts_at")
    try:
        naive = datetime.fromisoformat(text)
    except ValueError as exc:
        raise ValidationFailed(
            N_("enter the date and time as YYYY-MM-DD HH:MM"), field="starts_at"
        ) from exc
    # Checked before any conversion: 9999-12-31 23:45 at +14:00 has no UTC instant.
    check_moment(naive, "starts_at")
    if naive.tzinfo is not None:
        return naive.astimezone(UTC)
    zone = ZoneInfo(zone_name)
    aware = naive.replace(tzinfo=zone, fold=0)
    if aware.astimezone(UTC).astimezone(zone).replace(tzinfo=None) != naive:
        raise ValidationFailed(
            N_(
                "%(time)s does not exist in %(zone_name)s: the clocks change then; choose another"
                " time"
            ),
            time=format(naive, "%d %b %Y %H:%M"),
            zone_name=zone_name,
            field="starts_at",
        )
    return aware.astimezone(UTC)
