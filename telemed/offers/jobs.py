"""The coordinators' daily digest: once a day after 06:00 Maseru time, the numbers they
check first each morning.

Beside the offers because most of it is the state of matching (consults waiting,
escalated, offers expired unanswered), and the offers are the domain that may read every
domain it counts (consults, deliveries, registrations) through their repositories.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlmodel import Session

from telemed.consults import repository as consults_repository
from telemed.consults.lifecycle import WAITING_STATES
from telemed.consults.models import ConsultState
from telemed.directory import repository as directory_repository
from telemed.i18n import gettext
from telemed.labels import label
from telemed.notifications import repository as notifications_repository
from telemed.notifications.service import coordinators_told, notify_coordinators
from telemed.offers import repository
from telemed.settings import Settings
from telemed.timefmt import format_day, format_number, local_time
from telemed.uow import Units

DIGEST_HOUR = 6  # local hour (settings.clinician_timezone) after which the digest goes out


@dataclass(frozen=True)
class DigestCounts:
    """The digest's numbers, counted once: each coordinator then reads them in their own
    language (``digest_text`` runs once per recipient, the queries do not)."""

    now: datetime
    waiting: list[tuple[str, int]]  # (urgency, consults waiting), urgencies in code order
    escalated: int
    requested: int
    accepted: int
    expired_offers: int
    no_shows: int
    undelivered: int
    pending_verification: int


def digest_counts(session: Session, now: datetime) -> DigestCounts:
    """The numbers a coordinator checks first each morning, for the last 24 hours."""
    since = now - timedelta(hours=24)

    def moves_to(state: ConsultState) -> int:
        return consults_repository.count_moves_to(session, state, since)

    return DigestCounts(
        now=now,
        waiting=[
            (str(u), n)
            for u, n in sorted(consults_repository.count_by_urgency(session, WAITING_STATES))
        ],
        escalated=consults_repository.count_in_state(session, ConsultState.escalated),
        requested=moves_to(ConsultState.requested),
        accepted=moves_to(ConsultState.accepted),
        expired_offers=repository.count_expired_since(session, since),
        no_shows=moves_to(ConsultState.no_show),
        undelivered=notifications_repository.count_failed(session),
        pending_verification=directory_repository.count_pending(session),
    )


def digest_text(counts: DigestCounts) -> str:
    """The digest's body in the language in force (the recipient's)."""
    by_urgency = ", ".join(f"{format_number(n)} {label(u)}" for u, n in counts.waiting) or gettext(
        "none"
    )
    lines = [
        gettext("Telemed digest for the 24 hours to %(moment)s UTC")
        % {"moment": local_time(counts.now, ZoneInfo("UTC"))},
        gettext("- waiting for a specialist now: %(by_urgency)s") % {"by_urgency": by_urgency},
        gettext("- in the escalation queue now: %(count)s") % {"count": counts.escalated},
        gettext("- requested in the last 24 h: %(count)s") % {"count": counts.requested},
        gettext("- accepted in the last 24 h: %(count)s") % {"count": counts.accepted},
        gettext("- offers expired unanswered: %(count)s") % {"count": counts.expired_offers},
        gettext("- no-shows: %(count)s") % {"count": counts.no_shows},
        gettext("- messages that could not be delivered: %(count)s")
        % {"count": counts.undelivered},
        gettext("- specialists awaiting verification: %(count)s")
        % {"count": counts.pending_verification},
    ]
    return "\n".join(lines)


def daily_digest(units: Units, settings: Settings, now: datetime) -> int:
    """Once a day after 06:00 Maseru time; returns how many coordinators were written to
    (one unit of work)."""
    with units.one() as session:
        return _digest(session, settings, now)


def _digest(session: Session, settings: Settings, now: datetime) -> int:
    local = now.astimezone(ZoneInfo(settings.clinician_timezone))
    key = f"digest:{local.date().isoformat()}"
    if local.hour < DIGEST_HOUR or coordinators_told(session, key):
        return 0  # (the digest's counts are not worked out again on every run of the day)
    counts = digest_counts(session, now)
    queued = notify_coordinators(
        session,
        kind="digest",
        subject=lambda: (
            gettext("Telemed daily digest, %(day)s") % {"day": format_day(local.date())}
        ),
        body=lambda: digest_text(counts),
        dedupe_key=key,
        link="/",
        now=now,
    )
    return queued
