"""Results of the pre-call network test: one row per test a clinician or specialist ran.

A result belongs to the user who ran it and to their facility (clinicians; specialists have
none), so coordinators can see which clinics have which link and the call page can pick a
sending profile. Rows are never changed or deleted (database triggers): each is a measurement
of a link at one moment.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import Index, String
from sqlmodel import Field, SQLModel

from telemed.db import UTCDateTime, utcnow


class NetworkRecommendation(StrEnum):
    """What the link can carry; the first three are the call page's sending profiles."""

    normal = "normal"  # video
    low = "low"  # low-bandwidth video
    audio_only = "audio-only"
    asynchronous = "asynchronous"  # messages and photos, no live call


class NetworkTest(SQLModel, table=True):
    """Append-only (database triggers)."""

    __tablename__ = "network_tests"
    __table_args__ = (
        Index("ix_network_tests_user_created", "user_id", "created_at"),
        Index("ix_network_tests_facility_created", "facility_id", "created_at"),
    )
    id: int | None = Field(default=None, primary_key=True)
    user_id: int = Field(foreign_key="users.id")
    facility_id: int | None = Field(default=None, foreign_key="facilities.id")
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    connected: bool  # false: the test peer could not be reached at all
    rtt_ms: float | None = None  # median round trip of the probes that came back
    jitter_ms: float | None = None
    probes_sent: int = 0
    probes_received: int = 0
    loss_percent: float | None = None  # computed here from the probe counts
    up_kbps: float | None = None
    down_kbps: float | None = None
    recommendation: NetworkRecommendation = Field(sa_type=String(16))  # computed here
    user_agent: str = Field(default="", max_length=200)
