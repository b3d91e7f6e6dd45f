"""Shapes of specialist profiles, registration, verification and availability in the API."""

from __future__ import annotations

from datetime import date, datetime

from pydantic import BaseModel, ConfigDict, EmailStr, Field

from telemed.consults.models import Language
from telemed.directory.models import RegistrationBody, VerificationStatus
from telemed.validation import ClockTime, Day, Id, Name, Phone, Zone


class ProfileFields(BaseModel):
    model_config = ConfigDict(extra="forbid")
    specialties: list[str] = Field(
        min_length=1, max_length=10, description="Codes from GET /api/v1/specialties"
    )
    sub_specialties: str = Field(default="", max_length=500, description="Free text")
    languages: list[Language] = Field(min_length=1, max_length=2)
    country: str = Field(pattern=r"^[A-Za-z]{2}$", description="ISO 3166-1 alpha-2, e.g. ZA")
    time_zone: Zone = Field(min_length=1, max_length=64, description="IANA, e.g. Europe/London")
    registration_body: RegistrationBody
    registration_number: str = Field(min_length=2, max_length=40)
    registration_expires_on: Day
    bio: str = Field(default="", max_length=2000)
    phone: Phone | None = Field(
        default=None,
        max_length=32,
        description="Mobile number for emergency SMS in E.164, e.g. +26658123456; "
        '"" removes it, absent keeps it.',
    )


class RegistrationIn(ProfileFields):
    email: EmailStr
    full_name: Name = Field(min_length=1, max_length=120)
    password: str = Field(min_length=10, max_length=1024)


class ProfilePublic(BaseModel):
    user_id: Id
    full_name: str
    email: str
    specialties: list[str]
    sub_specialties: str
    languages: list[str]
    country: str
    time_zone: str
    registration_body: RegistrationBody
    registration_number: str
    registration_expires_on: Day
    bio: str
    status: VerificationStatus
    verified_by_id: Id | None
    verified_at: datetime | None
    verification_note: str
    rejection_reason: str
    eligible: bool = Field(description="Verified and unexpired: may receive offers")


class VerifyIn(BaseModel):
    note: str = Field(
        min_length=3, max_length=2000, description="Evidence: what was checked, where"
    )


class RejectIn(BaseModel):
    reason: str = Field(min_length=3, max_length=2000)


class WindowIn(BaseModel):
    weekday: int = Field(ge=0, le=6, description="0 = Monday ... 6 = Sunday")
    start: ClockTime
    end: ClockTime = Field(description="00:00 means midnight at the end of the day")


class LeaveIn(BaseModel):
    first_day: date
    last_day: date


class ExtraIn(BaseModel):
    day: date
    start: ClockTime
    end: ClockTime


class AvailabilityIn(BaseModel):
    """Everything in the specialist's own time zone (their profile's)."""

    model_config = ConfigDict(extra="forbid")
    weekly: list[WindowIn] = Field(default_factory=list, max_length=70)
    leave: list[LeaveIn] = Field(default_factory=list, max_length=100)
    extra: list[ExtraIn] = Field(default_factory=list, max_length=200)
    weekly_cap: int | None = Field(default=None, ge=0, le=100, description="Consults a week")
    weekly_cap_hours: float | None = Field(
        default=None, ge=0, le=80, multiple_of=0.5, description="Booked hours a week"
    )
    away: bool = False
    min_notice_minutes: int = Field(default=0, ge=0, le=14 * 24 * 60)


class AvailabilityPublic(AvailabilityIn):
    time_zone: str


class SlotPublic(BaseModel):
    start: datetime
    end: datetime


class LoadPublic(BaseModel):
    """A verified specialist's load this ISO week (their zone) against their caps, counted
    as the caps count it (open offers too): the directory page's figures, for scripts."""

    user_id: Id
    full_name: str
    consults: int
    max_consults: int | None = Field(description="Weekly cap in consults; null: no cap")
    hours: float
    max_hours: float | None = Field(description="Weekly cap in hours; null: no cap")
    emergencies: int = Field(description="Emergencies this week (the fairness rule's limit)")
