"""Cross-domain flows, each in one place (architecture page, section 4).

The consult endpoints and pages call :func:`consult_requested` after a consult became
``requested``; the consults service itself knows nothing about offers. Deactivating an
account (API and command line) calls :func:`user_deactivated`; accounts know nothing
about offers either.
"""

from __future__ import annotations

import logging
from datetime import datetime

from sqlmodel import Session

from telemed.accounts.models import Role, User
from telemed.consults.models import Consult, ConsultState
from telemed.offers import service as offers
from telemed.offers.policy import OfferPolicy

log = logging.getLogger(__name__)


def consult_requested(
    session: Session, consult: Consult, policy: OfferPolicy, now: datetime
) -> None:
    """Request -> offer to the best eligible specialist (or every one, for an emergency).

    The offer is made in a savepoint of the request's unit of work: if offering fails, it
    alone is rolled back, the request itself still commits and the clinician gets their
    answer, and the periodic ``process_due_offers`` run makes the offer later.
    """
    if consult.state != ConsultState.requested:
        return
    try:
        with session.begin_nested():
            offers.offer_requested(session, consult, now, policy)
    except Exception:
        log.exception("offering consult %s failed; the periodic run will retry", consult.id)


def user_deactivated(session: Session, user: User, policy: OfferPolicy, now: datetime) -> None:
    """Deactivated -> the offers still waiting for their answer go to the next specialist.

    In a savepoint: if moving an offer on fails, only that is rolled back and the
    deactivation still commits; the offer expires at its time and the periodic run moves
    it on then.
    """
    if user.role != Role.specialist:
        return
    try:
        with session.begin_nested():
            offers.withdraw_offers_to(
                session,
                user,
                "the specialist's account was deactivated",
                now,
                policy,
            )
    except Exception:
        log.exception("withdrawing the offers to user %s failed; they will expire", user.id)
