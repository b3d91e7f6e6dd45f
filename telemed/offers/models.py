"""Offers of a requested consult to specialists: who, until when, and what they answered."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import Index, String, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from telemed.db import UTCDateTime, utcnow


class OfferStatus(StrEnum):
    open = "open"
    accepted = "accepted"
    declined = "declined"
    expired = "expired"
    withdrawn = "withdrawn"  # another specialist accepted first, or a coordinator assigned


class ConsultOffer(SQLModel, table=True):
    """One offer. ``round`` counts the attempts on a consult (an emergency's broadcast is one
    round); ``accepted_consult_id`` is set only on the accepted offer, and its unique
    constraint makes a second winner impossible even if two accepts raced past every check.
    """

    __tablename__ = "consult_offers"
    __table_args__ = (
        UniqueConstraint("accepted_consult_id", name="uq_offer_one_winner"),
        Index("ix_consult_offers_offered_at", "offered_at"),  # uptake: offers in a period
    )
    id: int | None = Field(default=None, primary_key=True)
    consult_id: int = Field(foreign_key="consults.id", index=True)
    specialist_id: int = Field(foreign_key="users.id", index=True)
    round: int = 1
    status: OfferStatus = Field(default=OfferStatus.open, sa_type=String(12), index=True)
    offered_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    expires_at: datetime = Field(sa_type=UTCDateTime, index=True)
    responded_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    reason: str = Field(default="", sa_type=Text)
    slot_start: datetime | None = Field(default=None, sa_type=UTCDateTime)
    slot_end: datetime | None = Field(default=None, sa_type=UTCDateTime)
    assigned_by_id: int | None = Field(default=None, foreign_key="users.id")  # by hand
    accepted_consult_id: int | None = None
