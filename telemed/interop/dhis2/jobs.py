"""The monthly DHIS2 push: from the 2nd of each month (Maseru calendar) the month before is
sent, once. The job runs every hour; a month DHIS2 accepted is not sent again (the
``dhis2_pushes`` row), and a push that failed (DHIS2 down, an error answer) is tried again on
the next run, until the month changes. The 2nd, not the 1st: late entries of the month's
last evening (a consult closed at 23:50) are in, whatever the time zone of the server.

The job also sends the months a coordinator asked for on the exports page
(``service.request_push``), on its next run: it runs every minute, and a run with nothing to
send reads one row per month asked for, and last month's.
"""

from __future__ import annotations

import logging
from datetime import datetime
from pathlib import Path

from telemed.errors import TelemedError
from telemed.interop.dhis2.client import Dhis2Server
from telemed.interop.dhis2.payload import Period
from telemed.interop.dhis2.service import push_month, send_requested
from telemed.settings import Settings
from telemed.uow import Units
from telemed.uptake.filters import maseru_today

log = logging.getLogger(__name__)

PUSH_DAY = 2  # of the month, in Maseru


def monthly_push(units: Units, settings: Settings, now: datetime) -> str | None:
    """What was sent (for the runner's log), or None when there was nothing to do: DHIS2
    not configured, before the 2nd, or last month accepted already."""
    if not settings.dhis2_url or settings.dhis2_mapping is None:
        return None
    try:
        server = Dhis2Server.from_settings(settings)
    except TelemedError as exc:
        log.warning("DHIS2 is not configured correctly: %s", exc.message)
        return None
    requested = send_requested(units, server, settings.dhis2_mapping, now)
    monthly = _last_month(units, server, settings.dhis2_mapping, now)
    done = "; ".join(requested + ([monthly] if monthly else []))
    return done or None


def _last_month(units: Units, server: Dhis2Server, mapping: Path, now: datetime) -> str | None:
    today = maseru_today(now)
    if today.day < PUSH_DAY:
        return None
    period = Period.before(today)
    try:
        pushed = push_month(units, server, mapping, period, now)
    except TelemedError as exc:  # recorded; the next run tries again
        log.warning("DHIS2 push of %s failed (retried on the next run): %s", period, exc.message)
        return f"{period}: failed"
    if pushed.summary is None:
        return None
    for conflict in pushed.summary.conflicts:
        log.warning("DHIS2 push of %s: conflict %s", period, conflict)
    return f"{period}: {pushed.summary.line()}"
