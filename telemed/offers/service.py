"""Offers: make them, accept, decline, expire, escalate, assign by hand.

Every operation locks the consult row first (``consults.repository.lock_consult``), then moves the
consult's state through ``consults.service.transition`` (compare-and-set), then touches the
offers: one lock order everywhere, so concurrent accepts queue rather than deadlock, and the
loser finds the consult already taken (409). The unique ``accepted_consult_id`` makes a
second winner impossible even then. Every step is a consult event and an audit row.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from telemed.accounts.models import Role, User
from telemed.appointments import caps, free_time
from telemed.appointments import service as appointments
from telemed.audit import service as audit
from telemed.audit.models import AuditAction
from telemed.consent import service as consent
from telemed.consent.models import ConsentScope
from telemed.consults import reasons
from telemed.consults import repository as consults_repository
from telemed.consults import service as consults
from telemed.consults.models import (
    Consult,
    ConsultState,
    ParticipantRelation,
    Urgency,
)
from telemed.db import pk
from telemed.directory import repository as directory
from telemed.directory.service import is_eligible
from telemed.errors import Conflict, NotFound, ValidationFailed
from telemed.i18n import N_
from telemed.offers import auth, matching, notices, repository
from telemed.offers.models import ConsultOffer, OfferStatus
from telemed.offers.policy import OfferPolicy
from telemed.oncall import notices as oncall_notices
from telemed.oncall import service as oncall
from telemed.settings import Settings
from telemed.uow import Units

log = logging.getLogger(__name__)


def _involve(session: Session, consult: Consult, user: User, relation: ParticipantRelation) -> None:
    if not repository.has_participant(session, pk(consult), pk(user), relation):
        consults.add_participant(session, consult, user, relation)


def _uninvolve(session: Session, consult: Consult, specialist_ids: list[int]) -> None:
    """Offers that ended untaken end the access they gave: a specialist who declined, let
    an offer expire or lost a race no longer sees the consult (least privilege)."""
    for specialist_id in specialist_ids:
        consults_repository.drop_participant(
            session, pk(consult), specialist_id, ParticipantRelation.offered
        )


def _audit(
    session: Session, actor: User | None, offer: ConsultOffer, consult: Consult, what: str
) -> None:
    action = AuditAction.create if what == "offered" else AuditAction.update
    audit.record(
        session,
        actor,
        action,
        "offer",
        pk(offer),
        case_id=consult.case_id,
        consult_id=consult.id,
        detail=f"{what}: specialist {offer.specialist_id}",
    )


def _escalate(session: Session, consult: Consult, reason: str, now: datetime) -> None:
    consults.transition(session, consult, ConsultState.escalated, actor=None, reason=reason, at=now)
    notices.escalated(session, consult, reason, now)
    notices.clinician_step(session, consult, notices.Step.escalated, now)


def offer_requested(
    session: Session,
    consult: Consult,
    now: datetime,
    policy: OfferPolicy,
    planned: dict[int, matching.Candidate | None] | None = None,
) -> list[ConsultOffer]:
    """Offer a ``requested`` consult to the best eligible specialist (an emergency: to every
    eligible one at once), or escalate it when offers failed too often or the deadline is at
    risk. Without any candidate it stays ``requested`` (the periodic run retries) until it
    has waited as long as an offer would have lasted, then it is escalated. ``planned``
    holds a batch's choice (see :func:`plan_batch`); a consult it leaves out is matched on
    its own.

    Without the patient's consent to share the case in force nothing happens: the consult
    stays ``requested``, "waiting for consent", neither offered nor escalated (only the
    clinician with the patient can unblock it), until a consent is recorded."""
    locked = consults_repository.lock_consult(session, pk(consult))
    if locked is None or locked.state != ConsultState.requested:
        return []
    consult = locked
    if not consent.current(session, pk(consult)).sharing_given:
        return []
    failures = repository.last_round(session, pk(consult))
    expiry = policy.expiry(consult)
    deadline = policy.deadline(consult)
    if failures >= policy.max_failures:
        _escalate(session, consult, reasons.english(reasons.TOO_MANY_FAILURES, count=failures), now)
        return []
    if now + expiry > deadline:
        _escalate(session, consult, reasons.english(reasons.DEADLINE_AT_RISK), now)
        return []
    chosen: list[matching.Candidate] = []
    on_call = oncall.emergency_first(session, consult, failures, now, policy.oncall)
    on_call = matching.on_call_within_limit(session, consult, on_call, now, policy.fairness)
    if on_call and policy.oncall is not None:  # whoever is on call first, for a short window
        slots = [matching.Candidate(u, now, now + policy.slot_length) for u in on_call]
        chosen = _within_caps(session, consult, slots, now)
        if chosen:
            expiry = policy.oncall.answer_window
    if not chosen:
        chosen = _choose(session, consult, now, policy, planned)
    if not chosen:
        if consult.urgency == Urgency.emergency:  # an emergency never waits for the timer
            _escalate(session, consult, _nobody(session, consult, now), now)
            return []
        waiting_since = consult.state_changed_at
        if now - waiting_since >= expiry:
            _escalate(session, consult, reasons.english(reasons.NOBODY), now)
        return []
    consults.transition(
        session,
        consult,
        ConsultState.offered,
        actor=None,
        reason=reasons.english(
            reasons.OFFERED_TO, names=", ".join(c.user.full_name for c in chosen)
        ),
        at=now,
    )
    offers = []
    for candidate in chosen:
        offer = ConsultOffer(
            consult_id=pk(consult),
            specialist_id=pk(candidate.user),
            round=failures + 1,
            offered_at=now,
            expires_at=min(now + expiry, deadline),
            slot_start=candidate.slot_start,
            slot_end=candidate.slot_end,
        )
        session.add(offer)
        session.flush()
        _involve(session, consult, candidate.user, ParticipantRelation.offered)
        _audit(session, None, offer, consult, "offered")
        if on_call and policy.oncall is not None:  # SMS and e-mail with a one-tap link
            oncall_notices.on_call_offered(
                session, consult, pk(offer), candidate.user, offer.expires_at, now, policy.oncall
            )
        else:
            notices.offered(session, consult, offer, candidate.user, now)
        offers.append(offer)
    notices.clinician_step(session, consult, notices.Step.offered, now, count=len(offers))
    if consult.urgency == Urgency.emergency and failures == 0:
        notices.emergency_offered(session, consult, len(offers), now)
    session.flush()
    return offers


def _nobody(session: Session, consult: Consult, now: datetime) -> str:
    """Why an emergency found nobody, in the flow's own words (English, like every
    consult event): the coordinator's page offers related specialties for the first."""
    if not directory.eligible_profiles(session, now.date(), consult.specialty):
        return reasons.english(reasons.NO_VERIFIED)
    return reasons.english(reasons.NOBODY_NOW)


