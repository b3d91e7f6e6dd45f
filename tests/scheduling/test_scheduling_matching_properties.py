"""Property tests: hard constraints always hold and optimised <= greedy, exact <= optimised."""

from __future__ import annotations

import itertools
from collections import Counter
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
        return total_cost(
            matching.assignments, self.requests, self.slots, self.specialists, self.costs
        )


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


def assert_valid(instance: Instance, matching: Matching) -> None:
    check_assignments(matching.assignments, instance.requests, instance.slots, instance.specialists)
    mentioned = [a.request_id for a in matching.assignments] + list(matching.unassigned)
    assert Counter(mentioned) == Counter(r.id for r in instance.requests)


@settings(max_examples=300, deadline=None)
@given(instances())
def test_constraints_hold_and_optimised_never_loses_to_greedy(instance: Instance) -> None:
    problem = MatchingProblem(
        instance.requests, instance.slots, instance.specialists, instance.costs
    )
    baseline = greedy(problem)
    assert_valid(instance, baseline)
    best = exact(problem)
    assert_valid(instance, best)
    floor, ceiling = instance.cost(best), instance.cost(baseline)
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


def brute_force(instance: Instance) -> int:
    """Cheapest total cost over every feasible assignment (tiny instances only)."""
    owner = {p.id: p for p in instance.specialists}
    options = [
        [None, *(s for s in instance.slots if eligible(r, s, owner[s.specialist_id]))]
        for r in instance.requests
    ]
    best = None
    for choice in itertools.product(*options):
        taken = [(r, s) for r, s in zip(instance.requests, choice, strict=True) if s is not None]
        per_slot = Counter(s.id for _, s in taken)
        per_owner = Counter(s.specialist_id for _, s in taken)
        if any(per_slot[s.id] > s.capacity for s in instance.slots):
            continue
        if any(per_owner[p.id] > p.remaining for p in instance.specialists):
            continue
        assignments = [Assignment(r.id, s.id, s.specialist_id) for r, s in taken]
        cost = total_cost(
            assignments, instance.requests, instance.slots, instance.specialists, instance.costs
        )
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
