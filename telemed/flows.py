"""Cross-domain flows, each in one place (architecture page, section 4).

The consult endpoints and pages call :func:`consult_requested` after a consult became
``requested``; the consults service itself knows nothing about offers. Deactivating an
account (API and command line) calls :func:`user_deactivated`; accounts know nothing
about offers either. An on-call specialist's one-tap link is :func:`accept_by_link` (the
rota knows nothing about accepting offers). A consult request with the patient's consent
is :func:`request_consult`; a consent recorded or withdrawn later,
:func:`consent_recorded` and :func:`consent_withdrawn` (consent knows nothing about
offers). An unlock link for a throttled login is :func:`send_unlock_link` (accounts know
nothing about notifications).
"""

from __future__ import annotations

import logging
from datetime import datetime

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from telemed import i18n
from telemed.accounts import unlock
from telemed.accounts.models import Role, User
from telemed.consent import service as consent
from telemed.consent.models import ConsentRecord, ConsentScope
from telemed.consent.schemas import ConsentAtRequest
from telemed.consults import reasons
from telemed.consults import service as consults
from telemed.consults.models import Consult, ConsultState
from telemed.consults.schemas import ConsultCreate
from telemed.errors import Conflict, NotFound, TelemedError
from telemed.i18n import N_
from telemed.notifications.service import notify
from telemed.offers import service as offers
from telemed.offers.models import ConsultOffer
from telemed.offers.policy import OfferPolicy
from telemed.oncall import service as oncall
from telemed.settings import Settings

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
                reasons.english(reasons.ACCOUNT_DEACTIVATED),
                now,
                policy,
            )
    except Exception:
        log.exception("withdrawing the offers to user %s failed; they will expire", user.id)


def request_consult(
    session: Session,
    user: User,
    data: ConsultCreate,
    consent_at_request: ConsentAtRequest | None,
    policy: OfferPolicy,
    now: datetime,
) -> Consult:
    """A consult request (API and page) with the consent taken at the bedside: the consult
    and its consent records in one savepoint (refused: neither stays), then the offer.

    The consent is checked before anything is stored, so a missing witness is a 422 naming
    ``consent.witness_name`` and no consult is created. Without a sharing consent the
    consult is created and waits for one (``offers.service.offer_requested``)."""
    if consent_at_request is not None:
        consent.check_at_request(consent_at_request)
    with session.begin_nested():
        consult = consults.create_consult(session, user, data, now)
        if consent_at_request is not None:
            consent.record_at_request(session, user, consult, consent_at_request, now)
    consult_requested(session, consult, policy, now)
    return consult


def consent_recorded(
    session: Session, consult: Consult, record: ConsentRecord, policy: OfferPolicy, now: datetime
) -> None:
    """A sharing consent recorded for a consult that was waiting for it: offered at once
    (as a new request is), rather than at the next periodic run."""
    if record.scope == ConsentScope.sharing:
        consult_requested(session, consult, policy, now)


def consent_withdrawn(
    session: Session, consult: Consult, record: ConsentRecord, actor: User, now: datetime
) -> None:
    """Sharing consent withdrawn: no offer stays open (``offers.withdraw_for_consent``).
    In the request's unit of work, not a savepoint: a withdrawal whose offers could not be
    withdrawn must not be acknowledged."""
    if record.scope == ConsentScope.sharing:
        offers.withdraw_for_consent(session, consult, actor, now)


def accept_by_link(
    session: Session, token: str, now: datetime, policy: OfferPolicy, settings: Settings
) -> ConsultOffer:
    """The on-call specialist's one-tap accept (no login: the signed link is the
    credential). The link's use and the accept are one savepoint: refused (forged, expired,
    used, the consult taken meanwhile), neither stays and the attempt is audited; a used
    link stays used, so a second tap never accepts anything."""
    if policy.oncall is None:
        raise NotFound(N_("on-call links are not enabled"), field="token")
    try:
        try:
            with session.begin_nested():
                claim, user = oncall.redeem_link(session, token, now, policy.oncall)
                return offers.accept(session, user, claim.offer_id, now, policy, settings)
        except IntegrityError as exc:  # two taps raced: the unique digest let one through
            raise Conflict(N_("this link was used already: it works once"), field="token") from exc
    except TelemedError as exc:
        oncall.link_refused(session, token, exc)
        raise


def send_unlock_link(session: Session, settings: Settings, email: str, now: datetime) -> None:
    """Queue an unlock link to the account of ``email``, in its owner's language. Says
    nothing back: whether the account exists, or a link went out already, stays unknown
    to whoever asked."""
    issued = unlock.issue(session, settings.secret_key, email, now)
    if issued is None:
        return
    with i18n.use_language(issued.user.language):
        notify(
            session,
            issued.user,
            kind="login_unlock",
            subject=i18n.gettext("Unlock your Telemed login"),
            body=i18n.gettext(
                "Someone, perhaps you, asked to unlock logging in to your account after "
                "several wrong passwords. The link below works once, for %(minutes)s "
                "minutes. If it was not you, ignore this message: your password still "
                "protects the account."
            )
            % {"minutes": unlock.UNLOCK_MINUTES},
            dedupe_key=f"login_unlock:{issued.unlock_id}",
            link=unlock.PATH + issued.token,
            now=now,
        )
