"""Property tests: hard constraints always hold and optimised <= greedy, exact <= optimised.

The judge is an oracle written here from the documented rules (``eligible``'s docstring in
scheduling/problem.py, ``CostModel`` and ``batch_horizon`` in scheduling/model.py), in plain
loops over the input data, and not the product's own ``eligible`` and ``total_cost``: a
mistake in those would otherwise be shared by the solvers and by their judge. The product's
functions are in turn checked against the oracle.
"""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from scheduling import (
    CostModel,
    Matching,
    MatchingProblem,
    Pruning,
    Request,
    Slot,
    Specialist,
    Urgency,
    check_assignments,
    eligible,
    exact,
    greedy,
    optimise,
    total_cost,
)
from scheduling.model import Assignment

BASE = datetime(2026, 3, 28, 22, 0, tzinfo=UTC)
COST_MODELS = [
    CostModel(),
    CostModel(age_neutral=False),
    CostModel(load_step=0),
    CostModel(load_step=500),
    # Cheap enough that leaving a request can beat a long wait: exercises that choice.
    CostModel(
        unassigned={Urgency.EMERGENCY: 5000, Urgency.URGENT: 500, Urgency.ROUTINE: 50},
        age_neutral=False,
    ),
]
VARIANTS = {
    "default": Pruning(),
    "step-1": Pruning(chain_step=1),
    "step-2": Pruning(chain_step=2),
    "tiny-k": Pruning(k=1, around=0, tail=0, chains=False),
    "no-chains": Pruning(k=2, around=1, tail=1, chains=False),
}


@dataclass(frozen=True)
class Instance:
    requests: list[Request]
    slots: list[Slot]
    specialists: list[Specialist]
    costs: CostModel

    def cost(self, matching: Matching) -> int:
        return oracle_cost(self, matching.assignments)


# --- the oracle ----------------------------------------------------------------------------


def oracle_eligible(request: Request, slot: Slot, specialist: Specialist) -> bool:
    """The slot is the specialist's, who is verified, has the specialty and the language, is
    not excluded by the request, and the slot starts before the request's deadline."""
    if slot.specialist_id != specialist.id or not specialist.verified:
        return False
    if request.specialty not in specialist.specialties:
        return False
    if request.language not in specialist.languages:
        return False
    if specialist.id in request.excluded:
        return False
    return slot.start < request.deadline


