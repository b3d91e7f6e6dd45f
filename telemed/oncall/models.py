"""On-call blocks (a specialist reachable for emergencies of one specialty at given weekly
hours, in their own zone) and the uses of one-tap accept links (each link works once)."""

from __future__ import annotations

from datetime import datetime, time

from sqlalchemy import Index, String, UniqueConstraint
from sqlmodel import Field, SQLModel

from telemed.db import UTCDateTime, utcnow


class OnCallBlock(SQLModel, table=True):
    """A weekly block in the specialist's zone: weekday 0 = Monday, [start, end), end
    00:00 = midnight at the end of the day (as the availability windows)."""

    __tablename__ = "oncall_blocks"
    __table_args__ = (Index("ix_oncall_blocks_specialty", "specialty_code", "weekday"),)
    id: int | None = Field(default=None, primary_key=True)
    user_id: int = Field(foreign_key="specialist_profiles.user_id", index=True)
    specialty_code: str = Field(foreign_key="specialties.code", max_length=40)
    weekday: int
    start_time: time
    end_time: time
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class OnCallLinkUse(SQLModel, table=True):
    """A one-tap accept link that was used: its digest is unique, so a second use (or two
    taps racing) can never accept twice."""

    __tablename__ = "oncall_link_uses"
    __table_args__ = (UniqueConstraint("token_digest", name="uq_oncall_link_once"),)
    id: int | None = Field(default=None, primary_key=True)
    token_digest: str = Field(sa_type=String(64))
    offer_id: int = Field(foreign_key="consult_offers.id", index=True)
    user_id: int = Field(foreign_key="users.id")
    used_at: datetime = Field(sa_type=UTCDateTime)
