"""The greedy baseline: most urgent first, oldest first, each takes its cheapest free slot.

It is what a coordinator would do by hand, it is fast, and it is the yardstick: the
optimiser's candidate graph always contains the greedy choice, so the optimiser can only do
better. It is also the first pass of the optimiser, which is why it returns indices.
"""

from __future__ import annotations

from bisect import bisect_left

import numpy as np

from scheduling.problem import I64, MICROS_PER_MINUTE, MatchingProblem


def greedy_choice(problem: MatchingProblem) -> tuple[I64, I64]:
    """For every request, the chosen slot index (-1 if none) and its position in its group.

    Requests are served by urgency rank, then creation time, then id. Each takes the eligible
    slot with free capacity, whose specialist is under cap, minimising wait cost plus the
    specialist's next marginal load cost; ties go to the earlier slot. A request whose best
    option costs at least its unassigned price stays unassigned, as the optimiser would.
    """
    requests = problem.requests
    order = sorted(
        range(len(requests)),
        key=lambda r: (requests[r].urgency.rank, requests[r].created_at, requests[r].id),
    )
    slot_left = problem.slot_capacity.tolist()
    spec_left = problem.remaining.tolist()
    spec_used = [0] * len(problem.specialists)
    load = problem.load.tolist()
    owner_of = problem.slot_specialist.tolist()
    load_step = problem.costs.load_step
    group_slots = [g.slots.tolist() for g in problem.groups]
    group_starts = [g.starts.tolist() for g in problem.groups]
    # Front of each group past which every slot is full or its specialist is at cap; both
    # conditions are permanent during the pass, so the scan never revisits them.
    front = [0] * len(problem.groups)
    request_group = problem.request_group.tolist()
    created = problem.created.tolist()
    deadline = problem.deadline.tolist()
    weight = problem.weight.tolist()
    unassigned = problem.unassigned_cost.tolist()
    excluded = problem.excluded

    choice = [-1] * len(requests)
    position = [-1] * len(requests)
    for r in order:
        g = request_group[r]
        members, starts = group_slots[g], group_starts[g]
        i = front[g]
        while i < len(members) and (
            slot_left[members[i]] == 0 or spec_left[owner_of[members[i]]] == 0
        ):
            i += 1
        front[g] = i
        stop = bisect_left(starts, deadline[r], i)
        best, best_i = unassigned[r], -1
        w, c = weight[r], created[r]
        banned = excluded.get(r)
        for j in range(i, stop):
            wait_cost = w * (max(0, starts[j] - c) // MICROS_PER_MINUTE)
            if wait_cost >= best:
                break  # later slots wait longer and load costs are never negative
            s = members[j]
            if slot_left[s] == 0:
                continue
            p = owner_of[s]
            if spec_left[p] == 0 or (banned is not None and p in banned):
                continue
            cost = wait_cost + load_step * (load[p] + spec_used[p])
            if cost < best:
                best, best_i = cost, j
        if best_i >= 0:
            s = members[best_i]
            p = owner_of[s]
            slot_left[s] -= 1
            spec_left[p] -= 1
            spec_used[p] += 1
            choice[r], position[r] = s, best_i
    return np.array(choice, dtype=np.int64), np.array(position, dtype=np.int64)