def whole_minutes(start: datetime, end: datetime) -> int:
    """Whole minutes from ``start`` to ``end`` (rounded down), never negative."""
    delta = end - start
    microseconds = (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds
    return max(0, microseconds // 60_000_000)


def oracle_cost(instance: Instance, assignments: Iterable[Assignment]) -> int:
    """Waiting + load + unassigned, as CostModel's docstring prices them:

    * waiting: weight of the urgency x whole minutes from creation to the slot's start;
    * a specialist's n-th consult of the period (their ``load`` counts) costs
      ``load_step x (n - 1)``;
    * a request left unassigned: its unassigned price, plus (``age_neutral``) its weight x
      whole minutes from creation to the horizon, the latest deadline of the batch floored
      to the minute.
    """
    costs = instance.costs
    slots = {s.id: s for s in instance.slots}
    requests = {r.id: r for r in instance.requests}
    total = 0
    served: set[str] = set()
    per_specialist: dict[str, int] = {}
    for a in assignments:
        request, slot = requests[a.request_id], slots[a.slot_id]
        total += costs.weights[request.urgency] * whole_minutes(request.created_at, slot.start)
        served.add(request.id)
        per_specialist[a.specialist_id] = per_specialist.get(a.specialist_id, 0) + 1
    for specialist in instance.specialists:
        for extra in range(per_specialist.get(specialist.id, 0)):
            ordinal = specialist.load + extra + 1
            total += costs.load_step * (ordinal - 1)
    if instance.requests:
        latest = max(r.deadline for r in instance.requests)
        assert latest.utcoffset() == timedelta(0)  # UTC: flooring the clock floors the instant
        horizon = latest.replace(second=0, microsecond=0)
        for request in instance.requests:
            if request.id in served:
                continue
            total += costs.unassigned[request.urgency]
            if costs.age_neutral:
                minutes = whole_minutes(request.created_at, horizon)
                total += costs.weights[request.urgency] * minutes
    return total


def assert_valid(instance: Instance, matching: Matching) -> None:
    """Every request once (assigned or waiting); each pair eligible; no slot above its
    capacity; no specialist above ``cap - load``."""
    mentioned = [a.request_id for a in matching.assignments] + list(matching.unassigned)
    assert sorted(mentioned) == sorted(r.id for r in instance.requests)
    requests = {r.id: r for r in instance.requests}
    slots = {s.id: s for s in instance.slots}
    specialists = {p.id: p for p in instance.specialists}
    per_slot: Counter[str] = Counter()
    per_specialist: Counter[str] = Counter()
    for a in matching.assignments:
        slot = slots[a.slot_id]
        assert slot.specialist_id == a.specialist_id, a
        assert oracle_eligible(requests[a.request_id], slot, specialists[a.specialist_id]), a
        per_slot[slot.id] += 1
        per_specialist[a.specialist_id] += 1
    for slot in instance.slots:
        assert per_slot[slot.id] <= slot.capacity, slot
    for specialist in instance.specialists:
        assert per_specialist[specialist.id] <= max(0, specialist.cap - specialist.load)
    # The product's own check agrees that the matching is valid.
    check_assignments(matching.assignments, instance.requests, instance.slots, instance.specialists)


@st.composite
def instances(
    draw: st.DrawFn, max_requests: int = 10, max_slots: int = 10, max_specialists: int = 4
) -> Instance:
    topics = st.sets(st.sampled_from(["a", "b", "c"]), min_size=1, max_size=2)
    languages = st.sets(st.sampled_from(["en", "st"]), min_size=1)
    specialists = [
        Specialist(
            id=f"p{i}",
            specialties=frozenset(draw(topics)),
            languages=frozenset(draw(languages)),
            cap=draw(st.integers(0, 3)),
            load=draw(st.integers(0, 2)),
            verified=draw(st.sampled_from([True, True, True, False])),
        )
        for i in range(draw(st.integers(1, max_specialists)))
    ]
    ids = [p.id for p in specialists]
    # Mostly whole-minute slot starts (what availability produces), sometimes not.
    seconds = st.integers(0, 59) if draw(st.booleans()) else st.just(0)
    slots = []
    for i in range(draw(st.integers(0, max_slots))):
        start = BASE + timedelta(minutes=draw(st.integers(0, 6000)), seconds=draw(seconds))
        slots.append(
            Slot(
                f"s{i}",
                draw(st.sampled_from(ids)),
                start,
                start + timedelta(minutes=30),
                draw(st.sampled_from([1, 1, 1, 2])),
            )
        )
    requests = []
    for i in range(draw(st.integers(0, max_requests))):
        created = BASE + timedelta(minutes=draw(st.integers(-6000, 600)), seconds=draw(seconds))
        requests.append(
            Request(
                id=f"r{i}",
                specialty=draw(st.sampled_from(["a", "b", "c"])),
                language=draw(st.sampled_from(["en", "en", "st"])),
                urgency=draw(st.sampled_from(list(Urgency))),
                created_at=created,
                deadline=created + timedelta(minutes=draw(st.integers(0, 9000))),
                excluded=frozenset(
                    draw(st.sets(st.sampled_from(ids), max_size=2))
                    if draw(st.integers(0, 4)) == 0
                    else ()
                ),
            )
        )
    return Instance(requests, slots, specialists, draw(st.sampled_from(COST_MODELS)))


@settings(max_examples=300, deadline=None)
@given(instances())
def test_constraints_hold_and_optimised_never_loses_to_greedy(instance: Instance) -> None:
    costs = instance.costs
    problem = MatchingProblem(instance.requests, instance.slots, instance.specialists, costs)
    baseline = greedy(problem)
    assert_valid(instance, baseline)
    best = exact(problem)
    assert_valid(instance, best)
    floor, ceiling = instance.cost(best), instance.cost(baseline)
    for found in (baseline, best):  # the product prices as the oracle does
        assert total_cost(
            found.assignments, instance.requests, instance.slots, instance.specialists, costs
        ) == instance.cost(found)
    assert floor <= ceiling
    has_exclusions = any(r.excluded for r in instance.requests)
    for name, pruning in VARIANTS.items():
        found = optimise(problem, pruning)
        assert_valid(instance, found)
        cost = instance.cost(found)
        assert floor <= cost <= ceiling, name
        if pruning.chains and not has_exclusions:
            # Chains represent every eligible arc, so only exclusions can cost optimality.
            assert cost == floor, name


@settings(max_examples=200, deadline=None)
@given(instances())
def test_the_product_decides_eligibility_as_the_rules_say(instance: Instance) -> None:
    owner = {p.id: p for p in instance.specialists}
    for request in instance.requests:
        for slot in instance.slots:
            specialist = owner[slot.specialist_id]
            expected = oracle_eligible(request, slot, specialist)
            assert eligible(request, slot, specialist) == expected, (request, slot)


def brute_force(instance: Instance) -> int:
    """Cheapest oracle cost over every feasible assignment (tiny instances only)."""
    owner = {p.id: p for p in instance.specialists}
    options = [
        [None, *(s for s in instance.slots if oracle_eligible(r, s, owner[s.specialist_id]))]
        for r in instance.requests
    ]
    best = None
    for choice in itertools.product(*options):
        taken = [(r, s) for r, s in zip(instance.requests, choice, strict=True) if s is not None]
        per_slot = Counter(s.id for _, s in taken)
        per_owner = Counter(s.specialist_id for _, s in taken)
        if any(per_slot[s.id] > s.capacity for s in instance.slots):
            continue
        if any(per_owner[p.id] > max(0, p.cap - p.load) for p in instance.specialists):
            continue
        assignments = [Assignment(r.id, s.id, s.specialist_id) for r, s in taken]
        cost = oracle_cost(instance, assignments)
        best = cost if best is None else min(best, cost)
    assert best is not None
    return best


@settings(max_examples=150, deadline=None)
@given(instances(max_requests=4, max_slots=4, max_specialists=3))
def test_exact_solver_matches_brute_force(instance: Instance) -> None:
    problem = MatchingProblem(
        instance.requests, instance.slots, instance.specialists, instance.costs
    )
    assert instance.cost(exact(problem)) == brute_force(instance)


# --- exact enough: pruning never leaves waiting a request the exact solver serves ----------

# The default graph, and pruning as tight as it goes (one cheapest slot per request that
# excludes someone), so the repair check alone has to notice what pruning cost; with the
# chains and without them (``--no-chains``).
TIGHT = {
    "default": Pruning(),
    "tight": Pruning(k=1, around=0, tail=0),
    "no-chains": Pruning(chains=False),
    "no-chains-tight": Pruning(k=1, around=0, tail=0, chains=False),
}


@st.composite
def app_shaped(draw: st.DrawFn) -> tuple[Instance, datetime]:
    """An instance where most requests exclude specialists (already offered them), and a
    batch clock ``now`` somewhere among the slots."""
    instance = draw(instances(max_requests=8, max_slots=12, max_specialists=4))
    ids = [p.id for p in instance.specialists]
    requests = [
        Request(
            r.id,
            r.specialty,
            r.language,
            r.urgency,
            r.created_at,
            r.deadline,
            frozenset(
                i
                for i, out in zip(
                    ids,
                    draw(st.lists(st.booleans(), min_size=len(ids), max_size=len(ids))),
                    strict=True,
                )
                if out
            ),
        )
        for r in instance.requests
    ]
    now = BASE + timedelta(minutes=draw(st.integers(-60, 3000)))
    return Instance(requests, instance.slots, instance.specialists, instance.costs), now


def served_by_urgency(matching: Matching, instance: Instance) -> Counter[Urgency]:
    urgency = {r.id: r.urgency for r in instance.requests}
    return Counter(urgency[a.request_id] for a in matching.assignments)


@settings(max_examples=200, deadline=None)
@given(st.one_of(app_shaped(), instances().map(lambda i: (i, None))))
def test_the_optimiser_serves_as_many_requests_as_the_exact_solver(
    case: tuple[Instance, datetime | None],
) -> None:
    instance, now = case
    problem = MatchingProblem(
        instance.requests, instance.slots, instance.specialists, instance.costs, now=now
    )
    best = exact(problem)
    for name, pruning in TIGHT.items():
        found = optimise(problem, pruning)
        assert_valid(instance, found)
        # Leaving a request costs more than any wait, most urgent first: the same number of
        # each urgency served, whatever the pruning.
        assert served_by_urgency(found, instance) == served_by_urgency(best, instance), name


@settings(max_examples=200, deadline=None)
@given(app_shaped())
def test_no_solver_offers_a_slot_that_has_begun(case: tuple[Instance, datetime]) -> None:
    instance, now = case
    problem = MatchingProblem(
        instance.requests, instance.slots, instance.specialists, instance.costs, now=now
    )
    starts = {s.id: s.start for s in instance.slots}
    for found in (greedy(problem), optimise(problem), exact(problem)):
        assert all(starts[a.slot_id] >= now for a in found.assignments)
        check_assignments(
            found.assignments,
            instance.requests,
            instance.slots,
            instance.specialists,
            now=now,
        )
