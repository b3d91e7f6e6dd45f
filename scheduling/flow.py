"""Batch assignment as a min-cost flow, on a pruned or on the full candidate graph.

Network (every arc integer-priced)::

    request --(1, weight x wait)--> slot --(capacity, 0)--> specialist ==> sink
       \\------------------(1, unassigned price)-------------------------/

Each request node supplies one unit; the sink absorbs them all. A specialist reaches the sink
through ``cap - load`` parallel unit arcs priced ``load_step x (n - 1)`` for their ``n``-th
consult: costs increase, so a min-cost flow fills them in order and the total is exactly the
convex load cost. The unassigned arc makes every instance feasible and prices a request
left for the next batch.

Pruning keeps, per request, its ``k`` cheapest eligible slots (the first ``k`` of its group,
as cost order is start order), **always** the greedy choice, and a few slots around it. The
greedy assignment is therefore a feasible flow of the pruned graph with the same cost, so the
pruned optimum is never worse than greedy. The full graph (every eligible slot) gives the
exact optimum, used to measure what pruning loses.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from ortools.graph.python import min_cost_flow

from scheduling.errors import SolverError
from scheduling.problem import I64, MatchingProblem


@dataclass(frozen=True, slots=True)
class Pruning:
    """How many candidate slots each request keeps in the pruned graph.

    ``k``: the cheapest eligible slots (earliest starts). ``around``: group positions on each
    side of the greedy choice, where the optimum's changes are (a request moves one or two
    slots later to free one for a request greedy could not serve). ``tail``: for a request
    greedy left unassigned, the last eligible slots before its deadline, which are the ones
    most likely to be freed by such moves.
    """

    k: int = 8
    around: int = 4
    tail: int = 8


def _ragged(starts: I64, counts: I64) -> tuple[I64, I64]:
    """(row, value) for rows ``i`` holding ``starts[i] .. starts[i] + counts[i] - 1``."""
    counts = np.maximum(counts, 0)
    rows = np.repeat(np.arange(len(counts), dtype=np.int64), counts)
    offsets = np.arange(int(counts.sum()), dtype=np.int64) - np.repeat(
        np.cumsum(counts) - counts, counts
    )
    return rows, np.repeat(starts, counts) + offsets


def _cheapest_counts(
    problem: MatchingProblem, members: I64, group_slots: I64, bound: I64, k: int
) -> I64:
    """Length of the group prefix holding each request's ``k`` cheapest *eligible* slots.

    Normally ``min(k, bound)``; a request that excludes specialists needs a longer prefix,
    since the excluded specialists' slots are dropped later.
    """
    counts = np.minimum(bound, k)
    owners = problem.slot_specialist
    for row, request in enumerate(members.tolist()):
        banned = problem.excluded.get(request)
        if not banned:
            continue
        kept = position = 0
        while position < bound[row] and kept < k:
            if int(owners[group_slots[position]]) not in banned:
                kept += 1
            position += 1
        counts[row] = position
    return counts


def candidate_arcs(
    problem: MatchingProblem,
    pruning: Pruning | None,
    greedy_slot: I64 | None = None,
    greedy_position: I64 | None = None,
) -> tuple[I64, I64]:
    """Unique (request index, slot index) candidate pairs; ``pruning=None`` keeps all.

    Exclusions are applied here; deadline, specialty, language, verification and spare cap
    are already encoded by the group prefixes.
    """
    n_slots = len(problem.slots)
    pieces_r: list[I64] = []
    pieces_s: list[I64] = []
    for g, group in enumerate(problem.groups):
        members = np.flatnonzero(problem.request_group == g).astype(np.int64)
        if len(members) == 0 or len(group.slots) == 0:
            continue
        bound = np.searchsorted(group.starts, problem.deadline[members], side="left")
        bound = bound.astype(np.int64)
        spans: list[tuple[I64, I64, I64]] = []  # (request rows, first position, count)
        if pruning is None:
            spans.append((members, np.zeros_like(bound), bound))
        else:
            spans.append((members, np.zeros_like(bound), _cheapest_counts(
                problem, members, group.slots, bound, pruning.k
            )))
            if greedy_position is not None and greedy_slot is not None:
                position = greedy_position[members]
                chosen = position >= 0
                first = np.maximum(position - pruning.around, 0)
                last = np.minimum(position + pruning.around + 1, bound)
                spans.append((members[chosen], first[chosen], (last - first)[chosen]))
                lost = ~chosen
                first = np.maximum(bound - pruning.tail, 0)
                spans.append((members[lost], first[lost], (bound - first)[lost]))
        for rows, first, count in spans:
            index, position = _ragged(first, count)
            pieces_r.append(rows[index])
            pieces_s.append(group.slots[position].astype(np.int64))
    if greedy_slot is not None:
        assigned = np.flatnonzero(greedy_slot >= 0).astype(np.int64)
        pieces_r.append(assigned)
        pieces_s.append(greedy_slot[assigned])
    if not pieces_r:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty
    keys = np.unique(np.concatenate(pieces_r) * n_slots + np.concatenate(pieces_s))
    requests, slots = keys // n_slots, keys % n_slots
    if problem.excluded:
        owners = problem.slot_specialist[slots]
        keep = np.ones(len(keys), dtype=bool)
        flagged = np.flatnonzero(np.isin(requests, np.fromiter(problem.excluded, np.int64)))
        for arc in flagged.tolist():
            if int(owners[arc]) in problem.excluded[int(requests[arc])]:
                keep[arc] = False
        requests, slots = requests[keep], slots[keep]
    return requests, slots


def solve_flow(problem: MatchingProblem, requests: I64, slots: I64) -> list[tuple[int, int]]:
    """Min-cost flow over the given candidate arcs; returns chosen (request, slot) pairs."""
    n_req, n_slot, n_spec = len(problem.requests), len(problem.slots), len(problem.specialists)
    if n_req == 0:
        return []
    sink = n_req + n_slot + n_spec
    costs = problem.arc_costs(requests, slots)

    used_slots = np.unique(slots)
    owners = problem.slot_specialist[used_slots].astype(np.int64)
    reachable = np.bincount(owners, weights=problem.slot_capacity[used_slots], minlength=n_spec)
    arcs_per_spec = np.minimum(problem.remaining, reachable.astype(np.int64))
    spec_rows, ordinal = _ragged(np.ones(n_spec, dtype=np.int64), arcs_per_spec)
    load_costs = problem.costs.load_step * (problem.load[spec_rows] + ordinal - 1)

    everyone = np.arange(n_req, dtype=np.int64)
    tails = np.concatenate(
        [requests, everyone, n_req + used_slots, n_req + n_slot + spec_rows]
    )
    heads = np.concatenate(
        [
            n_req + slots,
            np.full(n_req, sink, dtype=np.int64),
            n_req + n_slot + owners,
            np.full(len(spec_rows), sink, dtype=np.int64),
        ]
    )
    capacities = np.concatenate(
        [
            np.ones(len(requests) + n_req, dtype=np.int64),
            problem.slot_capacity[used_slots],
            np.ones(len(spec_rows), dtype=np.int64),
        ]
    )
    unit_costs = np.concatenate(
        [costs, problem.unassigned_cost, np.zeros(len(used_slots), dtype=np.int64), load_costs]
    )
    flow = min_cost_flow.SimpleMinCostFlow()
    flow.add_arcs_with_capacity_and_unit_cost(
        tails.astype(np.int32), heads.astype(np.int32), capacities, unit_costs
    )
    flow.set_nodes_supplies(
        np.array([*range(n_req), sink], dtype=np.int32),
        np.concatenate([np.ones(n_req, dtype=np.int64), np.array([-n_req], dtype=np.int64)]),
    )
    status = flow.solve()
    if status != flow.OPTIMAL:
        raise SolverError(f"min-cost flow ended with status {status}")
    used = np.asarray(flow.flows(np.arange(len(requests), dtype=np.int32))) > 0
    return list(zip(requests[used].tolist(), slots[used].tolist(), strict=True))
