"""Between stored availability rows and the scheduling library's ``Availability``.

Validation uses the library's own rules (inverted, overlapping, off-grid windows, unknown
zone), translated into 422 errors that name the offending field.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from scheduling import (
    Availability,
    ExtraHours,
    Leave,
    SchedulingError,
    TimeSlot,
    WeeklyWindow,
    expand,
    load_zone,
)
from telemed import validation
from telemed.directory.models import (
    AvailabilityException,
    AvailabilityWindow,
    ExceptionKind,
    SpecialistProfile,
)
from telemed.directory.schemas import AvailabilityIn, ExtraIn, LeaveIn, WindowIn
from telemed.errors import ValidationFailed

_GRID_CHECK_AT = datetime(2026, 1, 5, tzinfo=UTC)  # any instant: only the grid is checked


def check_zone(name: str, field: str = "time_zone") -> str:
    """A canonical IANA zone (``telemed.validation``) that the scheduling library loads."""
    validation.check_zone(name, field)
    try:
        load_zone(name)
    except SchedulingError as exc:
        raise ValidationFailed(str(exc), field=field) from exc
    return name


def validated(time_zone: str, data: AvailabilityIn, slot_length: timedelta) -> Availability:
    """The library value for ``data``, or ``ValidationFailed`` naming the field."""
    check_zone(time_zone)
    weekly, leave, extra = [], [], []
    for i, w in enumerate(data.weekly):
        try:
            weekly.append(WeeklyWindow(w.weekday, w.start, w.end))
        except SchedulingError as exc:
            raise ValidationFailed(str(exc), field=f"weekly.{i}") from exc
    for i, leave_in in enumerate(data.leave):
        try:
            leave.append(Leave(leave_in.first_day, leave_in.last_day))
        except SchedulingError as exc:
            raise ValidationFailed(str(exc), field=f"leave.{i}") from exc
    for i, e in enumerate(data.extra):
        try:
            extra.append(ExtraHours(e.day, e.start, e.end))
        except SchedulingError as exc:
            raise ValidationFailed(str(exc), field=f"extra.{i}") from exc
    notice = timedelta(minutes=data.min_notice_minutes)
    try:
        Availability(time_zone, weekly=tuple(weekly))
    except SchedulingError as exc:
        raise ValidationFailed(str(exc), field="weekly") from exc
    try:
        availability = Availability(
            time_zone,
            weekly=tuple(weekly),
            leave=tuple(leave),
            extra=tuple(extra),
            min_notice=notice,
            away=data.away,
        )
    except SchedulingError as exc:
        raise ValidationFailed(str(exc), field="extra") from exc
    probes = (
        ("weekly", Availability(time_zone, weekly=tuple(weekly))),
        ("extra", Availability(time_zone, extra=tuple(extra))),
    )
    for field, probe in probes:
        try:
            expand(probe, now=_GRID_CHECK_AT, horizon=timedelta(0), slot_length=slot_length)
        except SchedulingError as exc:
            raise ValidationFailed(str(exc), field=field) from exc
    return availability


def rows_of(
    user_id: int, data: AvailabilityIn
) -> tuple[list[AvailabilityWindow], list[AvailabilityException]]:
    windows = [
        AvailabilityWindow(user_id=user_id, weekday=w.weekday, start_time=w.start, end_time=w.end)
        for w in data.weekly
    ]
    exceptions = [
        AvailabilityException(
            user_id=user_id,
            kind=ExceptionKind.leave,
            first_day=leave.first_day,
            last_day=leave.last_day,
        )
        for leave in data.leave
    ] + [
        AvailabilityException(
            user_id=user_id,
            kind=ExceptionKind.extra,
            first_day=e.day,
            last_day=e.day,
            start_time=e.start,
            end_time=e.end,
        )
        for e in data.extra
    ]
    return windows, exceptions


def input_of(
    profile: SpecialistProfile,
    windows: list[AvailabilityWindow],
    exceptions: list[AvailabilityException],
) -> AvailabilityIn:
    return AvailabilityIn(
        weekly=[WindowIn(weekday=w.weekday, start=w.start_time, end=w.end_time) for w in windows],
        leave=[
            LeaveIn(first_day=e.first_day, last_day=e.last_day)
            for e in exceptions
            if e.kind == ExceptionKind.leave
        ],
        extra=[
            ExtraIn(day=e.first_day, start=e.start_time, end=e.end_time)
            for e in exceptions
            if e.kind == ExceptionKind.extra and e.start_time is not None and e.end_time is not None
        ],
        weekly_cap=profile.weekly_cap,
        weekly_cap_hours=(
            None if profile.weekly_cap_minutes is None else profile.weekly_cap_minutes / 60
        ),
        away=profile.away,
        min_notice_minutes=profile.min_notice_minutes,
    )


def library_value(
    time_zone: str,
    profile: SpecialistProfile,
    windows: list[AvailabilityWindow],
    exceptions: list[AvailabilityException],
) -> Availability:
    """Stored rows as the library's value (they were validated when saved)."""
    data = input_of(profile, windows, exceptions)
    return Availability(
        time_zone,
        weekly=tuple(WeeklyWindow(w.weekday, w.start, w.end) for w in data.weekly),
        leave=tuple(Leave(x.first_day, x.last_day) for x in data.leave),
        extra=tuple(ExtraHours(x.day, x.start, x.end) for x in data.extra),
        min_notice=timedelta(minutes=data.min_notice_minutes),
        away=data.away,
    )


def slots(
    availability: Availability, now: datetime, horizon: timedelta, slot_length: timedelta
) -> list[TimeSlot]:
    if horizon <= timedelta(0):
        return []
    return expand(availability, now=now, horizon=horizon, slot_length=slot_length)
