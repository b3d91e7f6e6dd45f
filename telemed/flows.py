"""Cross-domain flows, each in one place (architecture page, section 4).

The consult endpoints and pages call :func:`consult_requested` after a consult became
``requested``; the consults service itself knows nothing about offers.
"""

from __future__ import annotations

import logging
from datetime import datetime

from sqlmodel import Session

from telemed.consults.models import Consult, ConsultState
from telemed.offers import service as offers
from telemed.offers.policy import OfferPolicy
from telemed.settings import Settings

log = logging.getLogger(__name__)


def consult_requested(
    session: Session, consult: Consult, settings: Settings, now: datetime
) -> None:
    """Request -> offer to the best eligible specialist (or every one, for an emergency).

    The request itself is already committed: if offering fails, the clinician still gets
    their answer and the periodic ``process_due_offers`` run makes the offer later.
    """
    if consult.state != ConsultState.requested:
        return
    try:
        offers.offer_requested(session, consult, now, OfferPolicy.from_settings(settings))
    except Exception:
        session.rollback()
        log.exception("offering consult %s failed; the periodic run will retry", consult.id)
