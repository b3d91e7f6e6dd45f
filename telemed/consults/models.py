"""Consult requests, their lifecycle events and the users involved in them."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import Index, String, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from telemed.db import UTCDateTime, utcnow


class ConsultState(StrEnum):
    draft = "draft"
    requested = "requested"
    offered = "offered"
    accepted = "accepted"
    scheduled = "scheduled"
    in_session = "in_session"
    completed = "completed"
    closed = "closed"
    follow_up_due = "follow_up_due"
    escalated = "escalated"
    cancelled = "cancelled"
    no_show = "no_show"
    answered_async = "answered_async"


class Urgency(StrEnum):
    emergency = "emergency"
    urgent = "urgent"
    routine = "routine"


class ConsultMode(StrEnum):
    video = "video"
    audio = "audio"
    asynchronous = "asynchronous"


class Language(StrEnum):
    sesotho = "st"
    english = "en"


class ParticipantRelation(StrEnum):
    """How a user other than the requesting facility's staff is involved in a consult."""

    offered = "offered"  # an offer was made to them (scheduling)
    assigned = "assigned"  # they accepted, or a coordinator assigned them
    observer = "observer"  # e.g. an interpreter invited to the session


class Specialty(SQLModel, table=True):
    """The list of specialties: seeded by migration, extendable with `telemed specialties add`."""

    __tablename__ = "specialties"
    code: str = Field(primary_key=True, max_length=40)
    name: str = Field(max_length=80)
    active: bool = True


class Consult(SQLModel, table=True):
    __tablename__ = "consults"
    __table_args__ = (
        Index("ix_consults_facility_created", "facility_id", "created_at", "id"),
        # The uptake indicators count by request time, and by facility for dormant ones.
        Index("ix_consults_requested_at", "requested_at"),
        Index("ix_consults_facility_requested", "facility_id", "requested_at"),
    )
    id: int | None = Field(default=None, primary_key=True)
    case_id: int = Field(foreign_key="cases.id", index=True)
    # Copied from the case so that a facility's list needs no join.
    facility_id: int = Field(foreign_key="facilities.id")
    specialty: str = Field(foreign_key="specialties.code", max_length=40)
    urgency: Urgency = Field(sa_type=String(12))
    mode: ConsultMode = Field(sa_type=String(16))
    language: Language = Field(sa_type=String(4))
    question: str = Field(sa_type=Text)
    history: str = Field(default="", sa_type=Text)
    examination: str = Field(default="", sa_type=Text)
    current_treatment: str = Field(default="", sa_type=Text)
    bp_systolic: int | None = None
    bp_diastolic: int | None = None
    pulse_bpm: int | None = None
    respiratory_rate: int | None = None
    temperature_c: float | None = None
    spo2_percent: int | None = None
    weight_kg: float | None = None
    state: ConsultState = Field(default=ConsultState.draft, sa_type=String(16), index=True)
    created_by_id: int = Field(foreign_key="users.id")
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    requested_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    state_changed_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class ConsultEvent(SQLModel, table=True):
    """Append-only: one row per state transition (or other lifecycle fact) of a consult."""

    __tablename__ = "consult_events"
    __table_args__ = (
        # Uptake: consults that reached a state (escalated, cancelled, ...) in a period,
        # and the first time a consult reached one (time to acceptance).
        Index("ix_consult_events_to_state_at", "to_state", "at"),
        Index("ix_consult_events_consult_state_at", "consult_id", "to_state", "at"),
    )
    id: int | None = Field(default=None, primary_key=True)
    consult_id: int = Field(foreign_key="consults.id", index=True)
    actor_id: int | None = Field(default=None, foreign_key="users.id")  # None: the system
    at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    from_state: ConsultState | None = Field(default=None, sa_type=String(16))
    to_state: ConsultState = Field(sa_type=String(16))
    reason: str = Field(default="", sa_type=Text)


class ConsultParticipant(SQLModel, table=True):
    """A specialist (or observer) involved in a consult; scheduling fills this relation."""

    __tablename__ = "consult_participants"
    __table_args__ = (
        UniqueConstraint("consult_id", "user_id", "relation", name="uq_consult_participant"),
    )
    id: int | None = Field(default=None, primary_key=True)
    consult_id: int = Field(foreign_key="consults.id", index=True)
    user_id: int = Field(foreign_key="users.id", index=True)
    relation: ParticipantRelation = Field(sa_type=String(12))
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class GuestRole(StrEnum):
    """What a user invited to a consult's call is there for (issue 14, item 4)."""

    interpreter = "interpreter"
    second_specialist = "second_specialist"


class CallGuest(SQLModel, table=True):
    """A user invited into a consult's call only: an interpreter or a second specialist.

    Never deleted: a revoked invitation keeps its row with ``revoked_at`` (who invited whom,
    when, and who withdrew it stay on the record). An active invitation (``revoked_at`` null)
    admits the guest to the call page and a call ticket within the call window, and to
    nothing else of the consult (``consults.auth``).
    """

    __tablename__ = "call_guests"
    __table_args__ = (Index("ix_call_guests_consult_user", "consult_id", "user_id"),)
    id: int | None = Field(default=None, primary_key=True)
    consult_id: int = Field(foreign_key="consults.id")
    user_id: int = Field(foreign_key="users.id", index=True)
    role: GuestRole = Field(sa_type=String(20))
    invited_by_id: int = Field(foreign_key="users.id")
    invited_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    revoked_by_id: int | None = Field(default=None, foreign_key="users.id")
    revoked_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
