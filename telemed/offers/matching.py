"""From the database to the scheduling library's plain data, and back: who may get an offer.

Eligibility is the library's (:func:`scheduling.eligible`): verified and unexpired, the
specialty and language, a slot before the deadline, not offered this consult before; on
top, the directory's "away" switch and weekly caps are applied while building the data:
a slot is offered only if one more consult there keeps *its* week (the specialist's ISO
week of the slot) within both caps, counting open offers as tentative load
(``appointments.caps``). The offers service checks the choice again under the
specialist's row lock before it makes the offer.

Fairness is the library's stated rule (``scheduling.fairness``, ``OfferPolicy.fairness``):
each specialist's load this week and emergencies this week, counted as the caps count
them (in the week of their earliest slot left, open offers included), go into the plain
data; the batch and the single choice are then balanced by :func:`scheduling.balance`, and
an emergency broadcast skips whoever already had the week's limit of emergencies unless
nobody else can take it (:func:`scheduling.within_emergency_limit`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlmodel import Session

from scheduling import (
    FairnessRule,
    Matching,
    MatchingProblem,
    Request,
    SchedulingError,
    Slot,
    Specialist,
    TimeSlot,
    Urgency,
    balance,
    eligible,
    greedy,
    iso_week,
    optimise,
    within_emergency_limit,
)
from telemed.accounts.models import User
from telemed.appointments import caps
from telemed.consults.models import Consult
from telemed.db import pk
from telemed.directory import repository as directory
from telemed.directory.availability import library_value, slots
from telemed.directory.service import is_eligible
from telemed.offers import repository
from telemed.offers.policy import OfferPolicy

NO_CAP = 10_000


@dataclass(frozen=True)
class Candidate:
    user: User
    slot_start: datetime
    slot_end: datetime


@dataclass(frozen=True)
class Instance:
    request: Request
    slots: list[Slot]
    specialists: list[Specialist]
    users: dict[str, User]


def build(session: Session, consult: Consult, now: datetime, policy: OfferPolicy) -> Instance:
    """The consult as one request and every possibly eligible specialist's free slots."""
    deadline = policy.deadline(consult)
    request = Request(
        id=str(consult.id),
        specialty=consult.specialty,
        language=str(consult.language),
        urgency=Urgency(str(consult.urgency)),
        created_at=consult.requested_at or consult.created_at,
        deadline=deadline,
        excluded=frozenset(str(i) for i in repository.previously_offered(session, pk(consult))),
    )
    found = [
        (profile, user)
        for profile, user in directory.eligible_profiles(session, now.date(), consult.specialty)
        if not profile.away
    ]
    ids = [profile.user_id for profile, _ in found]
    specialties = directory.specialties_of(session, ids)
    windows = directory.windows_of(session, ids)
    exceptions = directory.exceptions_of(session, ids)
    held = caps.held_by(session, ids, now, tentative=True, exclude_consult_id=pk(consult))
    booked = repository.booked_slot_starts(session, ids, now)
    booked_times = repository.booked_times(session, ids, now - timedelta(days=8))
    plain_slots: list[Slot] = []
    specialists: list[Specialist] = []
    users: dict[str, User] = {}
    for profile, user in found:
        key = str(profile.user_id)
        limits = caps.Caps.of(profile, user.timezone, held.get(profile.user_id, []))
        users[key] = user
        try:
            availability = library_value(
                user.timezone,
                profile,
                windows.get(profile.user_id, []),
                exceptions.get(profile.user_id, []),
            )
            free = slots(availability, now, deadline - now, policy.slot_length)
        except SchedulingError:  # stored data no longer valid (e.g. zone removed): skip
            free = []
        taken = [TimeSlot(a, b) for a, b in booked_times.get(profile.user_id, [])]
        # An appointment moved off the slot grid still blocks every slot it overlaps.
        free = [s for s in free if not any(s.start < t.end and t.start < s.end for t in taken)]
        free = [s for s in free if (profile.user_id, s.start) not in booked]
        free = [s for s in free if limits.fits(s.start, s.end)]
        week = iso_week(free[0].start if free else now, user.timezone)
        specialists.append(
            Specialist(
                id=key,
                specialties=frozenset(specialties.get(profile.user_id, [])),
                languages=frozenset(profile.language_codes),
                cap=NO_CAP if profile.weekly_cap is None else profile.weekly_cap,
                load=_load(limits, free, week),
                verified=is_eligible(profile, now.date()),
                emergencies=limits.emergencies(week),
            )
        )
        plain_slots += [
            Slot(id=f"{key}@{s.start.isoformat()}", specialist_id=key, start=s.start, end=s.end)
            for s in free
        ]
    return Instance(request, plain_slots, specialists, users)


