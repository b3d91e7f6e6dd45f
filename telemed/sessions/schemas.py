"""Shapes of call tickets and session records in the API."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from telemed.sessions.models import CallEventKind


class IceServerPublic(BaseModel):
    """One ``RTCIceServer`` for ``new RTCPeerConnection({iceServers})``."""

    urls: list[str]
    username: str | None = None
    credential: str | None = None


class CallTicket(BaseModel):
    """What a client needs to join the consult's call (docs/signaling-protocol.md)."""

    consult_id: int
    room: str = Field(description="The room to name in `hello`")
    participant: str = Field(description="Your participant id in the room")
    name: str
    role: str = Field(description="clinician, specialist or observer")
    capacity: int = Field(description="Room capacity: 2, or 3 with an observer")
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
    user_id: int | None
    role: str | None
    at: datetime
    detail: dict[str, Any]


class CallSessionPublic(BaseModel):
    id: int
    consult_id: int
    room: str
    started_at: datetime
    ended_at: datetime | None
    duration_s: int | None
    events: list[CallEventPublic]