def _choose(
    session: Session,
    consult: Consult,
    now: datetime,
    policy: OfferPolicy,
    planned: dict[int, matching.Candidate | None] | None,
) -> list[matching.Candidate]:
    """The candidates to offer the consult to, each checked again under their profile row
    lock against their weekly caps with every open offer counted (``appointments.caps``):
    a batch's earlier offer or a concurrent run may have filled the week since the choice
    was made. A choice that no longer fits is made again, once, counting them."""
    emergency = consult.urgency == Urgency.emergency
    chosen: list[matching.Candidate]
    if planned is not None and consult.id in planned and not emergency:
        choice = planned[consult.id]
        chosen = [] if choice is None else [choice]
    else:
        instance = matching.build(session, consult, now, policy)
        rule = policy.fairness
        chosen = matching.everyone(instance, rule) if emergency else matching.best(instance, rule)
    kept = _within_caps(session, consult, chosen, now)
    if kept or not chosen or emergency:
        return kept
    again = matching.build(session, consult, now, policy)
    return _within_caps(session, consult, matching.best(again, policy.fairness), now)


def _within_caps(
    session: Session, consult: Consult, chosen: list[matching.Candidate], now: datetime
) -> list[matching.Candidate]:
    """The candidates whose slot still fits their caps, their rows locked in id order (one
    order: two runs offering to the same specialists queue rather than deadlock)."""
    kept = []
    for candidate in sorted(chosen, key=lambda c: pk(c.user)):
        limits = caps.lock(
            session, candidate.user, now, tentative=True, exclude_consult_id=pk(consult)
        )
        if limits is None or limits.fits(candidate.slot_start, candidate.slot_end):
            kept.append(candidate)
    return kept


