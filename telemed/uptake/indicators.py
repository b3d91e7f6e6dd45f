"""Every uptake indicator, defined once: what is counted, and when it counts.

An indicator is a *fact query*: one row per thing counted, with the consult it belongs to
(``consult_id``), the consult's facility, specialty and urgency (for the filters), the time
that places it in a period (``at``), what is counted distinct (``subject``), an optional
number (``value``: seconds, hours) and an optional ``category`` (urgency, outcome,
recommendation). ``telemed.uptake.sql`` filters, buckets and aggregates these rows in the
database; the dashboard, its consult lists, the CSV and the DHIS2 export all read the same
definitions, so a number and the consults behind it can never disagree.

Times are counted in Maseru's calendar (Africa/Maseru): the bucket edges are Maseru
midnights (``telemed.uptake.filters``). Each definition's docstring says exactly what it
counts; it is shown on the dashboard under "Definitions".
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from sqlalchemy import Select, func, literal, null, or_, select
from sqlmodel import col

from telemed.appointments.models import Appointment, AppointmentStatus
from telemed.consults.models import Consult, ConsultEvent, ConsultState, Urgency
from telemed.i18n import N_
from telemed.notes.models import ConsultNote, ConsultOutcome, NoteStatus, Outcome
from telemed.offers.models import ConsultOffer, OfferStatus
from telemed.precall.models import NetworkTest
from telemed.sessions.models import CallEventKind, CallSession, CallSessionEvent
from telemed.uptake.sql import seconds_between


class Measure(StrEnum):
    distinct = "distinct"  # distinct subjects
    rows = "rows"  # every fact row
    total = "total"  # sum of value
    duration = "duration"  # median and 90th percentile of value (seconds)


class Family(StrEnum):
    volume = "Volume"
    waiting = "Waiting"
    endings = "How consults end"
    people = "People"
    follow_up = "Follow-up"
    calls = "Calls"


@dataclass(frozen=True)
class Indicator:
    key: str
    label: str
    family: Family
    measure: Measure
    definition: str  # the docstring: exactly what is counted
    build: Callable[[], Select[Any]]
    consult_based: bool = True  # False: specialty and urgency filters do not apply
    dated: bool = False  # ``at`` is a date (a follow-up day), not a time
    categories: tuple[str, ...] = ()


INDICATORS: dict[str, Indicator] = {}


def indicator(
    key: str,
    label: str,
    family: Family,
    measure: Measure = Measure.distinct,
    *,
    consult_based: bool = True,
    dated: bool = False,
    categories: tuple[str, ...] = (),
) -> Callable[[Callable[[], Select[Any]]], Callable[[], Select[Any]]]:
    def register(build: Callable[[], Select[Any]]) -> Callable[[], Select[Any]]:
        doc = " ".join((build.__doc__ or "").split())
        INDICATORS[key] = Indicator(
            key, label, family, measure, doc, build, consult_based, dated, categories
        )
        return build

    return register


def facts(
    at: Any,
    *,
    subject: Any = None,
    value: Any = None,
    category: Any = None,
    consult_id: Any = None,
) -> Select[Any]:
    """The columns every fact query has, taken from ``Consult`` (joined by the caller).
    ``consult_id``: a column equal to ``Consult.id`` by the caller's join, to be filtered
    on instead (see ``_wait``)."""
    return select(
        (col(Consult.id) if consult_id is None else consult_id).label("consult_id"),
        col(Consult.facility_id).label("facility_id"),
        col(Consult.specialty).label("specialty"),
        col(Consult.urgency).label("urgency"),
        at.label("at"),
        (col(Consult.id) if subject is None else subject).label("subject"),
        (null() if value is None else value).label("value"),
        (null() if category is None else category).label("category"),
    )


# -- volume -----------------------------------------------------------------------------


@indicator("requests", N_("Requests"), Family.volume, categories=tuple(u.value for u in Urgency))
def requests() -> Select[Any]:
    """Consults requested: counted once each, in the period of the moment the clinician
    sent the request (``requested_at``); drafts never sent are not counted. Category: the
    urgency given at request."""
    return facts(col(Consult.requested_at), category=col(Consult.urgency)).where(
        col(Consult.requested_at).is_not(None)
    )


@indicator("offers_made", N_("Offers made"), Family.volume)
def offers_made() -> Select[Any]:
    """Offers made to specialists: every offer counts (a consult offered to three
    specialists counts three), in the period it was made (``offered_at``)."""
    return facts(col(ConsultOffer.offered_at), subject=col(ConsultOffer.id)).join(
        Consult, col(Consult.id) == col(ConsultOffer.consult_id)
    )


@indicator("offers_accepted", N_("Offers accepted"), Family.volume)
def offers_accepted() -> Select[Any]:
    """Offers made in the period (``offered_at``) that the specialist accepted. The
    acceptance rate is this divided by offers made."""
    return offers_made().where(col(ConsultOffer.status) == OfferStatus.accepted)


# -- waiting ----------------------------------------------------------------------------


def _wait(column: Any, consult_id: Any, *where: Any) -> Select[Any]:
    """Requested consults with the time from the request to the earliest ``column`` among
    their rows matching ``where``; consults without such a row are left out. The earliest
    times are grouped once and joined: a correlated subquery per consult, evaluated several
    times per row, made one wait take 30-60 s over a year of a million consults.

    The fact's ``consult_id`` is the grouped one: the rollup's refresh filters on it for the
    consults that changed, and PostgreSQL pushes that filter into the grouping (a filter on
    ``Consult.id`` is not carried across the join, so every refresh grouped the whole
    table: 40-50 s a minute at a million consults)."""
    first = select(consult_id.label("consult_id"), func.min(column).label("first_at"))
    first = first.where(column.is_not(None), *where).group_by(consult_id)
    firsts = first.subquery("firsts")
    at = col(Consult.requested_at)
    return (
        facts(at, value=seconds_between(at, firsts.c.first_at), consult_id=firsts.c.consult_id)
        .join(firsts, firsts.c.consult_id == col(Consult.id))
        .where(at.is_not(None))
    )


@indicator("wait_acceptance", N_("Time to acceptance"), Family.waiting, Measure.duration)
def wait_acceptance() -> Select[Any]:
    """For consults requested in the period: the time from the request to the first time
    the consult became ``accepted`` (by a specialist's acceptance or a coordinator's
    assignment). Consults never accepted have no time and are left out.
    The dashboard reads its median and 90th percentile from the rollup's bins 2 % wide:
    within 2 % of the exact value (``telemed.uptake.fast``)."""
    return _wait(
        col(ConsultEvent.at),
        col(ConsultEvent.consult_id),
        col(ConsultEvent.to_state) == ConsultState.accepted,
    )


@indicator(
    "wait_response", N_("Time to first specialist response"), Family.waiting, Measure.duration
)
def wait_response() -> Select[Any]:
    """For consults requested in the period: the time from the request to the first
    answer of any specialist to any of its offers (accepted or declined; an offer left to
    expire is no answer). Consults whose offers nobody answered are left out.
    The dashboard reads its median and 90th percentile from the rollup's bins 2 % wide:
    within 2 % of the exact value (``telemed.uptake.fast``)."""
    return _wait(
        col(ConsultOffer.responded_at),
        col(ConsultOffer.consult_id),
        col(ConsultOffer.status).in_([OfferStatus.accepted, OfferStatus.declined]),
    )


@indicator("wait_session", N_("Time to session"), Family.waiting, Measure.duration)
def wait_session() -> Select[Any]:
    """For consults requested in the period: the time from the request to the start of
    its first live call (call session). Consults without a call are left out.
    The dashboard reads its median and 90th percentile from the rollup's bins 2 % wide:
    within 2 % of the exact value (``telemed.uptake.fast``)."""
    return _wait(col(CallSession.started_at), col(CallSession.consult_id))


# -- how consults end -------------------------------------------------------------------


@indicator("sessions_held", N_("Sessions held"), Family.endings)
def sessions_held() -> Select[Any]:
    """Consults with a live call held: counted once per consult, in the period of the
    start of its first call session in that period (a call is held once somebody joined
    its room)."""
    return facts(col(CallSession.started_at)).join(
        Consult, col(Consult.id) == col(CallSession.consult_id)
    )


def _reached(state: ConsultState) -> Select[Any]:
    return (
        facts(col(ConsultEvent.at))
        .join(Consult, col(Consult.id) == col(ConsultEvent.consult_id))
        .where(col(ConsultEvent.to_state) == state)
    )


@indicator("answered_async", N_("Answered asynchronously"), Family.endings)
def answered_async() -> Select[Any]:
    """Consults that moved to ``answered_async`` (advice given by messages): once per
    consult, in the period of that move."""
    return _reached(ConsultState.answered_async)


@indicator("escalated", N_("Escalated"), Family.endings)
def escalated() -> Select[Any]:
    """Consults escalated to a coordinator (no specialist took them in time): once per
    consult, in the period of an escalation."""
    return _reached(ConsultState.escalated)


@indicator("cancelled", N_("Cancelled"), Family.endings)
def cancelled() -> Select[Any]:
    """Consults cancelled (by the requesting clinician): in the period of cancellation."""
    return _reached(ConsultState.cancelled)


@indicator("no_shows", N_("No-shows"), Family.endings)
def no_shows() -> Select[Any]:
    """Consults marked ``no_show`` (nobody, or one side only, came to the booked
    session): once per consult, in the period of that mark."""
    return _reached(ConsultState.no_show)


OUTCOMES = ("treated_locally", "referral_avoided", "referred", "transferred")


@indicator("outcomes", N_("Outcomes"), Family.endings, categories=tuple(o.value for o in Outcome))
def outcomes() -> Select[Any]:
    """Consults by their outcome: the latest outcome recorded on the consult counts (an
    outcome corrected later counts once, as corrected), in the period it was recorded.
    Category: the outcome (treated locally, referral avoided, referred, transferred, and
    the rarer admitted, died, lost to follow-up)."""
    latest = (
        select(func.max(ConsultOutcome.id))
        .where(col(ConsultOutcome.consult_id) == col(Consult.id))
        .correlate(Consult)
        .scalar_subquery()
    )
    return (
        facts(col(ConsultOutcome.recorded_at), category=col(ConsultOutcome.outcome))
        .join(Consult, col(Consult.id) == col(ConsultOutcome.consult_id))
        .where(col(ConsultOutcome.id) == latest)
    )


# -- people -----------------------------------------------------------------------------


@indicator("active_specialists", N_("Active specialists"), Family.people)
def active_specialists() -> Select[Any]:
    """Specialists who accepted at least one offer in the period (``responded_at`` of the
    accepted offer), each counted once."""
    return (
        facts(col(ConsultOffer.responded_at), subject=col(ConsultOffer.specialist_id))
        .join(Consult, col(Consult.id) == col(ConsultOffer.consult_id))
        .where(col(ConsultOffer.status) == OfferStatus.accepted)
    )


@indicator("hours_used", N_("Volunteer hours used"), Family.people, Measure.total)
def hours_used() -> Select[Any]:
    """Hours of booked sessions that were held (appointments marked completed), by the
    start of the appointment. Hours offered are the verified specialists' weekly windows
    (see ``telemed.uptake.service.hours_offered``)."""
    hours = seconds_between(col(Appointment.starts_at), col(Appointment.ends_at)) / 3600.0
    return (
        facts(col(Appointment.starts_at), value=hours)
        .join(Consult, col(Consult.id) == col(Appointment.consult_id))
        .where(col(Appointment.status) == AppointmentStatus.completed)
    )


# -- follow-up --------------------------------------------------------------------------


def _follow_ups() -> Select[Any]:
    return (
        facts(col(ConsultNote.follow_up_on))
        .join(Consult, col(Consult.id) == col(ConsultNote.consult_id))
        .where(
            col(ConsultNote.status) == NoteStatus.signed,
            col(ConsultNote.follow_up_on).is_not(None),
        )
    )


@indicator("follow_ups_due", N_("Follow-ups due"), Family.follow_up, dated=True)
def follow_ups_due() -> Select[Any]:
    """Consults with a signed note asking for a follow-up on a day in the period (Maseru
    date), counted once per consult."""
    return _follow_ups()


@indicator("follow_ups_done", N_("Follow-ups done"), Family.follow_up, dated=True)
def follow_ups_done() -> Select[Any]:
    """Of the follow-ups due in the period, those whose consult has an outcome recorded
    at or after the note was signed (the product's own rule: a recorded outcome ends
    the follow-up)."""
    done = (
        select(col(ConsultOutcome.id))
        .where(
            col(ConsultOutcome.consult_id) == col(ConsultNote.consult_id),
            col(ConsultOutcome.recorded_at) >= col(ConsultNote.signed_at),
        )
        .exists()
    )
    return _follow_ups().where(done)


# -- calls ------------------------------------------------------------------------------


def _call_events(*where: Any, subject: Any = None) -> Select[Any]:
    return (
        facts(col(CallSessionEvent.at), subject=subject)
        .join(Consult, col(Consult.id) == col(CallSessionEvent.consult_id))
        .where(*where)
    )


@indicator("calls_low", N_("Calls in audio-only or low mode"), Family.calls)
def calls_low() -> Select[Any]:
    """Consults whose call switched, at least once, to the low-bandwidth video or the
    audio-only profile (a ``media`` event of the call), once per consult. Its share is
    this divided by sessions held."""
    detail = col(CallSessionEvent.detail)
    return _call_events(
        col(CallSessionEvent.kind) == CallEventKind.media,
        or_(detail.like('%"mode":"low"%'), detail.like('%"mode":"audio-only"%')),
    )


@indicator("calls_dropped", N_("Calls dropped"), Family.calls)
def calls_dropped() -> Select[Any]:
    """Calls (call sessions) in which a participant's line dropped at least once (a
    ``reconnecting`` event), each call counted once, in the period of the drop."""
    return _call_events(
        col(CallSessionEvent.kind) == CallEventKind.reconnecting,
        subject=col(CallSessionEvent.call_session_id),
    )


@indicator("calls_resumed", N_("Calls resumed"), Family.calls)
def calls_resumed() -> Select[Any]:
    """Calls in which a dropped participant came back within the grace period (a
    ``reconnected`` event), each call counted once."""
    return _call_events(
        col(CallSessionEvent.kind) == CallEventKind.reconnected,
        subject=col(CallSessionEvent.call_session_id),
    )


RECOMMENDATIONS = ("normal", "low", "audio-only", "asynchronous")


@indicator(
    "network_tests",
    N_("Pre-call recommendations"),
    Family.calls,
    consult_based=False,
    categories=RECOMMENDATIONS,
)
def network_tests() -> Select[Any]:
    """Pre-call network tests run at a facility (by its clinicians), by the profile the
    test recommended (video, low, audio-only, messages only); every test counts. They
    belong to no consult, so the specialty and urgency filters do not apply."""
    return select(  # type: ignore[return-value]  # NULL columns type as Never
        null().label("consult_id"),
        col(NetworkTest.facility_id).label("facility_id"),
        literal(None).label("specialty"),
        literal(None).label("urgency"),
        col(NetworkTest.created_at).label("at"),
        col(NetworkTest.id).label("subject"),
        null().label("value"),
        col(NetworkTest.recommendation).label("category"),
    ).where(col(NetworkTest.facility_id).is_not(None))


GAPS = {
    "dormant_facilities": "Facilities (in the district and facility filtered) where no "
    "consult was requested in the 30 days before the end of the period.",
    "uncovered_specialties": "Active specialties that no verified specialist who is not "
    "away and has at least one weekly availability window offers.",
    "on_call_gaps": "On-call gaps need the on-call rota, which does not exist yet: nothing "
    "is counted.",
}
