"""Fairness you can see: a stated rule applied after the optimiser, and its measure.

The volunteers are the service. Left to waiting costs alone, whoever has the densest
near-term hours gets nearly every emergency (one extra consult is priced like an hour of
routine waiting, so an emergency never waits to spare them). The rule, in words a
coordinator can check:

1. **Least load within a tolerance.** A request may be moved from its slot to any free,
   eligible slot that starts no later than ``tolerance[urgency]`` after it (30 minutes for
   an emergency, 12 hours for an urgent request, 3 days for a routine one by default) when
   that slot's specialist has a smaller load this week (``Specialist.load``, plus what this
   batch gives them) by at least ``min_gain``. Among such slots the least loaded specialist
   wins, then the earlier slot.
2. **At most ``max_emergencies`` emergencies per specialist per week unless nobody else
   can.** An emergency whose specialist would go above it (``Specialist.emergencies`` this
   week plus this batch's) moves to the earliest free eligible slot of a specialist still
   under the limit, at any wait up to its deadline; if there is none it stays where it is.
   An emergency offered to several specialists at once (the application broadcasts them)
   goes only to those under the limit, or to all of them when none is
   (:func:`within_emergency_limit`).

The pass only moves requests into free slots within the hard constraints, so it never
leaves a request unassigned that the optimiser served and never breaks a cap; it trades a
bounded wait for spread load. ``bench.matching`` reports the result as ``fairness_gini``
(the Gini coefficient of load over eligible specialists; 0 is perfectly even) beside the
greedy baseline's ``greedy_fairness_gini`` on a batch where a few specialists have much
denser hours than the rest.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from types import MappingProxyType

from scheduling.errors import InvalidInstanceError
from scheduling.model import Specialist, Urgency
from scheduling.problem import MICROS_PER_MINUTE, MatchingProblem

DEFAULT_TOLERANCE: Mapping[Urgency, timedelta] = MappingProxyType(
    {
        Urgency.EMERGENCY: timedelta(minutes=30),
        Urgency.URGENT: timedelta(hours=12),
        Urgency.ROUTINE: timedelta(days=3),
    }
)


@dataclass(frozen=True, slots=True)
class FairnessRule:
    """The rule of the module docstring; ``max_emergencies=None`` switches part 2 off."""

    tolerance: Mapping[Urgency, timedelta] = field(default_factory=lambda: DEFAULT_TOLERANCE)
    max_emergencies: int | None = 3
    min_gain: int = 2

    def __post_init__(self) -> None:
        for urgency in Urgency:
            value = self.tolerance.get(urgency)
            if value is None or value < timedelta(0):
                raise InvalidInstanceError(f"fairness tolerance for {urgency} must be >= 0")
        if self.max_emergencies is not None and self.max_emergencies < 0:
            raise InvalidInstanceError(f"max_emergencies {self.max_emergencies} is negative")
        if self.min_gain < 1:
            raise InvalidInstanceError(f"min_gain {self.min_gain} must be at least 1")
        object.__setattr__(self, "tolerance", MappingProxyType(dict(self.tolerance)))


def balance_pairs(
    problem: MatchingProblem, pairs: Sequence[tuple[int, int]], rule: FairnessRule
) -> list[tuple[int, int]]:
    """Apply the rule to (request index, slot index) pairs; most urgent, oldest first."""
    slot_left = problem.slot_capacity.tolist()
    spec_left = problem.remaining.tolist()
    owner_of = problem.slot_specialist.tolist()
    load = problem.load.tolist()
    emergencies = [p.emergencies for p in problem.specialists]
    chosen = dict(pairs)
    for request, slot in chosen.items():
        p = owner_of[slot]
        slot_left[slot] -= 1
        spec_left[p] -= 1
        load[p] += 1
        if problem.requests[request].urgency is Urgency.EMERGENCY:
            emergencies[p] += 1
    group_slots = [g.slots.tolist() for g in problem.groups]
    group_starts = [g.starts.tolist() for g in problem.groups]
    request_group = problem.request_group.tolist()
    limit = rule.max_emergencies
    requests = problem.requests
    order = sorted(
        chosen, key=lambda r: (requests[r].urgency.rank, requests[r].created_at, requests[r].id)
    )
    for r in order:
        slot = chosen[r]
        p = owner_of[slot]
        urgency = requests[r].urgency
        g = request_group[r]
        members, starts = group_slots[g], group_starts[g]
        banned = problem.excluded.get(r, frozenset())
        deadline = int(problem.deadline[r])
        over = urgency is Urgency.EMERGENCY and limit is not None and emergencies[p] > limit
        if over:
            latest = deadline - 1
        else:
            tolerance = rule.tolerance[urgency] // timedelta(microseconds=1)
            latest = min(int(problem.slot_start[slot]) + tolerance, deadline - 1)
        best: tuple[int, int] | None = None
        best_key = (load[p] - rule.min_gain + 1, 0)
        for j in range(bisect_right(starts, latest)):
            s = members[j]
            q = owner_of[s]
            if q == p or slot_left[s] == 0 or spec_left[q] == 0 or q in banned:
                continue
            if limit is not None and over:
                if emergencies[q] >= limit:
                    continue
                best = (s, q)
                break  # the earliest slot of anyone under the limit
            key = (load[q], starts[j] // MICROS_PER_MINUTE)
            if key < best_key:
                best, best_key = (s, q), key
        if best is None:
            continue
        s, q = best
        slot_left[slot] += 1
        spec_left[p] += 1
        load[p] -= 1
        slot_left[s] -= 1
        spec_left[q] -= 1
        load[q] += 1
        if urgency is Urgency.EMERGENCY:
            emergencies[p] -= 1
            emergencies[q] += 1
        chosen[r] = s
    return sorted(chosen.items())


def gini(values: Sequence[int]) -> float:
    """The Gini coefficient: 0 when all values are equal, towards 1 when one holds all."""
    n = len(values)
    total = sum(values)
    if n == 0 or total == 0:
        return 0.0
    ordered = sorted(values)
    weighted = sum((2 * i - n + 1) * v for i, v in enumerate(ordered))
    return weighted / (n * total)


def within_emergency_limit(
    specialists: Sequence[Specialist], rule: FairnessRule
) -> list[Specialist]:
    """Part 2 of the rule for a broadcast: the specialists still under the weekly limit on
    emergencies (``Specialist.emergencies`` < ``max_emergencies``), or every one of them
    when none is: above the limit only when nobody else can."""
    limit = rule.max_emergencies
    if limit is None:
        return list(specialists)
    under = [p for p in specialists if p.emergencies < limit]
    return under or list(specialists)
