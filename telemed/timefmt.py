"""Times as people read and type them: in their own zone, with its abbreviation.

A core module (it imports nothing of the product but its errors) because pages and the
messages that leave by e-mail and SMS print times the same way: the web layer's templates
and the domains' notices both use it, and a domain never imports the web layer.
"""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from telemed.errors import ValidationFailed


def local_time(value: datetime | None, zone: ZoneInfo, fmt: str = "%d %b %Y %H:%M") -> str:
    """``value`` on the clocks of ``zone``, its abbreviation named (e.g. "15 Jul 2026 11:00
    BST"); "" for no time."""
    if value is None:
        return ""
    local_value = value.astimezone(zone)
    return f"{local_value.strftime(fmt)} {local_value.tzname()}"


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
        raise ValidationFailed("choose the new date and time", field="starts_at")
    try:
        naive = datetime.fromisoformat(text)
    except ValueError as exc:
        raise ValidationFailed(
            "enter the date and time as YYYY-MM-DD HH:MM", field="starts_at"
        ) from exc
    if naive.tzinfo is not None:
        return naive.astimezone(UTC)
    zone = ZoneInfo(zone_name)
    aware = naive.replace(tzinfo=zone, fold=0)
    if aware.astimezone(UTC).astimezone(zone).replace(tzinfo=None) != naive:
        raise ValidationFailed(
            f"{naive:%d %b %Y %H:%M} does not exist in {zone_name}: the clocks change "
            "then; choose another time",
            field="starts_at",
        )
    return aware.astimezone(UTC)