def _own_open_offer(
    session: Session, user: User, offer_id: int, now: datetime
) -> tuple[ConsultOffer, Consult]:
    auth.ensure_can_answer(user)
    offer = repository.get_offer(session, offer_id)
    if offer is None or offer.specialist_id != user.id:
        raise NotFound(N_("offer %(offer_id)s not found"), offer_id=offer_id)
    consult = consults_repository.lock_consult(session, offer.consult_id)
    offer = repository.get_offer(session, offer_id)  # re-read under the consult's lock
    assert offer is not None
    assert consult is not None
    if offer.status == OfferStatus.withdrawn:
        raise Conflict(N_("this offer was withdrawn: the consult is already taken"), field="offer")
    if offer.status != OfferStatus.open:
        raise Conflict(
            N_("this offer is already %(offer_status)s"), offer_status=offer.status, field="offer"
        )
    if now >= offer.expires_at:
        raise Conflict(N_("this offer has expired"), field="offer")
    return offer, consult


def accept(
    session: Session,
    user: User,
    offer_id: int,
    now: datetime,
    policy: OfferPolicy,
    settings: Settings,
    *,
    start_now: bool | None = None,
) -> ConsultOffer:
    """First accept wins: the consult becomes ``accepted`` with this specialist assigned,
    the other open offers are withdrawn. A live (video, audio) consult is booked in the
    same transaction at the offer's slot and becomes ``scheduled``; an asynchronous one
    stays ``accepted``. ``start_now`` (urgent and emergency consults only) books it from
    now instead, so its call opens at once; an emergency starts now unless told otherwise
    (or the specialist has another session now). A lost race, an expired or closed offer,
    a slot that clashes with another appointment of the specialist: 409, and nothing
    changed (a savepoint)."""
    if start_now and not _may_start_now(session, offer_id):
        raise ValidationFailed(
            N_(
                "only an urgent or emergency consult is accepted to start now; agree an "
                "early start with the clinician on the consult page"
            ),
            field="start_now",
        )
    try:
        with session.begin_nested():
            _accept(session, user, offer_id, now, policy, settings, start_now)
    except IntegrityError as exc:  # a second winner refused by the unique constraint
        raise Conflict(N_("another specialist accepted this consult first"), field="offer") from exc
    fresh = repository.get_offer(session, offer_id)
    assert fresh is not None
    return fresh


def _may_start_now(session: Session, offer_id: int) -> bool:
    offer = repository.get_offer(session, offer_id)
    consult = None if offer is None else session.get(Consult, offer.consult_id)
    return consult is None or consult.urgency in (Urgency.urgent, Urgency.emergency)


def _starts_now(
    session: Session,
    consult: Consult,
    specialist: User,
    start_now: bool | None,
    now: datetime,
    policy: OfferPolicy,
) -> bool:
    """Whether the acceptance books the session from now: as asked, else for an
    emergency whose specialist is free now (an emergency does not wait for a slot)."""
    if start_now is not None:
        return start_now
    return consult.urgency == Urgency.emergency and free_time.free_now(
        session, specialist, now, policy.slot_length
    )


def _accept(
    session: Session,
    user: User,
    offer_id: int,
    now: datetime,
    policy: OfferPolicy,
    settings: Settings,
    start_now: bool | None = None,
) -> None:
    offer, consult = _own_open_offer(session, user, offer_id, now)
    consent.ensure_sharing(session, consult)  # withdrawn since the offer was made
    # The specialist's row lock before any write: two accepts for one specialist queue
    # here (their caps are checked at booking); later, a write's foreign-key share lock
    # on their users row would deadlock against the other's booking (PostgreSQL).
    profile = directory.lock_profile(session, pk(user))
    if profile is None or not is_eligible(profile, now.date()):
        raise Conflict(N_("your registration is not verified or has expired"), field="offer")
    consults.transition(
        session,
        consult,
        ConsultState.accepted,
        actor=user,
        reason=reasons.english(reasons.ACCEPTED_BY, name=user.full_name),
        at=now,
    )
    if not repository.close_offer(
        session, offer_id, OfferStatus.accepted, now, accepted_consult_id=consult.id
    ):
        raise Conflict(N_("this offer was closed meanwhile"), field="offer")
    others = repository.withdraw_open(
        session, pk(consult), now, reasons.english(reasons.ANOTHER_ACCEPTED)
    )
    if others:
        text = reasons.english(reasons.OTHERS_WITHDRAWN, count=len(others))
        consults.record_fact(session, consult, None, text, now)
    _uninvolve(session, consult, others)
    _involve(session, consult, user, ParticipantRelation.assigned)
    _audit(session, user, offer, consult, "accepted")
    slot = (offer.slot_start, offer.slot_end) if offer.slot_start and offer.slot_end else None
    appointments.book_after_acceptance(
        session,
        consult,
        user,
        actor=user,
        now=now,
        slot=slot,
        slot_length=policy.slot_length,
        settings=settings,
        start_now=_starts_now(session, consult, user, start_now, now, policy),
    )
    if consult.state == ConsultState.accepted:  # asynchronous: no booking notice
        notices.accepted(session, consult, user, now)
    notices.clinician_step(session, consult, notices.Step.accepted, now, name=user.full_name)


