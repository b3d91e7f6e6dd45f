"""Batch assignment as a min-cost flow over a candidate graph that contains the greedy choice.

Network (every arc integer-priced)::

    request --(1, weight x wait)--> slot --(capacity, 0)--> specialist ==> sink
       \\------------------(1, unassigned price)-------------------------/

Each request supplies one unit and the sink absorbs them all. A specialist reaches the sink
through ``cap - load`` parallel unit arcs priced ``load_step x (n - 1)`` for their ``n``-th
consult: the prices increase, so a min-cost flow fills them in order and pays exactly the
convex load cost. The unassigned arc keeps every instance feasible.

Which request-to-slot arcs exist is the whole game:

* :func:`exact_pairs`: every eligible pair, as direct arcs. 5.6 million arcs for the
  10,000-request benchmark, so it is for small batches and for measuring gaps.
* :func:`optimise_pairs`: the shared chains of :mod:`scheduling.chains` for every request
  they can represent (all of its eligible slots, exactly), and pruned direct arcs
  (:mod:`scheduling.candidates`) for the rest, which always include the greedy slot.

Either way the greedy assignment is a feasible flow of the graph with the same cost, so the
optimum found is never worse than greedy.
"""

from __future__ import annotations

import numpy as np
from ortools.graph.python import min_cost_flow

from scheduling.candidates import Pruning, bounds, exact_arcs, members_of, pruned_arcs, ragged
from scheduling.chains import Network, add_chains, chainable, unpack
from scheduling.errors import SolverError
from scheduling.problem import BOOL, I64, MatchingProblem


def solve(
    problem: MatchingProblem,
    direct_requests: I64,
    direct_slots: I64,
    chain_mask: BOOL | None = None,
    chain_step: int = 1,
) -> list[tuple[int, int]]:
    """Min-cost flow over direct arcs plus shared chains; the chosen (request, slot) pairs.

    Requests in ``chain_mask`` go into chains; all others are individual nodes whose only
    options are their direct arcs and their unassigned arc.
    """
    n_req, n_slot, n_spec = len(problem.requests), len(problem.slots), len(problem.specialists)
    if n_req == 0:
        return []
    # Nodes: slots, specialists, the sink, then requests outside chains, then chain nodes.
    # Requests inside chains have no node of their own, so none is left isolated.
    slot_node, spec_node, sink = 0, n_slot, n_slot + n_spec
    network = Network(next_node=sink + 1)
    if chain_mask is None:
        chain_mask = np.zeros(n_req, dtype=bool)
    chains, in_chain = add_chains(problem, network, chain_mask, slot_node, sink, chain_step)
    single = np.flatnonzero(~in_chain).astype(np.int64)
    request_node = np.full(n_req, -1, dtype=np.int64)
    request_node[single] = network.nodes(len(single)) + np.arange(len(single), dtype=np.int64)
    network.supply(request_node[single], np.ones(len(single), dtype=np.int64))
    network.add(request_node[single], sink, 1, problem.unassigned_cost[single])
    direct = network.add(
        request_node[direct_requests],
        slot_node + direct_slots,
        1,
        problem.arc_costs(direct_requests, direct_slots),
    )

    reached = np.unique(np.concatenate([direct_slots, *(c.slots for c in chains)]))
    owners = problem.slot_specialist[reached].astype(np.int64)
    capacity = problem.slot_capacity[reached]
    network.add(slot_node + reached, spec_node + owners, capacity, 0)
    reachable = np.bincount(owners, weights=capacity, minlength=n_spec).astype(np.int64)
    spec, ordinal = ragged(
        np.ones(n_spec, dtype=np.int64), np.minimum(problem.remaining, reachable)
    )
    load_costs = problem.costs.load_step * (problem.load[spec] + ordinal - 1)
    network.add(spec_node + spec, sink, 1, load_costs)

    solver = min_cost_flow.SimpleMinCostFlow()
    solver.add_arcs_with_capacity_and_unit_cost(
        np.concatenate(network.tails).astype(np.int32),
        np.concatenate(network.heads).astype(np.int32),
        np.concatenate(network.capacities),
        np.concatenate(network.costs),
    )
    solver.set_nodes_supplies(
        np.append(np.concatenate(network.supply_nodes), sink).astype(np.int32),
        np.append(np.concatenate(network.supplies), -n_req),
    )
    status = solver.solve()
    if status != solver.OPTIMAL:
        raise SolverError(f"min-cost flow ended with status {status}")
    flows = np.asarray(solver.flows(np.arange(network.arcs, dtype=np.int32)), dtype=np.int64)
    used = flows[direct : direct + len(direct_requests)] > 0
    pairs = list(zip(direct_requests[used].tolist(), direct_slots[used].tolist(), strict=True))
    for chain in chains:
        pairs += unpack(chain, flows)
    return pairs


