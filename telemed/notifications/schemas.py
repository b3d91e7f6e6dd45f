"""Response shapes of the notifications API."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict

from telemed.notifications.models import Channel, DeliveryStatus
from telemed.validation import Id


class NotificationPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    kind: str
    subject: str
    body: str
    link: str | None
    created_at: datetime
    read_at: datetime | None


class NotificationPage(BaseModel):
    items: list[NotificationPublic]
    total: int
    unread: int
    page: int
    page_size: int


class DeliveryPublic(BaseModel):
    """An outbox message as coordinators see it."""

    model_config = ConfigDict(from_attributes=True)
    id: int
    notification_id: Id
    user_id: Id
    channel: Channel
    recipient: str
    subject: str
    status: DeliveryStatus
    attempts: int
    next_attempt_at: datetime
    last_error: str
    created_at: datetime
