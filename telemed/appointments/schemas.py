"""Shapes of appointments in the API. Times in and out are ISO 8601 with an offset; the
API never guesses a zone, so a time without one is refused (422)."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field, field_validator

from telemed.appointments.models import AppointmentStatus, ChangeAction
from telemed.validation import Id, Moment


def _aware(value: datetime) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(
            "give the time with its UTC offset, e.g. 2026-12-03T14:00:00+02:00 "
            "(a time without a zone is ambiguous)"
        )
    return value


class ChangePublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    action: ChangeAction
    actor_id: Id | None
    sequence: int
    old_starts_at: datetime | None
    old_ends_at: datetime | None
    new_starts_at: datetime | None
    new_ends_at: datetime | None
    reason: str
    at: datetime


class AppointmentPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    consult_id: Id
    specialist_id: Id
    starts_at: datetime
    ends_at: datetime
    status: AppointmentStatus
    uid: str
    sequence: int
    created_at: datetime
    updated_at: datetime


class AppointmentDetail(AppointmentPublic):
    specialist_name: str
    ics_url: str
    changes: list[ChangePublic]


class ScheduleItem(AppointmentPublic):
    specialty: str
    mode: str
    urgency: str
    consult_state: str
    facility_id: Id
    specialist_name: str
    ics_url: str


class BookIn(BaseModel):
    starts_at: Moment = Field(description="ISO 8601 with offset, at least 5 minutes ahead")

    _check = field_validator("starts_at")(_aware)


class RescheduleIn(BaseModel):
    starts_at: Moment = Field(
        description="The new start, ISO 8601 with offset; the duration stays the same"
    )
    reason: str = Field(min_length=1, max_length=2000)
    sequence: int | None = Field(
        default=None, description="The SEQUENCE you saw; 409 if the appointment changed since"
    )
    outside_confirmed: bool = Field(
        default=False,
        description="True to move it to a time outside the specialist's availability "
        "(without it such a time is refused with 409 naming ``outside_confirmed``)",
    )

    _check = field_validator("starts_at")(_aware)


class StartNowOut(BaseModel):
    """Where asking to start now left the appointment."""

    started: bool = Field(description="True: both sides agreed and the session starts now")
    appointment: AppointmentDetail


class CancelIn(BaseModel):
    reason: str = Field(min_length=1, max_length=2000)
    sequence: int | None = Field(
        default=None, description="The SEQUENCE you saw; 409 if the appointment changed since"
    )
