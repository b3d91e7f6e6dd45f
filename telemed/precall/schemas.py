"""Shapes of the network test in the API: the plan, the echo peer's offer/answer, results."""

from __future__ import annotations

from datetime import datetime
from typing import Literal, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from telemed.precall.models import NetworkRecommendation
from telemed.sessions.schemas import IceServerPublic
from telemed.validation import Id

MAX_RTT_MS = 60_000.0  # a minute: anything longer is not a measurement
MAX_KBPS = 10_000_000.0  # 10 Gbit/s
MAX_PROBES = 1000


class NetworkTestPlan(BaseModel):
    """How much the browser sends and for how long; the echo peer enforces the same caps.

    Every phase is bounded in bytes *and* time, so a slow link sends less (adaptive) and the
    whole test stays under about 300 KB and 10 s.
    """

    probes: int = Field(description="Probes sent on the unreliable channel")
    probe_interval_ms: int
    probe_bytes: int = Field(description="Size of one probe; the echo peer refuses larger")
    probe_wait_ms: int = Field(description="How long to wait for late echoes")
    chunk_bytes: int = Field(description="Size of one throughput chunk")
    buffer_bytes: int = Field(description="Keep at most this much queued (bufferedAmount)")
    up_max_bytes: int
    up_max_ms: int
    down_max_bytes: int
    down_max_ms: int
    connect_timeout_ms: int


class NetworkTestSetup(BaseModel):
    """What the test page needs before it makes its offer."""

    plan: NetworkTestPlan
    ice_servers: list[IceServerPublic] = Field(
        description="STUN and time-limited TURN credentials, as for a call"
    )


class EchoOfferIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    type: Literal["offer"] = "offer"
    sdp: str = Field(
        min_length=10,
        max_length=20_000,
        description="A complete (non-trickle) SDP offer with data channels only",
    )


class EchoAnswer(BaseModel):
    type: Literal["answer"] = "answer"
    sdp: str = Field(description="The echo peer's complete SDP answer (all its candidates)")


class NetworkTestIn(BaseModel):
    """What the browser measured. The server computes loss and the recommendation itself."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)
    connected: bool = Field(default=True, description="False if the echo peer was unreachable")
    rtt_ms: float | None = Field(
        default=None, ge=0, le=MAX_RTT_MS, description="Median round trip of the probes"
    )
    jitter_ms: float | None = Field(default=None, ge=0, le=MAX_RTT_MS)
    probes_sent: int = Field(default=0, ge=0, le=MAX_PROBES)
    probes_received: int = Field(default=0, ge=0, le=MAX_PROBES)
    up_kbps: float | None = Field(default=None, ge=0, le=MAX_KBPS)
    down_kbps: float | None = Field(default=None, ge=0, le=MAX_KBPS)
    recommendation: str | None = Field(
        default=None,
        max_length=40,
        description="Ignored: the server computes the recommendation from the measurements",
    )

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if self.probes_received > self.probes_sent:
            raise ValueError("probes_received cannot exceed probes_sent")
        if self.connected and self.probes_sent == 0:
            raise ValueError("a connected test sends probes: probes_sent must be at least 1")
        if self.rtt_ms is not None and self.probes_received == 0:
            raise ValueError("rtt_ms needs at least one probe back (probes_received)")
        return self


class NetworkTestPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    user_id: Id
    facility_id: Id | None
    created_at: datetime
    connected: bool
    rtt_ms: float | None
    jitter_ms: float | None
    probes_sent: int
    probes_received: int
    loss_percent: float | None
    up_kbps: float | None
    down_kbps: float | None
    recommendation: NetworkRecommendation
    label: str = Field(description="The recommendation in words")


class RecommendationPublic(BaseModel):
    profile: Literal["normal", "low", "audio-only"] | None = Field(
        description="The call page's sending profile; null without a test in the last 30 days"
    )
    based_on: NetworkTestPublic | None


class FacilityLinkPublic(BaseModel):
    """A facility and its latest network test (coordinators)."""

    facility_id: Id
    code: str
    name: str
    district: str
    tests: int
    latest: NetworkTestPublic | None
