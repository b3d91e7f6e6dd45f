"""Shared chains: every eligible arc of many requests in O(slots) arcs.

Requests of one (specialty, language) group and one urgency weight see the same slots at
prices ``weight x (start - created)``; each sees a *prefix* of the group's start-sorted slots
(those before its deadline). When ``start`` is a whole minute and no slot starts before the
request was created, the price splits exactly:
``weight x start_minute - weight x ceil(created_minute)``. Adding the request part to all of
a request's options (its slots and its unassigned arc) changes no decision, and leaves:

* slot prices ``weight x (start_minute - origin)`` that do not depend on the request, and
* an unassigned price that, with the age-neutral cost model, does not depend on it either.

So requests with the same last eligible position and the same unassigned price are
interchangeable: they become one *entry* node with a supply equal to their number. A chain of
nodes, each owning a block of ``step`` consecutive positions, links every node to the
previous one for free; an entry reaches all its full blocks through the chain and the few
positions after its last full block through direct arcs. Short chains (large ``step``) keep
the cost-scaling solver fast; the direct arcs keep the graph exact.

Reading the flow back: an entry's units leave by its unassigned arcs or end in slots at
positions up to its last one. Pairing the served requests sorted by last position with the
used slots sorted by position is always feasible (a unit never moves to a later position);
within an entry the oldest requests are the ones served, and served first.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from scheduling.candidates import bounds, members_of, ragged
from scheduling.errors import SolverError
from scheduling.problem import BOOL, I64, MICROS_PER_MINUTE, MatchingProblem


@dataclass
class Network:
    """Arc blocks and supplies accumulated as numpy arrays, handed to OR-Tools in bulk."""

    next_node: int
    tails: list[I64] = field(default_factory=list)
    heads: list[I64] = field(default_factory=list)
    capacities: list[I64] = field(default_factory=list)
    costs: list[I64] = field(default_factory=list)
    supply_nodes: list[I64] = field(default_factory=list)
    supplies: list[I64] = field(default_factory=list)
    arcs: int = 0

    def add(self, tails: I64, heads: I64 | int, capacities: I64 | int, costs: I64 | int) -> int:
        """Append a block of arcs (scalars broadcast); return the index of its first arc."""
        first = self.arcs
        shape = np.shape(tails)
        self.tails.append(np.asarray(tails, dtype=np.int64))
        self.heads.append(np.broadcast_to(np.asarray(heads, dtype=np.int64), shape))
        self.capacities.append(np.broadcast_to(np.asarray(capacities, dtype=np.int64), shape))
        self.costs.append(np.broadcast_to(np.asarray(costs, dtype=np.int64), shape))
        self.arcs += int(shape[0])
        return first

    def nodes(self, count: int) -> int:
        """Reserve ``count`` new node ids; return the first."""
        first = self.next_node
        self.next_node += count
        return first

    def supply(self, nodes: I64, amounts: I64) -> None:
        """Give ``nodes`` these supplies (the sink's demand is set by the caller)."""
        self.supply_nodes.append(np.asarray(nodes, dtype=np.int64))
        self.supplies.append(np.asarray(amounts, dtype=np.int64))


@dataclass(frozen=True)
class Chain:
    """Where one chain's arcs sit in the network, to read its flow back."""

    requests: I64  # sorted by (last position, unassigned price, created, index)
    last: I64  # each request's last eligible group position
    created: I64  # each request's creation time
    class_start: I64  # first request of each (last, price) class
    class_count: I64
    class_arc: int  # first unassigned arc, one per class
    exit_arc: int  # first chain exit arc, one per position below ``reach``
    reach: int  # positions 0 .. reach-1 are reachable through the chain
    rest_arc: int  # first direct arc after the last full block
    rest_position: I64  # group position of each such arc
    slots: I64  # slot index of each group position used by this chain


def chainable(problem: MatchingProblem) -> BOOL:
    """Requests whose price splits into a request part and a slot part (see module doc).

    Requests that exclude specialists see a different slot set from their group, so they
    keep individual nodes with direct arcs, as do requests with no eligible slot at all.
    """
    ok = np.zeros(len(problem.requests), dtype=bool)
    for g, group in enumerate(problem.groups):
        if len(group.slots) == 0 or np.any(group.starts % MICROS_PER_MINUTE):
            continue
        ok |= (problem.request_group == g) & (problem.created <= group.starts[0])
    for request in problem.excluded:
        ok[request] = False
    return ok


def add_chains(
    problem: MatchingProblem,
    network: Network,
    members_mask: BOOL,
    slot_node: int,
    sink: int,
    step: int,
) -> tuple[list[Chain], BOOL]:
    """Add chains, entry supplies and unassigned arcs; return chains and the requests taken."""
    taken = np.zeros(len(problem.requests), dtype=bool)
    chains: list[Chain] = []
    if not members_mask.any():
        return chains, taken
    created_minute = -((-problem.created) // MICROS_PER_MINUTE)  # ceil
    origin = int(created_minute[members_mask].min())
    for g, group in enumerate(problem.groups):
        members = members_of(problem, g)
        if members is None:
            continue
        members = members[members_mask[members]]
        last = bounds(problem, g, members) - 1
        members, last = members[last >= 0], last[last >= 0]
        price = group.starts // MICROS_PER_MINUTE - origin
        for weight in np.unique(problem.weight[members]).tolist():
            same = problem.weight[members] == weight
            shifted = problem.unassigned_cost[members[same]] + weight * (
                created_minute[members[same]] - origin
            )
            chains.append(
                _add_chain(
                    network,
                    members[same],
                    last[same],
                    shifted,
                    problem.created,
                    group.slots.astype(np.int64),
                    weight * price,
                    slot_node,
                    sink,
                    step,
                )
            )
            taken[members[same]] = True
    return chains, taken


def _add_chain(
    network: Network,
    requests: I64,
    last: I64,
    unassigned: I64,
    created: I64,
    slots: I64,
    prices: I64,
    slot_node: int,
    sink: int,
    step: int,
) -> Chain:
    order = np.lexsort((requests, created[requests], unassigned, last))
    requests, last, unassigned = requests[order], last[order], unassigned[order]
    # Classes: runs of equal (last, unassigned price); entries: runs of equal last.
    new_class = np.ones(len(requests), dtype=bool)
    new_class[1:] = (last[1:] != last[:-1]) | (unassigned[1:] != unassigned[:-1])
    class_start = np.flatnonzero(new_class).astype(np.int64)
    class_count = np.diff(np.append(class_start, len(requests)))
    entry_last, first_of_entry = np.unique(last, return_index=True)
    entry_count = np.diff(np.append(first_of_entry, len(requests)))
    entry = network.nodes(len(entry_last)) + np.arange(len(entry_last), dtype=np.int64)
    network.supply(entry, entry_count)
    class_entry = np.searchsorted(entry_last, last[class_start])
    class_arc = network.add(entry[class_entry], sink, class_count, unassigned[class_start])

    top = (entry_last + 1) // step * step - 1  # last position reached through the chain
    reach = int(top.max()) + 1 if top.max() >= 0 else 0
    exit_arc = network.arcs
    if reach:
        blocks = np.unique(top[top >= 0])
        node = network.nodes(len(blocks)) + np.arange(len(blocks), dtype=np.int64)
        total = int(entry_count.sum())
        network.add(node[1:], node[:-1], total, 0)
        owner = np.searchsorted(blocks, np.arange(reach), side="left")
        exit_arc = network.add(node[owner], slot_node + slots[:reach], total, prices[:reach])
        inside = top >= 0
        network.add(
            entry[inside], node[np.searchsorted(blocks, top[inside])], entry_count[inside], 0
        )
    rows, position = ragged(top + 1, entry_last - top)
    rest_arc = network.add(
        entry[rows], slot_node + slots[position], entry_count[rows], prices[position]
    )
    used = slots[: int(entry_last.max()) + 1]
    return Chain(
        requests,
        last,
        created[requests],
        class_start,
        class_count,
        class_arc,
        exit_arc,
        reach,
        rest_arc,
        position,
        used,
    )


def unpack(chain: Chain, flows: I64) -> list[tuple[int, int]]:
    """Turn a chain's flow into (request, slot) pairs; oldest requests served first."""
    left = flows[chain.class_arc : chain.class_arc + len(chain.class_start)]
    served = np.ones(len(chain.requests), dtype=bool)
    # In each class the newest ``left`` requests stay unassigned (sorted oldest first).
    _, unserved = ragged(chain.class_start + chain.class_count - left, left)
    served[unserved] = False
    used = np.zeros(len(chain.slots), dtype=np.int64)
    used[: chain.reach] += flows[chain.exit_arc : chain.exit_arc + chain.reach]
    rest = flows[chain.rest_arc : chain.rest_arc + len(chain.rest_position)]
    np.add.at(used, chain.rest_position, rest)
    exits = np.repeat(np.arange(len(chain.slots)), used)
    requests, last, created = chain.requests[served], chain.last[served], chain.created[served]
    order = np.lexsort((requests, created, last))
    requests, last = requests[order], last[order]
    if len(exits) != len(requests) or np.any(exits > last):
        raise SolverError("chain flow does not decompose into eligible assignments")
    return list(zip(requests.tolist(), chain.slots[exits].tolist(), strict=True))
