"""An appointment books a live consult's session with its specialist; its changes are
kept in an append-only history.

``uid`` and ``sequence`` are those of the calendar invitation (RFC 5545): the UID never
changes, the SEQUENCE goes up with every change, so calendars update the one event.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from uuid import uuid4

from sqlalchemy import Index, String, Text, text
from sqlmodel import Field, SQLModel

from telemed.db import UTCDateTime, utcnow


class AppointmentStatus(StrEnum):
    scheduled = "scheduled"
    cancelled = "cancelled"
    completed = "completed"
    no_show = "no_show"


class ChangeAction(StrEnum):
    booked = "booked"
    rescheduled = "rescheduled"
    cancelled = "cancelled"
    completed = "completed"  # by the system: the session was held and its slot is over
    no_show = "no_show"  # by the system: nobody (or one side only) came
    # One side asks to start now; when the other side asks too the appointment moves to
    # now (a ``rescheduled`` change). Only asks at the appointment's current SEQUENCE count.
    early_asked = "early_asked"


def new_uid() -> str:
    return f"telemed-appointment-{uuid4()}@telemed"


ACTIVE = "status = 'scheduled'"


class Appointment(SQLModel, table=True):
    """One booked session. At most one ``scheduled`` appointment per consult (a partial
    unique index); a specialist's scheduled appointments never overlap (checked under a
    lock of the specialist's row, see ``service``)."""

    __tablename__ = "appointments"
    __table_args__ = (
        Index(
            "uq_appointments_one_active",
            "consult_id",
            unique=True,
            postgresql_where=text(ACTIVE),
            sqlite_where=text(ACTIVE),
        ),
        Index("ix_appointments_specialist_starts", "specialist_id", "starts_at"),
        Index("ix_appointments_status_starts", "status", "starts_at"),
    )
    id: int | None = Field(default=None, primary_key=True)
    consult_id: int = Field(foreign_key="consults.id", index=True)
    specialist_id: int = Field(foreign_key="users.id")
    starts_at: datetime = Field(sa_type=UTCDateTime)
    ends_at: datetime = Field(sa_type=UTCDateTime)
    status: AppointmentStatus = Field(default=AppointmentStatus.scheduled, sa_type=String(12))
    uid: str = Field(default_factory=new_uid, max_length=120, unique=True, index=True)
    sequence: int = 0
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class AppointmentChange(SQLModel, table=True):
    """Append-only: who booked, moved or cancelled an appointment, when and why (and when
    the system marked it completed or a no-show)."""

    __tablename__ = "appointment_changes"
    id: int | None = Field(default=None, primary_key=True)
    appointment_id: int = Field(foreign_key="appointments.id", index=True)
    actor_id: int | None = Field(default=None, foreign_key="users.id")  # None: the system
    action: ChangeAction = Field(sa_type=String(12))
    sequence: int  # the appointment's SEQUENCE after this change
    old_starts_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    old_ends_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    new_starts_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    new_ends_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    reason: str = Field(default="", sa_type=Text)
    at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
