"""The SQL behind the metrics read at scrape: a few grouped counts over indexed columns.

Each query is an aggregate (never rows brought into Python), so a scrape costs the same on a
database of a thousand consults or a million.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import func
from sqlmodel import Session, col, select

from telemed.consults.models import Consult, ConsultState
from telemed.jobs import repository as job_runs
from telemed.jobs.repository import JobHealth
from telemed.notifications.models import DeliveryStatus, OutboxMessage
from telemed.offers.models import ConsultOffer, OfferStatus

# Messages still to be sent: waiting, being sent, or waiting for another attempt.
OUTBOX_WAITING = (DeliveryStatus.pending, DeliveryStatus.sending, DeliveryStatus.retrying)


@dataclass
class Readings:
    consults_by_state: dict[str, int] = field(default_factory=dict)
    offers_open: int = 0
    oldest_open_offer_at: datetime | None = None
    escalated: int = 0
    oldest_escalation_at: datetime | None = None
    outbox_by_channel_status: dict[tuple[str, str], int] = field(default_factory=dict)
    jobs: list[JobHealth] = field(default_factory=list)


def read(session: Session) -> Readings:
    found = Readings()
    for state, count in session.execute(
        select(Consult.state, func.count()).group_by(Consult.state)
    ):
        found.consults_by_state[str(state)] = int(count)
    found.offers_open, found.oldest_open_offer_at = session.execute(
        select(func.count(), func.min(ConsultOffer.offered_at)).where(
            ConsultOffer.status == OfferStatus.open
        )
    ).one()
    found.escalated, found.oldest_escalation_at = session.execute(
        select(func.count(), func.min(Consult.state_changed_at)).where(
            Consult.state == ConsultState.escalated
        )
    ).one()
    for channel, status, count in session.execute(
        select(OutboxMessage.channel, OutboxMessage.status, func.count())
        .where(col(OutboxMessage.status).in_([*OUTBOX_WAITING, DeliveryStatus.failed]))
        .group_by(OutboxMessage.channel, OutboxMessage.status)
    ):
        found.outbox_by_channel_status[(str(channel), str(status))] = int(count)
    found.jobs = job_runs.health(session)
    return found
