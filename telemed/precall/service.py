"""The pre-call network test: its plan, the recommendation rules, stored results.

The browser measures (against the echo peer in :mod:`telemed.precall.echo`) and submits the
numbers; the recommendation is always computed here from those numbers, never taken from the
client. :data:`TIERS` is the one place the thresholds live.

:func:`recommended_profile` is what the call page uses to choose its sending profile.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from sqlmodel import Session

from telemed.accounts.models import User
from telemed.db import pk
from telemed.precall import auth, repository
from telemed.precall.models import NetworkRecommendation, NetworkTest
from telemed.precall.schemas import (
    FacilityLinkPublic,
    NetworkTestIn,
    NetworkTestPlan,
    NetworkTestPublic,
    NetworkTestSetup,
    RecommendationPublic,
)
from telemed.sessions.service import ice_servers_for, participant_of
from telemed.settings import Settings

CallProfile = Literal["normal", "low", "audio-only"]

#: How long a result counts for the call page.
RESULT_VALID_FOR = timedelta(days=30)
USER_AGENT_CHARS = 200

#: About 1.5 s of probes, then at most 2.5 s (and 96 KB) up and 2.5 s (and 144 KB) down:
#: under 300 KB in all with the handshakes, and under 10 s on a link that connects.
PLAN = NetworkTestPlan(
    probes=15,
    probe_interval_ms=100,
    probe_bytes=32,
    probe_wait_ms=1000,
    chunk_bytes=2048,
    buffer_bytes=8192,
    up_max_bytes=96 * 1024,
    up_max_ms=2500,
    down_max_bytes=144 * 1024,
    down_max_ms=2500,
    connect_timeout_ms=8000,
)


@dataclass(frozen=True, slots=True)
class Tier:
    """The least a link needs for one recommendation (throughput is the slower direction)."""

    min_kbps: float
    max_loss_percent: float
    max_rtt_ms: float


#: Best first; a link that meets none of them gets ``asynchronous``. The "low" profile sends
#: video capped around 200 kbit/s plus audio; audio (Opus) needs about 40 kbit/s with headers.
TIERS: tuple[tuple[NetworkRecommendation, Tier], ...] = (
    (NetworkRecommendation.normal, Tier(min_kbps=700, max_loss_percent=2, max_rtt_ms=400)),
    (NetworkRecommendation.low, Tier(min_kbps=250, max_loss_percent=5, max_rtt_ms=700)),
    (NetworkRecommendation.audio_only, Tier(min_kbps=48, max_loss_percent=15, max_rtt_ms=1200)),
)

LABELS = {
    NetworkRecommendation.normal: "video",
    NetworkRecommendation.low: "low-bandwidth video",
    NetworkRecommendation.audio_only: "audio only",
    NetworkRecommendation.asynchronous: "messages and photos (no live call)",
}

#: The call page's profile for each recommendation: a call cannot be asynchronous, so a
#: link that cannot carry one starts audio-only (and the page offers the thread).
PROFILES: dict[NetworkRecommendation, CallProfile] = {
    NetworkRecommendation.normal: "normal",
    NetworkRecommendation.low: "low",
    NetworkRecommendation.audio_only: "audio-only",
    NetworkRecommendation.asynchronous: "audio-only",
}


def loss_percent(sent: int, received: int) -> float | None:
    if sent <= 0:
        return None
    return round(100.0 * (sent - received) / sent, 2)


def recommend(
    *,
    connected: bool,
    rtt_ms: float | None,
    loss: float | None,
    up_kbps: float | None,
    down_kbps: float | None,
) -> NetworkRecommendation:
    """The best tier the measurements meet; a missing measurement meets none."""
    if not connected or rtt_ms is None or loss is None:
        return NetworkRecommendation.asynchronous
    kbps = min(up_kbps or 0.0, down_kbps or 0.0)
    for recommendation, tier in TIERS:
        if kbps >= tier.min_kbps and loss <= tier.max_loss_percent and rtt_ms <= tier.max_rtt_ms:
            return recommendation
    return NetworkRecommendation.asynchronous


def setup_for(settings: Settings, user: User) -> NetworkTestSetup:
    """The plan and the ICE servers (TURN credentials for this user, as for a call)."""
    auth.ensure_can_test(user)
    return NetworkTestSetup(
        plan=PLAN, ice_servers=ice_servers_for(settings, participant_of(pk(user)))
    )


def public(row: NetworkTest) -> NetworkTestPublic:
    recommendation = NetworkRecommendation(row.recommendation)
    return NetworkTestPublic(
        id=pk(row),
        user_id=row.user_id,
        facility_id=row.facility_id,
        created_at=row.created_at,
        connected=row.connected,
        rtt_ms=row.rtt_ms,
        jitter_ms=row.jitter_ms,
        probes_sent=row.probes_sent,
        probes_received=row.probes_received,
        loss_percent=row.loss_percent,
        up_kbps=row.up_kbps,
        down_kbps=row.down_kbps,
        recommendation=recommendation,
        label=LABELS[recommendation],
    )


def record(
    session: Session, user: User, measured: NetworkTestIn, *, user_agent: str, now: datetime
) -> NetworkTest:
    """Store a result for the user and their facility, with the recommendation computed here."""
    auth.ensure_can_test(user)
    connected = measured.connected
    loss = loss_percent(measured.probes_sent, measured.probes_received) if connected else None
    row = NetworkTest(
        user_id=pk(user),
        facility_id=user.facility_id,
        created_at=now,
        connected=connected,
        rtt_ms=measured.rtt_ms if connected else None,
        jitter_ms=measured.jitter_ms if connected else None,
        probes_sent=measured.probes_sent,
        probes_received=measured.probes_received,
        loss_percent=loss,
        up_kbps=measured.up_kbps if connected else None,
        down_kbps=measured.down_kbps if connected else None,
        recommendation=recommend(
            connected=connected,
            rtt_ms=measured.rtt_ms,
            loss=loss,
            up_kbps=measured.up_kbps,
            down_kbps=measured.down_kbps,
        ),
        user_agent=user_agent[:USER_AGENT_CHARS],
    )
    repository.add(session, row)
    session.flush()
    return row


def latest_result(session: Session, user: User, now: datetime) -> NetworkTest | None:
    """The user's latest result of the last 30 days, else their facility's."""
    since = now - RESULT_VALID_FOR
    row = repository.latest_for_user(session, pk(user), since)
    if row is None and user.facility_id is not None:
        row = repository.latest_for_facility(session, user.facility_id, since)
    return row


def recommended_profile(session: Session, user: User, now: datetime) -> str | None:
    """``"normal"``, ``"low"`` or ``"audio-only"`` for the user's calls; None without a test.

    From the user's latest result of the last 30 days, else their facility's latest (a
    colleague's test of the same clinic's link). ``asynchronous`` maps to ``"audio-only"``.
    """
    row = latest_result(session, user, now)
    return None if row is None else PROFILES[NetworkRecommendation(row.recommendation)]


def recommendation_for(session: Session, user: User, now: datetime) -> RecommendationPublic:
    row = latest_result(session, user, now)
    if row is None:
        return RecommendationPublic(profile=None, based_on=None)
    return RecommendationPublic(
        profile=PROFILES[NetworkRecommendation(row.recommendation)], based_on=public(row)
    )


def facility_links(session: Session, user: User) -> list[FacilityLinkPublic]:
    """Every facility with its latest result and how many tests it has (coordinators)."""
    auth.ensure_coordinator(user)
    latest = repository.latest_per_facility(session)
    counts = repository.counts_per_facility(session)
    out = []
    for facility, district in repository.facilities(session):
        facility_id = pk(facility)
        row = latest.get(facility_id)
        out.append(
            FacilityLinkPublic(
                facility_id=facility_id,
                code=facility.code,
                name=facility.name,
                district=district,
                tests=counts.get(facility_id, 0),
                latest=None if row is None else public(row),
            )
        )
    return out
