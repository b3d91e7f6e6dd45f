"""The availability editor and registration forms: text fields to schemas, errors back.

Windows are typed per weekday as ``09:00-12:00, 14:00-16:00`` (no JavaScript needed);
leave one range a line (``2026-04-01..2026-04-14``); extra hours one a line
(``2026-04-03 09:00-12:00``). Every time is in the specialist's own zone.
"""

from __future__ import annotations

import re
from datetime import date, time
from typing import Any

from pydantic import ValidationError
from starlette.datastructures import FormData

from telemed.directory.schemas import AvailabilityIn, ExtraIn, LeaveIn, WindowIn

WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
DAY_FIELDS = tuple(f"day_{i}" for i in range(7))
AVAILABILITY_FIELDS = (*DAY_FIELDS, "leave", "extra", "weekly_cap", "min_notice_minutes")
_SPAN = re.compile(r"^(\d{1,2}:\d{2})\s*-\s*(\d{1,2}:\d{2})$")


class FormErrors(Exception):
    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__(errors)
        self.errors = errors


def _time(text: str) -> time:
    hours, minutes = text.split(":")
    if int(hours) == 24 and int(minutes) == 0:
        return time(0)
    return time(int(hours), int(minutes))


def _span(text: str) -> tuple[time, time]:
    match = _SPAN.match(text.strip())
    if match is None:
        raise ValueError(f"'{text.strip()}' is not like 09:00-12:00")
    return _time(match.group(1)), _time(match.group(2))


def availability_values(form: FormData) -> dict[str, str]:
    values = {name: str(form.get(name) or "").strip() for name in AVAILABILITY_FIELDS}
    values["away"] = "on" if form.get("away") else ""
    return values


def to_availability(values: dict[str, str]) -> tuple[AvailabilityIn, list[str], list[str]]:
    """The schema plus, for each window and extra line, the form field it came from."""
    errors: dict[str, str] = {}
    weekly: list[WindowIn] = []
    window_fields: list[str] = []
    for weekday, name in enumerate(DAY_FIELDS):
        for part in filter(None, (p.strip() for p in values[name].split(","))):
            try:
                start, end = _span(part)
                weekly.append(WindowIn(weekday=weekday, start=start, end=end))
                window_fields.append(name)
            except ValueError as exc:
                errors.setdefault(name, str(exc))
    leave: list[LeaveIn] = []
    for line in filter(None, (x.strip() for x in values["leave"].splitlines())):
        try:
            first, _, last = line.partition("..")
            leave.append(
                LeaveIn(
                    first_day=date.fromisoformat(first.strip()),
                    last_day=date.fromisoformat((last or first).strip()),
                )
            )
        except ValueError:
            errors.setdefault("leave", f"'{line}' is not like 2026-04-01..2026-04-14")
    extra: list[ExtraIn] = []
    for line in filter(None, (x.strip() for x in values["extra"].splitlines())):
        try:
            day, _, span = line.partition(" ")
            start, end = _span(span)
            extra.append(ExtraIn(day=date.fromisoformat(day), start=start, end=end))
        except ValueError:
            errors.setdefault("extra", f"'{line}' is not like 2026-04-03 09:00-12:00")
    data: dict[str, Any] = {
        "weekly": weekly,
        "leave": leave,
        "extra": extra,
        "weekly_cap": values["weekly_cap"] or None,
        "min_notice_minutes": values["min_notice_minutes"] or 0,
        "away": bool(values.get("away")),
    }
    try:
        checked = AvailabilityIn.model_validate(data)
    except ValidationError as exc:
        for err in exc.errors():
            name = str(err["loc"][0]) if err["loc"] else "__all__"
            errors.setdefault(name, err["msg"])
    if errors:
        raise FormErrors(errors)
    return checked, window_fields, ["extra"] * len(extra)


def error_field(field: str | None, window_fields: list[str]) -> str:
    """Where a service error on ``weekly.3`` (say) is shown on the form."""
    if field is None:
        return "__all__"
    head, _, index = field.partition(".")
    if head == "weekly" and index.isdigit() and int(index) < len(window_fields):
        return window_fields[int(index)]
    if head == "weekly":
        return "weekly"
    return head


def values_of(data: AvailabilityIn) -> dict[str, str]:
    values = {name: "" for name in AVAILABILITY_FIELDS}
    for weekday, name in enumerate(DAY_FIELDS):
        values[name] = ", ".join(
            f"{w.start:%H:%M}-{'24:00' if w.end == time(0) else format(w.end, '%H:%M')}"
            for w in data.weekly
            if w.weekday == weekday
        )
    values["leave"] = "\n".join(f"{x.first_day}..{x.last_day}" for x in data.leave)
    values["extra"] = "\n".join(
        f"{x.day} {x.start:%H:%M}-{'24:00' if x.end == time(0) else format(x.end, '%H:%M')}"
        for x in data.extra
    )
    values["weekly_cap"] = "" if data.weekly_cap is None else str(data.weekly_cap)
    values["min_notice_minutes"] = str(data.min_notice_minutes)
    values["away"] = "on" if data.away else ""
    return values


REGISTRATION_FIELDS = (
    "email",
    "full_name",
    "password",
    "sub_specialties",
    "country",
    "time_zone",
    "registration_body",
    "registration_number",
    "registration_expires_on",
    "bio",
)


def registration_values(form: FormData) -> dict[str, Any]:
    values: dict[str, Any] = {n: str(form.get(n) or "").strip() for n in REGISTRATION_FIELDS}
    values["specialties"] = [str(v) for v in form.getlist("specialties")]
    values["languages"] = [str(v) for v in form.getlist("languages")]
    return values


def field_errors(exc: ValidationError) -> dict[str, str]:
    errors: dict[str, str] = {}
    for err in exc.errors():
        name = str(err["loc"][0]) if err["loc"] else "__all__"
        errors.setdefault(name, err["msg"].removeprefix("Value error, "))
    return errors