def decline(
    session: Session,
    user: User,
    offer_id: int,
    reason: str,
    now: datetime,
    policy: OfferPolicy,
) -> ConsultOffer:
    """Decline with a reason; when no other offer is open the next candidate gets one.

    The decline is a savepoint (refused: nothing changed); the next offer another, so that
    the decline stands if offering fails (the periodic run offers the consult then)."""
    if not reason.strip():
        raise ValidationFailed(N_("say why you decline"), field="reason")
    with session.begin_nested():
        offer, consult = _own_open_offer(session, user, offer_id, now)
        text = reasons.english(reasons.DECLINED_BY, name=user.full_name, reason=reason.strip())
        if not repository.close_offer(
            session, offer_id, OfferStatus.declined, now, reason=reason.strip()
        ):
            raise Conflict(N_("this offer was closed meanwhile"), field="offer")
        _uninvolve(session, consult, [offer.specialist_id])
        _audit(session, user, offer, consult, "declined")
        rematch = _after_offer_closed(session, consult, user, text, now)
    if rematch:
        try:
            with session.begin_nested():
                offer_requested(session, consult, now, policy)
        except Exception:
            log.exception("offering consult %s again failed; the periodic run will", consult.id)
    fresh = repository.get_offer(session, offer_id)
    assert fresh is not None
    return fresh


def _after_offer_closed(
    session: Session, consult: Consult, actor: User | None, text: str, now: datetime
) -> bool:
    """Back to ``requested`` when no offer is open any more; True if a rematch is due."""
    still_open = [
        o for o in repository.offers_of(session, pk(consult)) if o.status == OfferStatus.open
    ]
    if still_open or consult.state != ConsultState.offered:
        consults.record_fact(session, consult, actor, text, now)
        return False
    consults.transition(session, consult, ConsultState.requested, actor=actor, reason=text, at=now)
    return True


@dataclass
class DueReport:
    expired: list[int] = field(default_factory=list)  # offer ids
    offered: list[int] = field(default_factory=list)  # consult ids
    escalated: list[int] = field(default_factory=list)  # consult ids
    failed: list[int] = field(default_factory=list)  # consult ids whose processing failed
    waiting_for_consent: list[int] = field(default_factory=list)  # consult ids skipped


def _expire(session: Session, consult_id: int, now: datetime) -> list[int]:
    """Expire the consult's overdue offers (and move it back to ``requested`` when none is
    open any more); the ids of the offers expired."""
    consult = consults_repository.lock_consult(session, consult_id)
    if consult is None:
        return []
    expired: list[int] = []
    due = [
        o
        for o in repository.offers_of(session, consult_id)
        if o.status == OfferStatus.open and o.expires_at <= now
    ]
    names = directory_names(session, [o.specialist_id for o in due])
    for offer in due:
        if repository.close_offer(session, pk(offer), OfferStatus.expired, now):
            _uninvolve(session, consult, [offer.specialist_id])
            _audit(session, None, offer, consult, "expired")
            expired.append(pk(offer))
    if due:
        text = reasons.english(reasons.OFFER_EXPIRED, names=", ".join(names))
        _after_offer_closed(session, consult, None, text, now)
    return expired


def withdraw_offers_to(
    session: Session,
    specialist: User,
    reason: str,
    now: datetime,
    policy: OfferPolicy,
) -> list[int]:
    """Withdraw every open offer made to ``specialist`` (e.g. their account was deactivated:
    they can never answer) and move each consult on to its next candidate at once, rather
    than leave it waiting for the offer to expire, in the caller's unit of work; the ids of
    the withdrawn offers."""
    consult_ids = [
        pk(c) for _, c in repository.offers_for(session, pk(specialist), [OfferStatus.open])
    ]
    withdrawn: list[int] = []
    for consult_id in consult_ids:
        consult = consults_repository.lock_consult(session, consult_id)
        if consult is None:
            continue
        mine = [
            o
            for o in repository.offers_of(session, consult_id)
            if o.status == OfferStatus.open and o.specialist_id == specialist.id
        ]
        for offer in mine:
            if repository.close_offer(
                session, pk(offer), OfferStatus.withdrawn, now, reason=reason
            ):
                _uninvolve(session, consult, [offer.specialist_id])
                _audit(session, None, offer, consult, "withdrawn")
                withdrawn.append(pk(offer))
        text = reasons.english(reasons.OFFER_WITHDRAWN, name=specialist.full_name, why=reason)
        rematch = _after_offer_closed(session, consult, None, text, now) if mine else False
        if rematch:
            offer_requested(session, consult, now, policy)
    return withdrawn


