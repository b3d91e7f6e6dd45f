"""Stored responses of creating requests, so that a retry after a lost answer repeats it.

A clinic on 2G sends a message, the link drops before the 201 comes back, and the page
(or its offline queue) sends it again. Without a record of the first answer the second
request would create a second message. With an ``Idempotency-Key`` header, the first
request's answer is stored here in the same transaction as the write it answers, and a
repeat gets that answer back instead of being run again.

The stored body can hold clinical data (a consult with its patient), so a row belongs to
one user (unique on user and key) and is never handed to anyone else.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from telemed.db import UTCDateTime, utcnow


class IdempotencyKey(SQLModel, table=True):
    __tablename__ = "idempotency_keys"
    __table_args__ = (UniqueConstraint("user_id", "key", name="uq_idempotency_keys_user_key"),)
    id: int | None = Field(default=None, primary_key=True)
    key: str = Field(max_length=128)
    user_id: int = Field(foreign_key="users.id")
    request: str = Field(max_length=300)  # method and path: "POST /api/v1/consults/7/messages"
    request_sha256: str = Field(max_length=64)  # of the body (JSON in a canonical form)
    status_code: int
    response_body: str = Field(sa_type=Text)
    # What the stored answer is about: replays are audited against this consult and case.
    consult_id: int | None = Field(default=None, foreign_key="consults.id")
    case_id: int | None = Field(default=None, foreign_key="cases.id")
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
