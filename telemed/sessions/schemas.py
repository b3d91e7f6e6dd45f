"""Shapes of call tickets and session records in the API."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from telemed.consults.models import GuestRole
from telemed.sessions.models import CallEventKind
from telemed.validation import Id


class IceServerPublic(BaseModel):
    """One ``RTCIceServer`` for ``new RTCPeerConnection({iceServers})``."""

    urls: list[str]
    username: str | None = None
    credential: str | None = None


class CallTicket(BaseModel):
    """What a client needs to join the consult's call (docs/signaling-protocol.md)."""

    consult_id: Id
    room: str = Field(description="The room to name in `hello`")
    participant: str = Field(description="Your participant id in the room")
    name: str
    role: str = Field(description="clinician, specialist, interpreter or observer")
    capacity: int = Field(description="Room capacity: 2, or 3 with an interpreter or observer")
    token: str = Field(description="Single-use join token for `hello`; fetch a new one per join")
    expires_at: datetime
    ws_url: str = Field(description="The signalling WebSocket (`/ws/signal` on this host)")
    ice_servers: list[IceServerPublic] = Field(
        description="STUN and time-limited TURN credentials (TURN REST scheme)"
    )
    thread_url: str = Field(description="Where the conversation goes on if the call fails")


class CallEventPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    kind: CallEventKind
    user_id: Id | None
    role: str | None
    at: datetime
    detail: dict[str, Any]


class CallSessionPublic(BaseModel):
    id: int
    consult_id: Id
    room: str
    started_at: datetime
    ended_at: datetime | None
    duration_s: int | None
    events: list[CallEventPublic]


class PhotoShareIn(BaseModel):
    """Announce a photo about to be shared in the call (then upload it with ``message_id``)."""

    model_config = ConfigDict(extra="forbid")
    filename: str = Field(min_length=1, max_length=255, examples=["rash-hands.jpg"])
    length: int = Field(ge=1, description="the file's exact size in bytes")
    media_type: str = Field(default="application/octet-stream", max_length=100)

    @field_validator("filename")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("the file name is empty")
        return value.strip()


class PhotoShare(BaseModel):
    message_id: Id = Field(
        description="The thread message of the share: send the photo to "
        "`POST /consults/{id}/uploads` with this `message_id`"
    )
    body: str
    call_session_id: Id | None = Field(description="The call it was shared in, if one is open")


class FeedAttachment(BaseModel):
    id: int
    message_id: Id | None
    uploaded_by_id: Id
    uploader_name: str
    kind: str
    filename: str
    preview_url: str | None
    original_url: str


class FeedMessage(BaseModel):
    id: int
    author_id: Id
    author_name: str
    body: str
    created_at: datetime


class CallFeed(BaseModel):
    """What reached the consult's thread after the given ids (the call page's fallback path
    when its data channel is down): messages and attachments, oldest first."""

    messages: list[FeedMessage]
    attachments: list[FeedAttachment]


class CallGuestIn(BaseModel):
    """Invite a user into the consult's call."""

    model_config = ConfigDict(extra="forbid")
    user_id: Id
    role: GuestRole = Field(description="interpreter, or second_specialist")


class CallGuestPublic(BaseModel):
    """An invitation into a consult's call (revoked ones stay, with ``revoked_at``)."""

    id: Id
    consult_id: Id
    user_id: Id
    name: str
    role: GuestRole
    signal_role: str = Field(description="The role in the call's room: interpreter or observer")
    invited_by_id: Id
    invited_at: datetime
    revoked_at: datetime | None
    active: bool
