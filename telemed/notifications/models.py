"""In-app notifications and the outbox of e-mails and SMS that carry them."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import Index, LargeBinary, String, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from telemed.db import UTCDateTime, utcnow


class Channel(StrEnum):
    email = "email"
    sms = "sms"


class DeliveryStatus(StrEnum):
    pending = "pending"
    sending = "sending"  # claimed and committed before talking to the server
    sent = "sent"
    retrying = "retrying"  # a transient failure; tried again at next_attempt_at
    failed = "failed"  # permanent, out of attempts, or interrupted mid-send


class Notification(SQLModel, table=True):
    """What a user sees in the app. ``dedupe_key`` is unique over every user: a second
    notify with the same key inserts nothing (``INSERT ... ON CONFLICT DO NOTHING``)."""

    __tablename__ = "notifications"
    __table_args__ = (
        UniqueConstraint("dedupe_key", name="uq_notifications_dedupe_key"),
        Index("ix_notifications_user_unread", "user_id", "read_at"),
    )
    id: int | None = Field(default=None, primary_key=True)
    user_id: int = Field(foreign_key="users.id")
    kind: str = Field(max_length=40)
    subject: str = Field(max_length=200)
    body: str = Field(sa_type=Text)
    link: str | None = Field(default=None, max_length=500)
    dedupe_key: str = Field(max_length=200)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    read_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class OutboxMessage(SQLModel, table=True):
    """One e-mail or SMS to send. Status moves pending -> sending -> sent, or -> retrying
    (transient failure, again at ``next_attempt_at``) or failed; never from sending back to
    pending by itself: a message is sent at most once."""

    __tablename__ = "outbox_messages"
    __table_args__ = (Index("ix_outbox_messages_due", "status", "next_attempt_at"),)
    id: int | None = Field(default=None, primary_key=True)
    notification_id: int = Field(foreign_key="notifications.id", index=True)
    user_id: int = Field(foreign_key="users.id", index=True)
    channel: Channel = Field(sa_type=String(8))
    recipient: str = Field(max_length=254)  # an e-mail address or an E.164 phone number
    subject: str = Field(max_length=200)
    body: str = Field(sa_type=Text)
    link: str | None = Field(default=None, max_length=500)  # app path; absolute in e-mails
    status: DeliveryStatus = Field(default=DeliveryStatus.pending, sa_type=String(10))
    attempts: int = 0
    next_attempt_at: datetime = Field(sa_type=UTCDateTime)
    claimed_at: datetime | None = Field(default=None, sa_type=UTCDateTime)  # became sending
    sent_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    last_error: str = Field(default="", sa_type=Text)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class OutboxAttachment(SQLModel, table=True):
    """A file attached to an outbox e-mail (e.g. an ``.ics`` invitation)."""

    __tablename__ = "outbox_attachments"
    id: int | None = Field(default=None, primary_key=True)
    message_id: int = Field(foreign_key="outbox_messages.id", index=True)
    filename: str = Field(max_length=200)
    content_type: str = Field(max_length=200)
    data: bytes = Field(sa_type=LargeBinary)
