"""The availability editor, registration and profile forms: form fields to schemas, errors back.

Weekly windows come from the week grid: one checkbox per half-hour, named ``cell`` with the
value ``d-HHMM`` (``d`` 0 = Monday); ticked half-hours of a day that touch merge into one
window, and one ending at midnight is stored with the end 00:00 (see ``WindowIn``). As a
fallback they can still be typed per weekday as ``09:00-12:00, 14:00-16:00``. Leave is one
range a line (``2026-04-01..2026-04-14``); extra hours one a line (``2026-04-03 09:00-12:00``).
Every time is in the specialist's own zone. None of it needs JavaScript.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, time
from typing import Any

from pydantic import ValidationError
from starlette.datastructures import FormData

from telemed.directory.schemas import (
    AvailabilityIn,
    AvailabilityPublic,
    ExtraIn,
    LeaveIn,
    ProfilePublic,
    WindowIn,
)
from telemed.form_errors import field_sentences
from telemed.i18n import N_

WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
DAY_FIELDS = tuple(f"day_{i}" for i in range(7))
AVAILABILITY_FIELDS = (
    *DAY_FIELDS,
    "leave",
    "extra",
    "weekly_cap",
    "weekly_cap_hours",
    "min_notice_minutes",
    "time_zone",
)
CELL_FIELD = "cell"
CELL_MINUTES = 30
CELLS_PER_DAY = 24 * 60 // CELL_MINUTES
MAX_WINDOWS = 70  # AvailabilityIn.weekly
DEFAULT_ROWS = (6 * 60 // CELL_MINUTES, 22 * 60 // CELL_MINUTES)  # 06:00-22:00 unless needed
_CELL = re.compile(r"^([0-9])-([0-9]{2})([0-9]{2})$")
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


def cell_name(weekday: int, minutes: int) -> str:
    """The grid cell for the half-hour starting ``minutes`` after midnight on ``weekday``."""
    return f"{weekday}-{minutes // 60:02d}{minutes % 60:02d}"


def _cell(text: str) -> tuple[int, int]:
    """``d-HHMM`` as (weekday, index of the half-hour in the day), or ``ValueError``."""
    match = _CELL.match(text)
    if match is None:
        raise ValueError(f"'{text[:20]}' is not a cell of the week grid (like 0-0900)")
    weekday, hours, minutes = (int(g) for g in match.groups())
    if weekday > 6:
        raise ValueError(f"'{text}': day {weekday} is not 0 (Monday) to 6 (Sunday)")
    if hours > 23 or minutes >= 60:
        raise ValueError(f"'{text}': {hours:02d}:{minutes:02d} is not a time of day")
    if minutes % CELL_MINUTES:
        raise ValueError(f"'{text}': {hours:02d}:{minutes:02d} is not on the half-hour grid")
    return weekday, (hours * 60 + minutes) // CELL_MINUTES


def windows_of_cells(cells: Iterable[str]) -> list[WindowIn]:
    """Ticked cells as weekly windows: touching half-hours of one day merge into one window
    (a window ending at midnight has the end 00:00). ``ValueError`` names a bad cell."""
    ticked = sorted({_cell(text) for text in cells})
    runs: list[tuple[int, int, int]] = []  # weekday, first index, index after the last
    for weekday, index in ticked:
        if runs and runs[-1][0] == weekday and runs[-1][2] == index:
            runs[-1] = (weekday, runs[-1][1], index + 1)
        else:
            runs.append((weekday, index, index + 1))
    return [
        WindowIn(weekday=weekday, start=_clock(first), end=_clock(after % CELLS_PER_DAY))
        for weekday, first, after in runs
    ]


def _clock(index: int) -> time:
    minutes = index * CELL_MINUTES
    return time(minutes // 60, minutes % 60)


def cells_of_windows(windows: Iterable[WindowIn]) -> tuple[set[str], bool]:
    """The cells a set of windows covers, and whether some window is off the half-hour grid
    (such a window cannot be shown in the grid; it is kept only through the typed fields)."""
    cells: set[str] = set()
    off_grid = False
    for w in windows:
        start = w.start.hour * 60 + w.start.minute
        end = w.end.hour * 60 + w.end.minute or 24 * 60
        off_grid |= bool(start % CELL_MINUTES or end % CELL_MINUTES)
        first = start - start % CELL_MINUTES
        cells.update(cell_name(w.weekday, m) for m in range(first, end, CELL_MINUTES))
    return cells, off_grid


@dataclass(frozen=True)
class GridCell:
    name: str  # the checkbox value, d-HHMM
    label: str  # for screen readers: "Monday 09:00"
    checked: bool


@dataclass(frozen=True)
class GridRow:
    time: str  # "09:00"
    cells: list[GridCell]


def week_grid(cells: set[str], show_all: bool) -> list[GridRow]:
    """Half-hour rows, 06:00-22:00 by default and widened to show every ticked cell
    (a cell the page does not show would be dropped on saving), or the whole day."""
    first, last = (0, CELLS_PER_DAY) if show_all else DEFAULT_ROWS
    for text in cells:
        try:
            _, index = _cell(text)
        except ValueError:
            continue
        first, last = min(first, index), max(last, index + 1)
    rows = []
    for index in range(first, last):
        minutes = index * CELL_MINUTES
        clock = f"{minutes // 60:02d}:{minutes % 60:02d}"
        row = [
            GridCell(cell_name(d, minutes), f"{day} {clock}", cell_name(d, minutes) in cells)
            for d, day in enumerate(WEEKDAYS)
        ]
        rows.append(GridRow(clock, row))
    return rows


def to_availability(
    values: dict[str, str], cells: list[str] | None = None
) -> tuple[AvailabilityIn, list[str], list[str]]:
    """The schema plus, for each window and extra line, the form field it came from.

    The weekly windows come from the grid's ``cells`` when given, else from the typed
    ``day_N`` fields."""
    errors: dict[str, str] = {}
    weekly: list[WindowIn] = []
    window_fields: list[str] = []
    if cells is not None:
        if len(cells) > 2 * 7 * CELLS_PER_DAY:
            errors[CELL_FIELD] = "too many cells sent for one week"
        else:
            try:
                weekly = windows_of_cells(cells)
                window_fields = [CELL_FIELD] * len(weekly)
            except ValueError as exc:
                errors[CELL_FIELD] = str(exc)
            if len(weekly) > MAX_WINDOWS:
                errors[CELL_FIELD] = (
                    f"{len(weekly)} separate windows are too many (at most {MAX_WINDOWS} a"
                    " week): join some of them"
                )
    else:
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
        "weekly_cap_hours": values["weekly_cap_hours"] or None,
        "min_notice_minutes": values["min_notice_minutes"] or 0,
        "away": bool(values.get("away")),
    }
    try:
        checked = AvailabilityIn.model_validate(data)
    except ValidationError as exc:
        for name, message in field_errors(exc).items():
            errors.setdefault(name, message)
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


def values_of(data: AvailabilityPublic) -> dict[str, str]:
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
    hours = data.weekly_cap_hours
    values["weekly_cap_hours"] = "" if hours is None else f"{hours:g}"
    values["min_notice_minutes"] = str(data.min_notice_minutes)
    values["away"] = "on" if data.away else ""
    values["time_zone"] = data.time_zone
    return values


REGISTRATION_FIELDS = (
    "email",
    "full_name",
    "password",
    "phone",
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


# The registration and profile fields' labels, for the error sentences.
LABELS = {
    "email": N_("E-mail"),
    "full_name": N_("Full name"),
    "password": N_("Password"),
    "phone": N_("Mobile phone"),
    "specialties": N_("Specialties"),
    "sub_specialties": N_("Sub-specialties"),
    "languages": N_("Languages"),
    "country": N_("Country"),
    "time_zone": N_("Time zone"),
    "registration_body": N_("Registration body"),
    "registration_number": N_("Registration number"),
    "registration_expires_on": N_("Registration valid until"),
    "bio": N_("Short bio"),
    "weekly_cap": N_("Most consults a week"),
    "weekly_cap_hours": N_("Most hours of sessions a week"),
    "min_notice_minutes": N_("Minimum notice (minutes)"),
    "leave": N_("Leave"),
    "extra": N_("Extra hours"),
}


# Sentences of their own, where the general one would not say enough.
SPECIAL = {
    ("languages", "too_short"): N_(
        "Tick at least one language you can consult in: requests come in Sesotho or English."
    ),
    ("specialties", "too_short"): N_("Tick at least one specialty."),
}


def _first(loc: Any) -> str:
    return str(loc[0]) if loc else "__all__"


def field_errors(exc: ValidationError) -> dict[str, str]:
    """Each field's first error as a sentence in the reader's language."""
    return field_sentences(exc, LABELS, _first, SPECIAL)


PROFILE_FIELDS = (
    "phone",
    "sub_specialties",
    "country",
    "time_zone",
    "registration_body",
    "registration_number",
    "registration_expires_on",
    "bio",
)


def profile_values(form: FormData) -> dict[str, Any]:
    """The profile page's fields, as ``ProfileFields`` takes them (name and e-mail are not
    edited there)."""
    values: dict[str, Any] = {n: str(form.get(n) or "").strip() for n in PROFILE_FIELDS}
    values["specialties"] = [str(v) for v in form.getlist("specialties")]
    values["languages"] = [str(v) for v in form.getlist("languages")]
    return values


def values_of_profile(data: ProfilePublic, phone: str | None) -> dict[str, Any]:
    """The stored profile as the form's values; the phone is the account's (``User``)."""
    fields = {*PROFILE_FIELDS, "specialties", "languages"} - {"phone"}
    values: dict[str, Any] = data.model_dump(include=fields)
    values["registration_body"] = data.registration_body.value
    values["registration_expires_on"] = data.registration_expires_on.isoformat()
    values["phone"] = phone or ""
    return values