def _load(limits: caps.Caps, free: list[TimeSlot], week: tuple[int, int]) -> int:
    """The load the library sees (and the fairness rule compares): consults held in
    ``week``, the week of the earliest slot left (the weeks' caps are applied to the slots
    already, so it has room there); with no slot left, the cap itself (nothing remains)."""
    if not free:
        return NO_CAP if limits.max_consults is None else limits.max_consults
    consults, _ = limits.usage(week)
    return consults if limits.max_consults is None else min(consults, limits.max_consults - 1)


def best(instance: Instance, rule: FairnessRule) -> list[Candidate]:
    """The greedy choice for the request, balanced by the fairness rule: at most one
    candidate."""
    problem = MatchingProblem([instance.request], instance.slots, instance.specialists)
    matching = balance(problem, greedy(problem), rule)
    by_slot = {s.id: s for s in instance.slots}
    return [
        Candidate(instance.users[a.specialist_id], by_slot[a.slot_id].start, by_slot[a.slot_id].end)
        for a in matching.assignments
    ]


def everyone(instance: Instance, rule: FairnessRule) -> list[Candidate]:
    """Every eligible specialist under cap, each with their earliest eligible slot; of
    them, only those under the rule's weekly limit on emergencies, unless none is."""
    by_id = {s.id: s for s in instance.specialists}
    chosen: dict[str, Slot] = {}
    for slot in sorted(instance.slots, key=lambda s: s.start):
        specialist = by_id[slot.specialist_id]
        if (
            slot.specialist_id not in chosen
            and specialist.remaining > 0
            and eligible(instance.request, slot, specialist)
        ):
            chosen[slot.specialist_id] = slot
    kept = within_emergency_limit([by_id[k] for k in sorted(chosen)], rule)
    return [Candidate(instance.users[p.id], chosen[p.id].start, chosen[p.id].end) for p in kept]


def plan(instances: list[Instance], rule: FairnessRule) -> dict[int, Candidate | None]:
    """One batch over every waiting consult: OR-Tools min-cost assignment of the requests to
    the union of their candidates' slots, so that two requests never get the same slot and
    the urgent and long-waiting go first (never costlier than greedy, see ``scheduling``),
    then balanced by the fairness rule (a bounded wait for load spread over the
    volunteers). Maps each consult id to its planned candidate, or None when the batch left
    it waiting.
    """
    slots: dict[str, Slot] = {}
    specialists: dict[str, Specialist] = {}
    users: dict[str, User] = {}
    for instance in instances:
        slots.update((s.id, s) for s in instance.slots)
        specialists.update((s.id, s) for s in instance.specialists)
        users.update(instance.users)
    requests = [instance.request for instance in instances]
    problem = MatchingProblem(requests, list(slots.values()), list(specialists.values()))
    matching: Matching = balance(problem, optimise(problem), rule)
    planned: dict[int, Candidate | None] = {int(r.id): None for r in requests}
    for a in matching.assignments:
        slot = slots[a.slot_id]
        planned[int(a.request_id)] = Candidate(users[a.specialist_id], slot.start, slot.end)
    return planned


def on_call_within_limit(
    session: Session, consult: Consult, users: list[User], now: datetime, rule: FairnessRule
) -> list[User]:
    """The specialists on call who are under the rule's weekly limit on emergencies (this
    week in their zone, counted as the caps count). One who reached it is not woken; when
    all have, the emergency goes to the broadcast, where the limit holds unless nobody
    else can take it."""
    if rule.max_emergencies is None or not users:
        return users
    held = caps.held_by(
        session, [pk(u) for u in users], now, tentative=True, exclude_consult_id=pk(consult)
    )
    return [
        user
        for user in users
        if caps.Caps(user.timezone, None, None, tuple(held.get(pk(user), []))).emergencies(
            iso_week(now, user.timezone)
        )
        < rule.max_emergencies
    ]