def withdraw_for_consent(
    session: Session, consult: Consult, actor: User, now: datetime
) -> list[int]:
    """The patient withdrew their consent to share the case: the open offers are withdrawn
    (their specialists lose access) and an ``offered`` consult goes back to ``requested``,
    where it waits for consent. An assigned specialist keeps the consult and is shown the
    withdrawal. The specialists' ids whose offers were withdrawn."""
    locked = consults_repository.lock_consult(session, pk(consult))
    if locked is None:
        return []
    withdrawn = repository.withdraw_open(
        session, pk(locked), now, reasons.english(reasons.PATIENT_WITHDREW)
    )
    if not withdrawn:
        return []
    _uninvolve(session, locked, withdrawn)
    text = reasons.english(reasons.CONSENT_WITHDRAWN, count=len(withdrawn))
    if locked.state == ConsultState.offered:
        consults.transition(
            session, locked, ConsultState.requested, actor=actor, reason=text, at=now
        )
    else:
        consults.record_fact(session, locked, actor, text, now)
    for specialist_id in withdrawn:
        audit.record(
            session,
            actor,
            AuditAction.update,
            "offer",
            f"consult {pk(locked)}",
            case_id=locked.case_id,
            consult_id=pk(locked),
            detail=f"withdrawn (consent withdrawn): specialist {specialist_id}",
        )
    session.flush()
    return withdrawn


def directory_names(session: Session, user_ids: list[int]) -> list[str]:
    names = []
    for user_id in user_ids:
        user = session.get(User, user_id)
        names.append(user.full_name if user else f"user {user_id}")
    return names


def plan_batch(
    session: Session, consult_ids: list[int], now: datetime, policy: OfferPolicy
) -> dict[int, matching.Candidate | None]:
    """The periodic batch: every waiting non-emergency consult matched at once with the
    min-cost assignment (emergencies are broadcast, never batched). A consult that fails
    to build (stored data no longer valid) is left out and matched on its own. Only reads."""
    batched = [
        consult
        for consult in (session.get(Consult, consult_id) for consult_id in consult_ids)
        if consult is not None and consult.urgency != Urgency.emergency
    ]
    if len(batched) < 2:
        return {}  # nothing to share: one request alone is matched the same either way
    instances = [matching.build(session, consult, now, policy) for consult in batched]
    return matching.plan(instances, policy.fairness)


def process_due_offers(units: Units, now: datetime, policy: OfferPolicy) -> DueReport:
    """Expire offers past their time and move each consult on (next candidate or
    escalation); then give every ``requested`` consult an offer if it has none, the
    non-emergency ones planned together by :func:`plan_batch`. Each consult is a unit of
    work of its own (``units.item``): one failing consult is rolled back and logged, and the
    others go on. Idempotent: running it twice at the same ``now`` changes nothing the
    second time."""
    report = DueReport()
    with units.one() as session:
        due = repository.consults_with_due_offers(session, now)
    for consult_id in due:
        expired = units.attempt(
            f"expiring the offers of consult {consult_id} failed", log, _expire, consult_id, now
        )
        if expired is None:
            report.failed.append(consult_id)
        else:
            report.expired.extend(expired)
    with units.one() as session:
        requested = repository.requested_consults(session)
        consented = consent.given_among(session, requested, ConsentScope.sharing)
    # Without a sharing consent a consult is not matched at all, so that it holds no
    # specialist's slot in the batch plan.
    waiting = [consult_id for consult_id in requested if consult_id in consented]
    report.waiting_for_consent = [c for c in requested if c not in consented]
    planned = units.attempt(
        "batch matching failed; offering one consult at a time",
        log,
        plan_batch,
        waiting,
        now,
        policy,
    )
    for consult_id in waiting:
        outcome = units.attempt(
            f"offering consult {consult_id} failed",
            log,
            _offer_waiting,
            consult_id,
            now,
            policy,
            planned or {},
        )
        if outcome is None:
            report.failed.append(consult_id)
        elif outcome is ConsultState.offered:
            report.offered.append(consult_id)
        elif outcome is ConsultState.escalated:
            report.escalated.append(consult_id)
    return report