def optimise_pairs(
    problem: MatchingProblem, pruning: Pruning, greedy_slot: I64, greedy_position: I64
) -> list[tuple[int, int]]:
    """The optimiser's (request, slot) pairs, given the greedy pass that seeds pruning.

    Then the repair check: pruning may have cut a request off from the only slots it could
    have had (typically a request that excludes the specialists already offered it, whose
    cheapest slots the others take). A request left unassigned while one of its eligible
    slots is free in the solution (room in the slot, its specialist under cap) or held by a
    less urgent request, or while its group still has a free slot some request of the group
    could take (one could move there and leave it theirs), may be a request pruning cost. The
    batch is then solved again with *every* eligible arc for the requests outside the
    chains; the chains are exact already, so that second solve is the exact optimum. When
    nobody qualifies (the usual batch, even one with more demand than supply) the check is a
    vectorised pass. ``pruning.repairs = 0`` switches it off (for comparison).
    """
    no_chains = np.zeros(len(problem.requests), dtype=bool)
    mask = chainable(problem) if pruning.chains else no_chains
    requests, slots = pruned_arcs(problem, pruning, greedy_slot, greedy_position, ~mask)
    pairs = solve(problem, requests, slots, mask, pruning.chain_step)
    if pruning.repairs and _pruning_cost_a_request(problem, pairs, ~mask):
        requests, slots = exact_arcs(problem, ~mask)
        pairs = solve(problem, requests, slots, mask, pruning.chain_step)
    return pairs


def _pruning_cost_a_request(
    problem: MatchingProblem, pairs: list[tuple[int, int]], direct: BOOL
) -> bool:
    """Whether a waiting request outside the chains has an eligible slot that is free, or
    held by a less urgent request (see :func:`optimise_pairs`)."""
    waiting = direct.copy()
    waiting[[r for r, _ in pairs]] = False
    if not waiting.any():
        return False
    free, holder_rank = _slot_state(problem, pairs)
    requests, slots = exact_arcs(problem, waiting)
    better = free[slots] | (holder_rank[slots] > problem.rank[requests])
    if better.any():
        return True
    # A free slot its group's requests could use, even one it cannot: the request may take
    # another's slot while that one moves to the free slot.
    for g, group in enumerate(problem.groups):
        members = members_of(problem, g)
        if members is None or not waiting[members].any():
            continue
        reach = int(bounds(problem, g, members).max())
        if free[group.slots[:reach]].any():
            return True
    return False


def _slot_state(problem: MatchingProblem, pairs: list[tuple[int, int]]) -> tuple[BOOL, I64]:
    """Per slot after ``pairs``: free (room left, specialist under cap), and the most
    urgent rank among the requests holding it (-1 when none)."""
    taken = np.array([r for r, _ in pairs], dtype=np.int64)
    used = np.array([s for _, s in pairs], dtype=np.int64)
    slot_used = np.bincount(used, minlength=len(problem.slots))
    owners = problem.slot_specialist
    spec_used = np.bincount(owners[used], minlength=len(problem.specialists))
    free: BOOL = (slot_used < problem.slot_capacity) & (
        spec_used[owners] < problem.remaining[owners]
    )
    holder_rank = np.full(len(problem.slots), -1, dtype=np.int64)
    np.maximum.at(holder_rank, used, problem.rank[taken])
    return free, holder_rank


def exact_pairs(problem: MatchingProblem) -> list[tuple[int, int]]:
    """The exact optimum's (request, slot) pairs, from the full bipartite graph."""
    requests, slots = exact_arcs(problem)
    return solve(problem, requests, slots)


__all__ = ["Pruning", "exact_pairs", "optimise_pairs", "solve"]
