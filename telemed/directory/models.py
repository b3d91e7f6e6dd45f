"""Specialist profiles (registration, verification), their specialties and availability.

The profile belongs to a user with the role ``specialist``; its time zone is the user's
``timezone`` (one source of truth for every page). Availability is declared in that zone:
weekly windows and dated exceptions (leave, extra hours) as rows, the weekly cap, the away
switch and the minimum notice on the profile.
"""

from __future__ import annotations

from datetime import date, datetime, time
from enum import StrEnum

from sqlalchemy import String, Text
from sqlmodel import Field, SQLModel

from telemed.db import UTCDateTime, utcnow


class RegistrationBody(StrEnum):
    hpcsa = "HPCSA"  # Health Professions Council of South Africa
    gmc = "GMC"  # General Medical Council (UK)
    imc = "IMC"  # Irish Medical Council
    lmdpc = "LMDPC"  # Lesotho Medical, Dental and Pharmacy Council
    other = "other"


class VerificationStatus(StrEnum):
    pending = "pending"
    verified = "verified"
    rejected = "rejected"


class ExceptionKind(StrEnum):
    leave = "leave"  # every window on first_day..last_day removed
    extra = "extra"  # one more window on first_day, start_time..end_time


class SpecialistProfile(SQLModel, table=True):
    __tablename__ = "specialist_profiles"
    user_id: int = Field(
        foreign_key="users.id", primary_key=True, sa_column_kwargs={"autoincrement": False}
    )
    sub_specialties: str = Field(default="", max_length=500)
    languages: str = Field(max_length=16)  # "st,en"
    country: str = Field(max_length=2)  # ISO 3166-1 alpha-2
    registration_body: RegistrationBody = Field(sa_type=String(8))
    registration_number: str = Field(max_length=40)
    registration_expires_on: date
    bio: str = Field(default="", sa_type=Text)
    status: VerificationStatus = Field(
        default=VerificationStatus.pending, sa_type=String(12), index=True
    )
    verified_by_id: int | None = Field(default=None, foreign_key="users.id")
    verified_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    verification_note: str = Field(default="", sa_type=Text)
    rejection_reason: str = Field(default="", sa_type=Text)
    weekly_cap: int | None = None  # consults per ISO week in their zone; None: no limit
    weekly_cap_minutes: int | None = None  # booked time per ISO week; None: no limit
    away: bool = False
    min_notice_minutes: int = 0
    registered_from: str = Field(default="", max_length=64)  # client address (throttling)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, index=True)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)

    @property
    def language_codes(self) -> list[str]:
        return [code for code in self.languages.split(",") if code]


class SpecialistSpecialty(SQLModel, table=True):
    __tablename__ = "specialist_specialties"
    user_id: int = Field(
        foreign_key="specialist_profiles.user_id",
        primary_key=True,
        sa_column_kwargs={"autoincrement": False},
    )
    specialty_code: str = Field(foreign_key="specialties.code", primary_key=True, max_length=40)


class AvailabilityWindow(SQLModel, table=True):
    """A weekly window in the specialist's zone: weekday 0 = Monday, [start, end)."""

    __tablename__ = "availability_windows"
    id: int | None = Field(default=None, primary_key=True)
    user_id: int = Field(foreign_key="specialist_profiles.user_id", index=True)
    weekday: int
    start_time: time
    end_time: time  # 00:00 = midnight at the end of the day


class AvailabilityException(SQLModel, table=True):
    """Leave (a date range) or extra hours (one date, a window), in the specialist's zone."""

    __tablename__ = "availability_exceptions"
    id: int | None = Field(default=None, primary_key=True)
    user_id: int = Field(foreign_key="specialist_profiles.user_id", index=True)
    kind: ExceptionKind = Field(sa_type=String(8))
    first_day: date
    last_day: date
    start_time: time | None = None
    end_time: time | None = None
