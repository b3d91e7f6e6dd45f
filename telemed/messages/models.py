"""The store-and-forward message thread of a consult."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Index, Text
from sqlmodel import Field, SQLModel

from telemed.db import UTCDateTime, utcnow


class Message(SQLModel, table=True):
    __tablename__ = "messages"
    __table_args__ = (Index("ix_messages_consult_created", "consult_id", "created_at"),)
    id: int | None = Field(default=None, primary_key=True)
    consult_id: int = Field(foreign_key="consults.id")
    author_id: int = Field(foreign_key="users.id")
    body: str = Field(sa_type=Text)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
