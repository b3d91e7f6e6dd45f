"""Direct request -> slot candidate arcs: all eligible pairs, or a pruned subset.

Cost order is start order for one request (its weight and creation time are fixed), and its
eligible slots are a prefix of its group's start-sorted list, so "the ``k`` cheapest" is the
first ``k`` entries and every selection here is a slice of group positions.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from scheduling.problem import BOOL, I64, MatchingProblem


@dataclass(frozen=True, slots=True)
class Pruning:
    """Shape of the candidate graph of :func:`scheduling.optimise`.

    Direct arcs kept per request: its ``k`` cheapest eligible slots, always its greedy slot,
    ``around`` group positions on either side of the greedy slot (where the optimum's changes
    are: a request moves a slot or two to free one for another), and, if greedy left it
    unassigned, the last ``tail`` eligible slots before its deadline (the ones such moves
    free most often).

    ``chains`` puts every request that can share arcs into the shared chains of
    :mod:`scheduling.chains` instead, which give it *all* its eligible slots; only the others
    (requests that exclude specialists, odd timestamps) then use pruned direct arcs.
    ``chain_step`` trades chain length against direct arcs inside the chains (see there).

    ``repairs`` (0 or 1) switches the repair check of :func:`scheduling.flow.optimise_pairs`:
    when pruning has left a request waiting that a free slot (or a less urgent holder's
    slot) could serve, the batch is solved again with every eligible arc, so pruning never
    leaves waiting a request the exact solver serves.
    """

    k: int = 8
    around: int = 4
    tail: int = 8
    chains: bool = True
    chain_step: int = 32
    repairs: int = 1


def ragged(starts: I64, counts: I64) -> tuple[I64, I64]:
    """(row, value) for rows ``i`` holding ``starts[i] .. starts[i] + counts[i] - 1``."""
    counts = np.maximum(counts, 0)
    rows = np.repeat(np.arange(len(counts), dtype=np.int64), counts)
    offsets = np.arange(int(counts.sum()), dtype=np.int64) - np.repeat(
        np.cumsum(counts) - counts, counts
    )
    return rows, np.repeat(starts, counts) + offsets


def members_of(problem: MatchingProblem, group: int) -> I64 | None:
    members = np.flatnonzero(problem.request_group == group).astype(np.int64)
    if len(members) == 0 or len(problem.groups[group].slots) == 0:
        return None
    return members


def bounds(problem: MatchingProblem, group: int, members: I64) -> I64:
    """Per request, how many of the group's slots start before its deadline."""
    starts = problem.groups[group].starts
    return np.searchsorted(starts, problem.deadline[members], side="left").astype(np.int64)


def _cheapest_counts(
    problem: MatchingProblem, members: I64, group_slots: I64, bound: I64, k: int
) -> I64:
    """Length of the group prefix holding each request's ``k`` cheapest *eligible* slots.

    Normally ``min(k, bound)``; a request that excludes specialists needs a longer prefix,
    since the excluded specialists' slots are dropped afterwards.
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


def _drop_excluded(problem: MatchingProblem, requests: I64, slots: I64) -> tuple[I64, I64]:
    if not problem.excluded or len(requests) == 0:
        return requests, slots
    n_spec = len(problem.specialists)
    banned = np.array(
        [r * n_spec + p for r, specialists in problem.excluded.items() for p in specialists],
        dtype=np.int64,
    )
    keep = ~np.isin(requests * n_spec + problem.slot_specialist[slots], banned)
    return requests[keep], slots[keep]


def _unique_pairs(problem: MatchingProblem, rows: list[I64], cols: list[I64]) -> tuple[I64, I64]:
    if not rows:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty
    n_slots = len(problem.slots)
    keys = np.unique(np.concatenate(rows) * n_slots + np.concatenate(cols))
    return _drop_excluded(problem, keys // n_slots, keys % n_slots)


def exact_arcs(problem: MatchingProblem, which: BOOL | None = None) -> tuple[I64, I64]:
    """Every eligible (request index, slot index) pair, of the requests in ``which`` (all)."""
    rows: list[I64] = []
    cols: list[I64] = []
    for g, group in enumerate(problem.groups):
        members = members_of(problem, g)
        if members is None:
            continue
        if which is not None:
            members = members[which[members]]
        bound = bounds(problem, g, members)
        index, position = ragged(np.zeros_like(bound), bound)
        rows.append(members[index])
        cols.append(group.slots[position].astype(np.int64))
    return _unique_pairs(problem, rows, cols)


def pruned_arcs(
    problem: MatchingProblem,
    pruning: Pruning,
    greedy_slot: I64,
    greedy_position: I64,
    which: BOOL | None = None,
) -> tuple[I64, I64]:
    """Pruned direct (request, slot) pairs for the requests flagged in ``which`` (default all)."""
    selected = np.ones(len(problem.requests), dtype=bool) if which is None else which
    rows: list[I64] = []
    cols: list[I64] = []
    for g, group in enumerate(problem.groups):
        members = members_of(problem, g)
        if members is None:
            continue
        members = members[selected[members]]
        if len(members) == 0:
            continue
        bound = bounds(problem, g, members)
        cheapest = _cheapest_counts(
            problem, members, group.slots.astype(np.int64), bound, pruning.k
        )
        position = greedy_position[members]
        chosen = position >= 0
        near = np.maximum(position - pruning.around, 0)
        near_end = np.minimum(position + pruning.around + 1, bound)
        tail = np.maximum(bound - pruning.tail, 0)
        for subset, first, count in (
            (members, np.zeros_like(bound), cheapest),
            (members[chosen], near[chosen], (near_end - near)[chosen]),
            (members[~chosen], tail[~chosen], (bound - tail)[~chosen]),
        ):
            index, slot_position = ragged(first, count)
            rows.append(subset[index])
            cols.append(group.slots[slot_position].astype(np.int64))
    assigned = np.flatnonzero((greedy_slot >= 0) & selected).astype(np.int64)
    rows.append(assigned)
    cols.append(greedy_slot[assigned])
    return _unique_pairs(problem, rows, cols)