def _offer_waiting(
    session: Session,
    consult_id: int,
    now: datetime,
    policy: OfferPolicy,
    planned: dict[int, matching.Candidate | None],
) -> ConsultState | str:
    """One waiting consult of the periodic run: ``offered``, ``escalated``, or "" (it
    still waits, or it was not waiting any more)."""
    consult = session.get(Consult, consult_id)
    if consult is None:
        return ""
    if offer_requested(session, consult, now, policy, planned):
        return ConsultState.offered
    return ConsultState.escalated if consult.state == ConsultState.escalated else ""


def assign_by_hand(
    session: Session,
    coordinator: User,
    consult_id: int,
    specialist_id: int,
    reason: str,
    now: datetime,
    *,
    starts_at: datetime | None = None,
    policy: OfferPolicy,
    settings: Settings,
) -> ConsultOffer:
    """A coordinator assigns a waiting (usually escalated) consult to a verified specialist.
    A live consult is booked in the same transaction, at ``starts_at`` (one slot long) when
    given, else at the specialist's next free slot; without one it stays ``accepted`` and a
    time is booked from the consult page."""
    auth.ensure_can_assign(coordinator)
    specialist = session.get(User, specialist_id)
    profile = directory.get_profile(session, specialist_id)
    if specialist is None or specialist.role != Role.specialist or profile is None:
        raise ValidationFailed(
            N_("no specialist %(specialist_id)s"),
            specialist_id=specialist_id,
            field="specialist_id",
        )
    if not specialist.is_active:
        raise ValidationFailed(
            N_("%(specialist)s's account is deactivated"),
            specialist=specialist.full_name,
            field="specialist_id",
        )
    if not is_eligible(profile, now.date()):
        raise ValidationFailed(
            N_("%(specialist)s's registration is not verified or has expired"),
            specialist=specialist.full_name,
            field="specialist_id",
        )
    try:
        with session.begin_nested():  # refused: nothing changed
            consult = consults_repository.lock_consult(session, consult_id)
            if consult is None:
                raise NotFound(N_("consult %(consult_id)s not found"), consult_id=consult_id)
            directory.lock_profile(session, specialist_id)  # before any write, as in _accept
            consent.ensure_sharing(session, consult)
            who = {"coordinator": coordinator.full_name, "specialist": specialist.full_name}
            text = (
                reasons.english(reasons.ASSIGNED_WHY, **who, reason=reason.strip())
                if reason.strip()
                else reasons.english(reasons.ASSIGNED, **who)
            )
            consults.transition(
                session, consult, ConsultState.accepted, actor=coordinator, reason=text, at=now
            )
            withdrawn = repository.withdraw_open(
                session, consult_id, now, reasons.english(reasons.ASSIGNED_BY_COORDINATOR)
            )
            if withdrawn:
                consults.record_fact(
                    session,
                    consult,
                    coordinator,
                    reasons.english(reasons.OPEN_WITHDRAWN, count=len(withdrawn)),
                    now,
                )
            _uninvolve(session, consult, withdrawn)
            offer = ConsultOffer(
                consult_id=consult_id,
                specialist_id=specialist_id,
                round=repository.last_round(session, consult_id),
                status=OfferStatus.accepted,
                offered_at=now,
                expires_at=now,
                responded_at=now,
                reason=reason.strip(),
                assigned_by_id=coordinator.id,
                accepted_consult_id=consult_id,
            )
            session.add(offer)
            session.flush()
            _involve(session, consult, specialist, ParticipantRelation.assigned)
            _audit(session, coordinator, offer, consult, "assigned by hand")
            slot = None
            if starts_at is not None:
                start = free_time.check_new_start(starts_at, now)
                slot = (start, start + policy.slot_length)
            booked = appointments.book_after_acceptance(
                session,
                consult,
                specialist,
                actor=coordinator,
                now=now,
                slot=slot,
                slot_length=policy.slot_length,
                settings=settings,
            )
            if booked is not None:
                offer.slot_start, offer.slot_end = booked.starts_at, booked.ends_at
                session.add(offer)
            notices.clinician_step(
                session, consult, notices.Step.assigned, now, name=specialist.full_name
            )
    except IntegrityError as exc:
        raise Conflict(N_("this consult already has an accepted specialist")) from exc
    return offer
