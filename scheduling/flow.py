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

from collections import deque

import numpy as np
from ortools.graph.python import min_cost_flow

from scheduling.candidates import Pruning, exact_arcs, pruned_arcs, ragged
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
    cheapest slots the others take, or one whose slot another request could only free by
    moving to a slot its own pruning dropped). When an improving path exists on the full
    graph (:func:`_pruning_cost_a_request`), the batch is solved again with *every*
    eligible arc for the requests outside the chains; the chains are exact already, so that
    second solve is the exact optimum. So the matcher serves as many requests of each
    urgency as the exact solver, with chains or without (``Pruning(chains=False)``). When
    no path exists (the usual batch, even one with more demand than supply) the check is
    one breadth-first pass. ``pruning.repairs = 0`` switches it off (for comparison).
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
    """Whether the solution could serve more, or more urgent, requests on the full graph:
    an *improving path* from a waiting request in the residual network. It runs over
    eligible slots (every arc, not the pruned ones) and either ends at free room (a slot
    with room whose specialist is under cap) or at a request less urgent than the one it
    started from, which would make way. The requests served form a matroid (a gammoid)
    weighted by urgency, so a solution without such a path serves as many requests of
    each urgency as the exact optimum, with or without chains. When every request is in
    the chains (exact already), there is nothing to check.
    """
    if not direct.any():
        return False
    served = np.zeros(len(problem.requests), dtype=bool)
    served[[r for r, _ in pairs]] = True
    waiting = np.flatnonzero(~served)
    if len(waiting) == 0:
        return False
    state = _Residual(problem, pairs)
    ranks = problem.rank.tolist()
    for rank in sorted({ranks[r] for r in waiting.tolist()}):
        sources = [r for r in waiting.tolist() if ranks[r] == rank]
        if state.improves(sources, rank):
            return True
    return False


class _Residual:
    """The solution as lists, for the breadth-first search of :func:`_pruning_cost_a_request`.

    A request's eligible slots are a prefix of its group's start-sorted slots, so requests
    that exclude nobody scan their group once between them (``scanned``); the others scan
    their own prefix. Each request, slot and specialist is visited at most once per pass.
    """

    def __init__(self, problem: MatchingProblem, pairs: list[tuple[int, int]]) -> None:
        self.problem = problem
        n_slots, n_spec = len(problem.slots), len(problem.specialists)
        self.owner = problem.slot_specialist.tolist()
        self.holders: list[list[int]] = [[] for _ in range(n_slots)]
        self.spec_holders: list[list[int]] = [[] for _ in range(n_spec)]
        slot_used = [0] * n_slots
        spec_used = [0] * n_spec
        for r, s in pairs:
            self.holders[s].append(r)
            self.spec_holders[self.owner[s]].append(r)
            slot_used[s] += 1
            spec_used[self.owner[s]] += 1
        capacity = problem.slot_capacity.tolist()
        remaining = problem.remaining.tolist()
        self.slot_room = [slot_used[s] < capacity[s] for s in range(n_slots)]
        self.spec_room = [spec_used[p] < remaining[p] for p in range(n_spec)]
        self.group_slots = [g.slots.tolist() for g in problem.groups]
        self.request_group = problem.request_group.tolist()
        self.rank = problem.rank.tolist()
        bound = np.zeros(len(problem.requests), dtype=np.int64)
        for g, group in enumerate(problem.groups):
            members = np.flatnonzero(problem.request_group == g)
            bound[members] = np.searchsorted(group.starts, problem.deadline[members], "left")
        self.bound = bound.tolist()  # how many of its group's slots start before its deadline

    def improves(self, sources: list[int], rank: int) -> bool:
        """Whether a path from ``sources`` (waiting, of ``rank``) reaches free room or a
        request less urgent than ``rank``."""
        seen_requests = set(sources)
        seen_slots: set[int] = set()
        seen_specialists: set[int] = set()
        scanned = [0] * len(self.group_slots)
        queue = deque(sources)
        excluded = self.problem.excluded
        while queue:
            r = queue.popleft()
            g = self.request_group[r]
            members = self.group_slots[g]
            banned = excluded.get(r)
            first = 0 if banned else scanned[g]
            if not banned:
                scanned[g] = max(scanned[g], self.bound[r])
            reached: list[int] = []
            for s in members[first : self.bound[r]]:
                if s in seen_slots or (banned and self.owner[s] in banned):
                    continue
                seen_slots.add(s)
                if self.slot_room[s]:
                    p = self.owner[s]
                    if self.spec_room[p]:
                        return True
                    if p not in seen_specialists:  # full: one of theirs may move away
                        seen_specialists.add(p)
                        reached += self.spec_holders[p]
                reached += self.holders[s]
            for h in reached:
                if self.rank[h] > rank:
                    return True  # a less urgent request makes way
                if h not in seen_requests:
                    seen_requests.add(h)
                    queue.append(h)
        return False


def exact_pairs(problem: MatchingProblem) -> list[tuple[int, int]]:
    """The exact optimum's (request, slot) pairs, from the full bipartite graph."""
    requests, slots = exact_arcs(problem)
    return solve(problem, requests, slots)


__all__ = ["Pruning", "exact_pairs", "optimise_pairs", "solve"]
