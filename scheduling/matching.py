"""Public matching API: eligibility, greedy baseline, batch optimum, exact optimum, cost.

All three assigners take the same plain data and are judged by the same
:func:`total_cost`, so "optimised versus greedy" compares like with like. The heavy lifting
lives in :mod:`scheduling.problem` (indexing), :mod:`scheduling.greedy`,
:mod:`scheduling.candidates` (pruned arcs), :mod:`scheduling.chains` (shared arcs) and
:mod:`scheduling.flow` (the min-cost flow); this module is the surface the application
imports.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

import numpy as np

from scheduling.candidates import Pruning
from scheduling.errors import InvalidAssignmentError
from scheduling.fairness import FairnessRule, balance_pairs, gini, within_emergency_limit
from scheduling.flow import exact_pairs, optimise_pairs
from scheduling.greedy import greedy_choice
from scheduling.model import (
    Assignment,
    CostModel,
    Request,
    Slot,
    Specialist,
    Urgency,
    batch_horizon,
)
from scheduling.problem import MatchingProblem, eligible

__all__ = [
    "Assignment",
    "CostBreakdown",
    "CostModel",
    "FairnessRule",
    "Matching",
    "MatchingProblem",
    "Pruning",
    "Request",
    "Slot",
    "Specialist",
    "Urgency",
    "balance",
    "check_assignments",
    "cost_breakdown",
    "eligible",
    "exact",
    "exact_assign",
    "greedy",
    "greedy_assign",
    "load_gini",
    "optimise",
    "optimise_assign",
    "total_cost",
    "within_emergency_limit",
]


@dataclass(frozen=True, slots=True)
class Matching:
    """The outcome of one batch: who gets which slot, and which requests wait for the next."""

    assignments: tuple[Assignment, ...]
    unassigned: tuple[str, ...]

    @property
    def matched(self) -> int:
        """Number of requests that received a slot."""
        return len(self.assignments)


def _matching(problem: MatchingProblem, chosen: Iterable[tuple[int, int]]) -> Matching:
    assignments = tuple(problem.to_assignments(chosen))
    taken = {a.request_id for a in assignments}
    waiting = tuple(sorted(r.id for r in problem.requests if r.id not in taken))
    return Matching(assignments, waiting)


def greedy(problem: MatchingProblem) -> Matching:
    """The greedy baseline on a prepared problem (see :func:`greedy_choice`)."""
    choice, _ = greedy_choice(problem)
    assigned = np.flatnonzero(choice >= 0)
    return _matching(problem, zip(assigned.tolist(), choice[assigned].tolist(), strict=True))


def optimise(problem: MatchingProblem, pruning: Pruning | None = None) -> Matching:
    """Batch min-cost assignment; never costlier than :func:`greedy` on the same problem.

    Runs the greedy pass first because its choices seed the pruned arcs. With the default
    :class:`Pruning`, requests that can share arcs get every eligible slot through the
    chains (exact for them); the rest, e.g. requests excluding a specialist, get their ``k``
    cheapest slots, their greedy slot and its neighbours.
    """
    choice, position = greedy_choice(problem)
    return _matching(problem, optimise_pairs(problem, pruning or Pruning(), choice, position))


def exact(problem: MatchingProblem) -> Matching:
    """Min-cost assignment over every eligible (request, slot) pair: the true optimum.

    Its graph grows with requests x slots, so it is meant for small batches and for
    measuring the optimality gap of :func:`optimise`.
    """
    return _matching(problem, exact_pairs(problem))


def balance(
    problem: MatchingProblem, matching: Matching, rule: FairnessRule | None = None
) -> Matching:
    """The fairness rule of :mod:`scheduling.fairness` applied to a matching of ``problem``.

    Same requests served, same hard constraints; only who serves them (and a bounded wait)
    changes. Returns a new :class:`Matching`.
    """
    pairs = [
        (problem.request_index[a.request_id], problem.slot_index[a.slot_id])
        for a in matching.assignments
    ]
    return _matching(problem, balance_pairs(problem, pairs, rule or FairnessRule()))


def load_gini(problem: MatchingProblem, matching: Matching) -> float:
    """Gini coefficient of this week's load (``load`` plus this batch) over the eligible
    specialists: verified, under cap and holding at least one slot."""
    load = problem.load.copy()
    for a in matching.assignments:
        load[problem.specialist_index[a.specialist_id]] += 1
    has_slot = np.zeros(len(problem.specialists), dtype=bool)
    has_slot[problem.slot_specialist] = True
    eligible_ones = [
        int(load[i])
        for i, p in enumerate(problem.specialists)
        if p.verified and p.remaining > 0 and has_slot[i]
    ]
    return gini(eligible_ones)


def greedy_assign(
    requests: Sequence[Request],
    slots: Sequence[Slot],
    specialists: Sequence[Specialist],
    costs: CostModel | None = None,
    *,
    now: datetime | None = None,
) -> Matching:
    """Greedy baseline from plain data."""
    return greedy(MatchingProblem(requests, slots, specialists, costs, now=now))


def optimise_assign(
    requests: Sequence[Request],
    slots: Sequence[Slot],
    specialists: Sequence[Specialist],
    costs: CostModel | None = None,
    *,
    pruning: Pruning | None = None,
    now: datetime | None = None,
) -> Matching:
    """Pruned min-cost assignment from plain data."""
    return optimise(MatchingProblem(requests, slots, specialists, costs, now=now), pruning)


def exact_assign(
    requests: Sequence[Request],
    slots: Sequence[Slot],
    specialists: Sequence[Specialist],
    costs: CostModel | None = None,
    *,
    now: datetime | None = None,
) -> Matching:
    """Exact min-cost assignment from plain data (small instances)."""
    return exact(MatchingProblem(requests, slots, specialists, costs, now=now))


@dataclass(frozen=True, slots=True)
class CostBreakdown:
    """The three parts of the objective; ``total`` is what every assigner minimises."""

    wait: int
    load: int
    unassigned: int

    @property
    def total(self) -> int:
        """Sum of waiting, load and unassigned costs."""
        return self.wait + self.load + self.unassigned


def _lookup(
    assignments: Iterable[Assignment],
    requests: Sequence[Request],
    slots: Sequence[Slot],
    specialists: Sequence[Specialist],
) -> list[tuple[Request, Slot, Specialist]]:
    by_request = {r.id: r for r in requests}
    by_slot = {s.id: s for s in slots}
    by_specialist = {p.id: p for p in specialists}
    rows = []
    seen: set[str] = set()
    for a in assignments:
        if a.request_id in seen:
            raise InvalidAssignmentError(f"request {a.request_id!r} is assigned more than once")
        seen.add(a.request_id)
        try:
            request, slot = by_request[a.request_id], by_slot[a.slot_id]
            specialist = by_specialist[a.specialist_id]
        except KeyError as exc:
            raise InvalidAssignmentError(f"{a} refers to unknown id {exc.args[0]!r}") from exc
        if slot.specialist_id != specialist.id:
            raise InvalidAssignmentError(f"{a}: slot belongs to {slot.specialist_id!r}")
        rows.append((request, slot, specialist))
    return rows


def cost_breakdown(
    assignments: Iterable[Assignment],
    requests: Sequence[Request],
    slots: Sequence[Slot],
    specialists: Sequence[Specialist],
    costs: CostModel | None = None,
) -> CostBreakdown:
    """Wait, convex load and unassigned costs of a set of assignments."""
    model = costs if costs is not None else CostModel()
    rows = _lookup(assignments, requests, slots, specialists)
    wait = sum(model.wait_cost(request, slot) for request, slot, _ in rows)
    per_specialist = Counter(specialist for _, _, specialist in rows)
    load = sum(
        model.marginal_load(specialist.load + n)
        for specialist, count in per_specialist.items()
        for n in range(1, count + 1)
    )
    taken = {request.id for request, _, _ in rows}
    horizon = batch_horizon(requests)
    unassigned = sum(model.unassigned_cost(r, horizon) for r in requests if r.id not in taken)
    return CostBreakdown(wait=wait, load=load, unassigned=unassigned)


def total_cost(
    assignments: Iterable[Assignment],
    requests: Sequence[Request],
    slots: Sequence[Slot],
    specialists: Sequence[Specialist],
    costs: CostModel | None = None,
) -> int:
    """The single objective used to compare greedy, pruned and exact assignments."""
    return cost_breakdown(assignments, requests, slots, specialists, costs).total


def check_assignments(
    assignments: Iterable[Assignment],
    requests: Sequence[Request],
    slots: Sequence[Slot],
    specialists: Sequence[Specialist],
    *,
    now: datetime | None = None,
) -> None:
    """Raise :class:`InvalidAssignmentError` unless every hard constraint holds.

    Each request at most once, every pair eligible (at ``now``: no slot that has begun), no
    slot above its capacity, no specialist above ``cap - load``. The application can call it
    before publishing offers; the property tests call it on every generated instance.
    """
    rows = _lookup(assignments, requests, slots, specialists)
    for request, slot, specialist in rows:
        if not eligible(request, slot, specialist, now):
            raise InvalidAssignmentError(
                f"request {request.id!r} is not eligible for slot {slot.id!r}"
            )
    for slot, used in Counter(slot for _, slot, _ in rows).items():
        if used > slot.capacity:
            raise InvalidAssignmentError(f"slot {slot.id!r} holds {used} > {slot.capacity}")
    for specialist, used in Counter(p for _, _, p in rows).items():
        if used > specialist.remaining:
            raise InvalidAssignmentError(
                f"specialist {specialist.id!r} gets {used} > remaining cap {specialist.remaining}"
            )
