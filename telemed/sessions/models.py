"""Call sessions of a consult and their append-only events (from the signalling hub).

A *call session* is one stretch of live conversation in a consult's room: it starts with the
first participant who joins and ends when the room is empty (the hub's ``ended`` event). Its
events (joined, left, reconnecting, reconnected, media mode, quality summary, ended; and
``photo``, written by the application when a participant shares a photo in the call) are never
changed or deleted: they are the record of what happened on the line.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import Index, String, Text
from sqlmodel import Field, SQLModel

from telemed.db import UTCDateTime, utcnow


class CallEventKind(StrEnum):
    joined = "joined"
    left = "left"
    reconnecting = "reconnecting"
    reconnected = "reconnected"
    media = "media"
    quality = "quality"
    ended = "ended"
    photo = "photo"  # detail: message_id (the thread message the attachment hangs on), filename


class CallSession(SQLModel, table=True):
    __tablename__ = "call_sessions"
    __table_args__ = (
        Index("ix_call_sessions_consult_started", "consult_id", "started_at"),
        Index("ix_call_sessions_started_at", "started_at"),  # uptake: sessions in a period
    )
    id: int | None = Field(default=None, primary_key=True)
    consult_id: int = Field(foreign_key="consults.id")
    room: str = Field(max_length=128)
    started_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    ended_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    duration_s: int | None = None  # set with ended_at


class CallSessionEvent(SQLModel, table=True):
    """Append-only (database triggers): one row per event the hub reported (or photo shared)."""

    __tablename__ = "call_session_events"
    # Uptake: calls with a drop, a resume or a low mode in a period.
    __table_args__ = (Index("ix_call_session_events_kind_at", "kind", "at"),)
    id: int | None = Field(default=None, primary_key=True)
    call_session_id: int = Field(foreign_key="call_sessions.id", index=True)
    consult_id: int = Field(foreign_key="consults.id", index=True)
    kind: CallEventKind = Field(sa_type=String(16))
    user_id: int | None = Field(default=None, foreign_key="users.id")  # None: the room itself
    role: str | None = Field(default=None, max_length=16, sa_type=String(16))
    signal_session: str | None = Field(default=None, max_length=128)
    at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    detail: str = Field(default="", sa_type=Text)  # compact JSON of the event's detail
